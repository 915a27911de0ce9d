"""Reads of strategies, with parsed documents cached per (key, version): versions never change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg
from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet
from psycopg.types.numeric import Int8

from relance.audit.models import AuditEvent
from relance.cases.models import CaseClaim
from relance.cases.selectors import cases_outstanding_minor
from relance.comms.models import Action
from relance.core.sql import int_array
from relance.strategies.decide import CaseEvent
from relance.strategies.document import StrategyDoc, parse_strategy
from relance.strategies.events import EVENT_VERBS, event_kind
from relance.strategies.models import Strategy


def strategy_default() -> Strategy:
    strategy = Strategy.objects.filter(is_default=True).first()
    if strategy is None:
        raise LookupError("No default strategy: run `relance migrate` (it installs one).")
    return strategy


@lru_cache(maxsize=256)
def _parsed(key: str, version: int, source: str) -> StrategyDoc:
    return parse_strategy(source)


def strategy_doc(*, key: str, version: int) -> StrategyDoc:
    source = Strategy.objects.values_list("source", flat=True).get(key=key, version=version)
    return _parsed(key, version, source)


def strategy_doc_of(strategy: Strategy) -> StrategyDoc:
    return _parsed(strategy.key, strategy.version, strategy.source)


def strategy_latest_versions() -> QuerySet[Strategy]:
    """The newest version of every strategy key, by key."""
    latest = Strategy.objects.values("key").annotate(v=Max("version"))
    pairs = [(row["key"], row["v"]) for row in latest]
    if not pairs:
        return Strategy.objects.none()
    ids = [
        pk
        for key, version in pairs
        for pk in Strategy.objects.filter(key=key, version=version).values_list("pk", flat=True)
    ]
    return Strategy.objects.filter(pk__in=ids).order_by("key")


def strategy_versions(*, key: str) -> QuerySet[Strategy]:
    return Strategy.objects.filter(key=key).order_by("-version")


def strategy_routing_candidates() -> list[StrategyDoc]:
    """Enabled strategies (newest version of each key), best first: priority, then version."""
    docs = [strategy_doc_of(s) for s in strategy_latest_versions().filter(enabled=True)]
    return sorted(docs, key=lambda d: (-d.priority, d.key))


def case_events_since(*, case_id: int, debtor_id: int, after_seq: int, outstanding_minor: int) -> list[CaseEvent]:
    """The case's (and its debtor's) events recorded after ``after_seq``, oldest first."""
    found = cases_events_since(cases=[(case_id, debtor_id, after_seq, outstanding_minor)])
    return found[case_id]


# One index range scan per subject on (subject_type, subject_id, seq), whatever the table's size or
# the freshness of its statistics: a planner that believed the table small (statistics taken before
# a large tick) scanned every row of the event verbs instead, a cost that grew with the trail.
_EVENTS_SQL = """
SELECT e.seq, e.verb, e.subject_type, e.subject_id, e.data, e.occurred_at
FROM (SELECT 'cases.case' AS t, k FROM unnest(%(c)s::text[]) AS k
      UNION ALL SELECT 'claims.debtor', k FROM unnest(%(d)s::text[]) AS k) AS s
