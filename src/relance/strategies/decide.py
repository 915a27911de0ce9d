"""The decision function: (case snapshot, strategy, policy, now) -> outcome. Pure.

No Django, no clock, no I/O, so the same code runs live, in the simulator and in tests. The engine
(``strategies/engine.py``) turns the outcome into database writes in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from relance.cases.status import CHASEABLE, Status
from relance.comms.policy import ContactPolicy, check_contact
from relance.strategies.document import Step, StrategyDoc


@dataclass(frozen=True, slots=True)
class CaseSnapshot:
    case_id: int
    status: Status
    step_index: int
    placed_at: datetime
    outstanding_minor: int
    debtor_timezone: str = "Europe/Paris"
    channels: frozenset[str] = frozenset({"email"})
    recent_contacts: tuple[datetime, ...] = ()
    promise_date: date | None = None
    # Invariant 5, "evidence first": kinds the creditor's mandate requires that some claim still lacks.
    missing_evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Contact:
    step_key: str
    channel: str
    template: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with one case now. Empty fields mean "no change"."""

    contacts: tuple[Contact, ...] = ()
    transition: Status | None = None
    reason: str = ""
    next_step: int | None = None
    next_action_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def evidence_missing_reason(missing: tuple[str, ...]) -> str:
    """``evidence missing: invoice, delivery_proof``: the engine's reason, also shown on the case page."""
    return "evidence missing: " + ", ".join(missing)


def step_due_at(step: Step, placed_at: datetime) -> datetime:
    return placed_at + timedelta(days=step.after_days)


def decide(case: CaseSnapshot, strategy: StrategyDoc, policy: ContactPolicy, now: datetime) -> Outcome:
    status = case.status
    transition: Status | None = None
    notes: list[str] = []
    if status == Status.PROMISED:
        if case.promise_date is None or now < _day_after(case.promise_date, case.debtor_timezone):
            return Outcome(reason="promise pending", next_action_at=_day_after_or(case, now))
        if case.outstanding_minor <= 0:
            return Outcome(transition=Status.PAID, reason="promise kept: nothing outstanding")
        transition, status = Status.ACTIVE, Status.ACTIVE
        notes.append("promise broken")
    if status not in CHASEABLE:
        return Outcome(reason=f"case is {status.value}")
    if case.outstanding_minor <= 0:
        return Outcome(transition=Status.PAID, reason="nothing outstanding")
    if case.missing_evidence:
        # Invariant 5: not chased at all without the evidence the mandate requires. The case waits
        # (no next action); attaching the evidence re-arms it (claims.services.evidence_attach).
        reason = evidence_missing_reason(case.missing_evidence)
        return Outcome(transition=transition, reason=reason, notes=(*notes, reason))
    if case.step_index >= len(strategy.steps):
        return Outcome(transition=transition, reason="strategy finished", notes=tuple(notes))
    step = strategy.steps[case.step_index]
    due = step_due_at(step, case.placed_at)
    if now < due:
        return Outcome(transition=transition, next_action_at=due, reason="waiting", notes=tuple(notes))
    if step.action == "return_to_creditor":
        return Outcome(transition=Status.RETURNED, next_step=case.step_index + 1, reason=f"step {step.id}")
    if step.action == "close":
        return Outcome(transition=Status.CLOSED, next_step=case.step_index + 1, reason=f"step {step.id}")
    following = _next_due(strategy, case.step_index + 1, case.placed_at, now)
    skip = "" if step.action in case.channels else f"no {step.action} address"
    verdict = check_contact(
        policy=policy,
        channel=step.action,
        now=now,
        debtor_timezone=case.debtor_timezone,
        recent_contacts=case.recent_contacts,
    )
    if not skip and not verdict.allowed and verdict.retry_at is None:
        skip = verdict.reason
    if skip:
        # The step cannot happen at all: say why and go on with the next one.
        return Outcome(
            transition=transition,
            next_step=case.step_index + 1,
            next_action_at=following,
            reason=f"step {step.id} skipped: {skip}",
            notes=(*notes, skip),
        )
    if not verdict.allowed:
        return Outcome(
            transition=transition,
            next_action_at=verdict.retry_at,
            reason=f"step {step.id} deferred: {verdict.reason}",
            notes=(*notes, verdict.reason),
        )
    if status == Status.NEW:
        transition = Status.ACTIVE
    return Outcome(
        contacts=(Contact(strategy.step_key(step), step.action, step.template),),
        transition=transition,
        next_step=case.step_index + 1,
        next_action_at=following,
        reason=f"step {step.id}",
        notes=tuple(notes),
    )


def _next_due(strategy: StrategyDoc, index: int, placed_at: datetime, now: datetime) -> datetime | None:
    if index >= len(strategy.steps):
        return None
    # Never schedule in the past: a late engine catches up one step per tick, not all at once.
    return max(step_due_at(strategy.steps[index], placed_at), now + timedelta(minutes=1))


def _day_after(day: date, tz: str) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz))


def _day_after_or(case: CaseSnapshot, now: datetime) -> datetime:
    return _day_after(case.promise_date, case.debtor_timezone) if case.promise_date else now + timedelta(days=1)
