"""Reads of strategies, with parsed documents cached per (key, version): versions never change."""

from __future__ import annotations

from functools import lru_cache

from django.db.models import Max, QuerySet

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
    rows = (
        AuditEvent.objects.filter(seq__gt=after_seq, verb__in=EVENT_VERBS)
        .filter(
            subject_type__in=("cases.case", "claims.debtor"),
            subject_id__in=(str(case_id), str(debtor_id)),
        )
        .order_by("seq")
        .values_list("seq", "verb", "subject_type", "subject_id", "data", "occurred_at")
    )
    events: list[CaseEvent] = []
    for seq, verb, subject_type, subject_id, data, at in rows:
        if (subject_type, subject_id) not in (("cases.case", str(case_id)), ("claims.debtor", str(debtor_id))):
            continue
        kind = event_kind(verb, data or {}, outstanding_minor=outstanding_minor)
        if kind is not None:
            events.append(CaseEvent(id=seq, kind=kind, at=at))
    return events
