"""Reads of strategies, with parsed documents cached per (key, version): versions never change."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db.models import Max, Q, QuerySet

from relance.audit.models import AuditEvent
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


def cases_events_since(*, cases: Sequence[tuple[int, int, int, int]]) -> dict[int, list[CaseEvent]]:
    """``case_events_since`` for many ``(case_id, debtor_id, after_seq, outstanding_minor)`` in one query."""
    result: dict[int, list[CaseEvent]] = {case_id: [] for case_id, *_ in cases}
    if not cases:
        return result
    case_keys = {str(case_id) for case_id, *_ in cases}
    debtor_keys = {str(debtor_id) for _, debtor_id, *_ in cases}
    rows = list(
        AuditEvent.objects.filter(seq__gt=min(after for _, _, after, _ in cases), verb__in=EVENT_VERBS)
        .filter(
            Q(subject_type="cases.case", subject_id__in=case_keys)
            | Q(subject_type="claims.debtor", subject_id__in=debtor_keys)
        )
        .order_by("seq")
        .values_list("seq", "verb", "subject_type", "subject_id", "data", "occurred_at")
    )
    by_subject: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        by_subject.setdefault((row[2], row[3]), []).append(row)
    for case_id, debtor_id, after_seq, outstanding_minor in cases:
        mine = by_subject.get(("cases.case", str(case_id)), []) + by_subject.get(("claims.debtor", str(debtor_id)), [])
        for seq, verb, _type, _id, data, at in sorted(mine, key=lambda row: row[0]):
            if seq <= after_seq:
                continue
            kind = event_kind(verb, data or {}, outstanding_minor=outstanding_minor)
            if kind is not None:
                result[case_id].append(CaseEvent(id=seq, kind=kind, at=at))
    return result
