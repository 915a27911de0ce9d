"""Dry run: what a strategy would do to the current portfolio over the next days. Reads only.

Each open case is snapshotted as the engine would see it and the pure ``decide`` is replayed in
memory, step after step, until the horizon; no debtor reaction is assumed (nobody pays, promises or
disputes), so the figures are an upper bound of the contacts and their cost. Nothing is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings

from relance.cases.models import Case
from relance.cases.status import Status
from relance.comms.policy import ContactPolicy
from relance.core.money import Money
from relance.strategies.decide import CaseSnapshot, decide, route, variant_for
from relance.strategies.document import StrategyDoc
from relance.strategies.engine import DUE_STATUSES, snapshot

MAX_CASES = 20_000
MAX_DECISIONS_PER_CASE = 200


@dataclass
class DryRunReport:
    horizon_days: int
    cases: int = 0
    truncated: bool = False
    per_step: Counter[tuple[str, str]] = field(default_factory=Counter)  # (step id, channel or action)
    per_channel: Counter[str] = field(default_factory=Counter)
    per_variant: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    cost_minor: int = 0

    @property
    def cost(self) -> Money:
        return Money(self.cost_minor, "EUR")

    @property
    def step_rows(self) -> list[tuple[str, str, int]]:
        """(step id, channel or action, count), most frequent first (templates cannot call Counter methods)."""
        return [(step, what, n) for (step, what), n in self.per_step.most_common()]

    @property
    def variant_rows(self) -> list[tuple[str, int]]:
        return sorted(self.per_variant.items())

    def channel_costs(self) -> list[tuple[str, int, Money]]:
        costs = channel_costs()
        return [(ch, n, Money(n * costs.get(ch, 0), "EUR")) for ch, n in sorted(self.per_channel.items())]


def channel_costs() -> dict[str, int]:
    """What one contact costs per channel, in euro cents: the same figures as the dashboards'
    (settings ``CHANNEL_UNIT_COST_MINOR``, environment ``RELANCE_CHANNEL_UNIT_COST_MINOR``)."""
    return dict(settings.CHANNEL_UNIT_COST_MINOR)


def strategy_dry_run(
    *, doc: StrategyDoc, now: datetime, days: int = 30, policy: ContactPolicy | None = None
) -> DryRunReport:
    """Replay ``doc`` on the open cases that follow its key (or that it would be routed, if none do)."""
    policy = policy or ContactPolicy()
    report = DryRunReport(horizon_days=days)
    costs = channel_costs()
    horizon = now + timedelta(days=days)
    open_cases = Case.objects.filter(status__in=DUE_STATUSES).select_related("debtor", "creditor").order_by("pk")
    following = open_cases.filter(strategy_key=doc.key)
    candidates = following if following.exists() else open_cases
    for case in candidates[: MAX_CASES + 1].iterator(chunk_size=500):
        if report.cases >= MAX_CASES:
            report.truncated = True
            break
        snap = replace(snapshot(case, now), events=())
        if case.strategy_key != doc.key:
            if route(snap, [doc], now) is None:
                continue
            snap = replace(snap, step_index=0)
        if case.step_at is None or case.strategy_key != doc.key:
            snap = replace(snap, variant=variant_for(case_id=case.pk, strategy=doc), step_at=case.placed_at)
        report.cases += 1
        report.per_variant[snap.variant or "-"] += 1
        _replay(snap, doc, policy, now, horizon=horizon, report=report, costs=costs, next_at=case.next_action_at)
    return report


def _replay(
    snap: CaseSnapshot,
    doc: StrategyDoc,
    policy: ContactPolicy,
    now: datetime,
    *,
    horizon: datetime,
    report: DryRunReport,
    costs: dict[str, int],
    next_at: datetime | None,
) -> None:
    at = max(next_at or now, now)
    for _ in range(MAX_DECISIONS_PER_CASE):
        if at > horizon:
            return
        outcome = decide(snap, doc, policy, at)
        for contact in outcome.contacts:
            report.per_step[(outcome.step_id or "reaction", contact.channel)] += 1
            report.per_channel[contact.channel] += 1
            report.cost_minor += costs.get(contact.channel, 0)
        status = outcome.transition or snap.status
        if outcome.transition is not None and outcome.transition not in (Status.ACTIVE, Status.NEW):
            report.per_step[(outcome.step_id or "-", outcome.transition.value)] += 1
            report.endings[outcome.transition.value] += 1
            return
        recent = snap.recent_contacts + tuple(at for _ in outcome.contacts)
        snap = replace(
            snap,
            status=status,
            step_index=outcome.next_step if outcome.next_step is not None else snap.step_index,
            step_at=at if outcome.next_step is not None else snap.step_at,
            recent_contacts=recent,
            contacts_sent=snap.contacts_sent + len(outcome.contacts),
        )
        if outcome.next_action_at is None:
            return
        at = max(outcome.next_action_at, at + timedelta(minutes=1))