CROSS JOIN LATERAL (
    SELECT seq, verb, subject_type, subject_id, data, occurred_at FROM audit_auditevent
    WHERE subject_type = s.t AND subject_id = s.k AND seq > %(after)s AND verb = ANY(%(verbs)s::text[])
    OFFSET 0  -- kept a per-subject lookup: not flattened into a join the planner may turn into a scan
) AS e
ORDER BY e.seq
"""


_EVENT_VERBS = "{" + ",".join(sorted(EVENT_VERBS)) + "}"  # verbs are plain dotted names: nothing to quote


def cases_events_since(*, cases: Sequence[tuple[int, int, int, int]]) -> dict[int, list[CaseEvent]]:
    """``case_events_since`` for many ``(case_id, debtor_id, after_seq, outstanding_minor)`` in one query."""
    result: dict[int, list[CaseEvent]] = {c[0]: [] for c in cases}
    if not cases:
        return result
    case_keys = sorted(map(str, result))
    debtor_keys = sorted({str(c[1]) for c in cases})
    after = min(c[2] for c in cases)
    rows: list[tuple[Any, ...]]
    if connection.vendor == "postgresql":
        # The same filter with the keys as array parameters (server-side binding; see _cases_facts_pg).
        with psycopg.Cursor(connection.connection) as cursor:
            keys = {"c": int_array(case_keys), "d": int_array(debtor_keys)}
            params = {"after": Int8(after), "verbs": _EVENT_VERBS, **keys}
            cursor.execute(_EVENTS_SQL, params, prepare=True)
            # Django loads jsonb as text on its connections (the ORM parses it): parse it here likewise.
            rows = [(*r[:4], json.loads(r[4]) if isinstance(r[4], str) else r[4], r[5]) for r in cursor.fetchall()]
    else:
        rows = list(
            AuditEvent.objects.filter(seq__gt=after, verb__in=EVENT_VERBS)
            .filter(
                Q(subject_type="cases.case", subject_id__in=case_keys)
                | Q(subject_type="claims.debtor", subject_id__in=debtor_keys)
            )
            .order_by("seq")
            .values_list("seq", "verb", "subject_type", "subject_id", "data", "occurred_at")
        )
    if not rows:  # the usual batch: nothing new for any of its cases
        return result
    by_subject: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        by_subject.setdefault((row[2], row[3]), []).append(row)
    for case_id, debtor_id, after_seq, outstanding_minor in cases:
        own = by_subject.get(("cases.case", str(case_id)))
        theirs = by_subject.get(("claims.debtor", str(debtor_id)))
        if own is None and theirs is None:
            continue
        mine = (own or []) + (theirs or [])
        for seq, verb, _type, _id, data, at in sorted(mine, key=lambda row: row[0]):
            if seq <= after_seq:
                continue
            kind = event_kind(verb, data or {}, outstanding_minor=outstanding_minor)
            if kind is not None:
                result[case_id].append(CaseEvent(id=seq, kind=kind, at=at))
    return result


class CaseFacts(NamedTuple):
    """What the engine reads of a case's claims, balance and outbox for ``decide``.

    A named tuple: a batch makes one per case straight from the query's row (``_make``), a third of
    what a frozen dataclass's constructor cost.
    """

    due_date: date | None  # the earliest due date of its claims
    claims: int
    outstanding_minor: int  # debits minus credits of its claims' ledger accounts
    contacts_sent: int  # outbox actions of the case, whatever their status


def cases_facts(*, case_ids: Sequence[int]) -> dict[int, CaseFacts]:
    """``CaseFacts`` of many cases: one query on PostgreSQL, the ORM selectors elsewhere (same values)."""
    if not case_ids:
        return {}
    if connection.vendor == "postgresql":
        return _cases_facts_pg(list(case_ids))
    outstanding = cases_outstanding_minor(case_ids=case_ids)
    claims = {
        row["case_id"]: (row["due"], row["n"])
        for row in CaseClaim.objects.filter(case_id__in=case_ids)
        .values("case_id")
        .annotate(due=Min("claim__due_date"), n=Count("pk"))
    }
    sent = dict(
        Action.objects.filter(case_id__in=case_ids)
        .values("case_id")
        .annotate(n=Count("pk"))
        .values_list("case_id", "n")
    )
    return {
        pk: CaseFacts(*claims.get(pk, (None, 0)), outstanding_minor=outstanding[pk], contacts_sent=sent.get(pk, 0))
        for pk in case_ids
    }


# The claim's ledger account is ``claim:<id>`` (claims.models.Claim.ledger_key); balances as in
# ledger.services.account_balances, one index lookup per claim (never a scan of all accounts). The
# case ids travel as one array parameter; each case's claims and outbox are read by index lookups
# per case (``LATERAL``), so the cost per case stays flat as the tables grow, whatever plan stale
# statistics would suggest for a join of the whole batch (a scan of every claim or action).
_FACTS_SQL = """
SELECT ids.case_id, f.due, f.n, f.outstanding::bigint,
       (SELECT COUNT(*) FROM comms_action a WHERE a.case_id = ids.case_id) AS sent
FROM unnest(%(ids)s::bigint[]) AS ids(case_id)
CROSS JOIN LATERAL (
    SELECT MIN(cl.due_date) AS due, COUNT(*) AS n, COALESCE(SUM(
        (SELECT COALESCE(SUM(p.debit), 0) - COALESCE(SUM(p.credit), 0)
         FROM ledger_account la JOIN ledger_posting p ON p.account_id = la.id
         WHERE la.key = 'claim:' || cc.claim_id)), 0) AS outstanding
    FROM cases_caseclaim cc JOIN claims_claim cl ON cl.id = cc.claim_id
    WHERE cc.case_id = ids.case_id
) AS f
"""


def _cases_facts_pg(case_ids: list[int]) -> dict[int, CaseFacts]:
    # A server-side-binding cursor on Django's connection (same transaction): the ids are one array
    # parameter, not a thousand placeholders interpolated into the SQL text. Prepared (parsed and
    # planned once per connection; PostgreSQL keeps its generic plan, the same per-case lookups: the
    # ``LATERAL`` fixes the plan's shape), as are the engine's other fixed statements (``bulk.utc_cursor``).
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_FACTS_SQL, {"ids": int_array(case_ids)}, prepare=True)
        make = CaseFacts._make  # (due, claims, outstanding, sent): dates and Python ints as they come
        return {row[0]: make(row[1:]) for row in cursor.fetchall()}
