"""The decision function: (case snapshot, strategy, policy, now) -> outcome. Pure.

No Django, no clock, no I/O, so the same code runs live, in the simulator, in the dry run and in
tests. The engine (``strategies/engine.py``) turns the outcome into database writes in one
transaction. One step at most per call: a late engine catches up one step per tick.
"""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from relance.cases.status import CHASEABLE, Status
from relance.comms.policy import ContactPolicy, check_contact
from relance.strategies.document import CONTACT_ACTIONS, Reaction, Step, StrategyDoc

_T = TypeVar("_T")


class _Factory:
    """The default of a parameter whose field has a default factory (shown as dataclass shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _slot_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an ``__init__`` that fills its slots directly.

    The ``__init__`` ``dataclass`` writes for a frozen class goes through ``object.__setattr__`` for each
    field, which costs about four times a plain assignment: for the ``CaseSnapshot``, ``Outcome`` and
    ``Contact`` made for every case of every tick, ≈ 2 µs per case. This one takes the same parameters
    (same order, same defaults and default factories) and stores each through its slot's descriptor;
    the class stays frozen (assignment still raises), and equality, ``repr``, hashing and
    ``dataclasses.replace`` are unchanged. Tested equal to the generated ``__init__`` (test_decide.py).
    """
    namespace: dict[str, Any] = {"FACTORY": _FACTORY, "__name__": cls.__module__}
    params: list[str] = []
    body: list[str] = []
    for f in fields(cls):  # type: ignore[arg-type]
        namespace[f"set_{f.name}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        if f.default is not MISSING:
            namespace[f"default_{f.name}"] = f.default
            params.append(f"{f.name}=default_{f.name}")
        elif f.default_factory is not MISSING:
            namespace[f"factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=FACTORY")
            body.append(f"    if {f.name} is FACTORY: {f.name} = factory_{f.name}()")
        else:
            params.append(f.name)
        body.append(f"    set_{f.name}(self, {f.name})")
    # Generated like dataclass's own __init__, from the class's field names only.
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body), namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """Something that happened to the case since the engine last looked (``strategies.events``)."""

    id: int  # stable per occurrence (the audit sequence number): a reaction fires once per event
    kind: str  # one of document.EVENTS
    at: datetime


@_slot_init
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
    # When the previous step was done (``previous + Nd`` delays); None: at placement.
    step_at: datetime | None = None
    due_date: date | None = None  # the earliest due date of the case's claims
    variant: str = ""
    events: tuple[CaseEvent, ...] = ()
    # Facts for conditions (conditions.FIELDS).
    segment: str = "b2c"
    creditor: str = ""
    debtor_kind: str = "person"
    language: str = "fr"
    contacts_sent: int = 0
    claims: int = 1


@_slot_init
@dataclass(frozen=True, slots=True)
class Contact:
    step_key: str
    channel: str
    template: str
    at: datetime | None = None  # None: now; a later time when the policy defers a reaction


@_slot_init
@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with one case now. Empty fields mean "no change"."""

    contacts: tuple[Contact, ...] = ()
    transition: Status | None = None
    reason: str = ""
    next_step: int | None = None
    next_action_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    step_id: str = ""  # the step decided (or skipped), for counts per step


_ONE_MINUTE = timedelta(minutes=1)  # never schedule in the past: at least a minute from now


def evidence_missing_reason(missing: tuple[str, ...]) -> str:
    """``evidence missing: invoice, delivery_proof``: the engine's reason, also shown on the case page."""
    return "evidence missing: " + ", ".join(missing)


def current_events(events: tuple[CaseEvent, ...]) -> list[CaseEvent]:
    """The events still worth reacting to: a dispute already answered is no longer "opened"."""
    if not events:
        return []
    answered_after = {
        e.id
        for e in events
        if e.kind == "dispute_opened" and any(later.kind == "dispute_answered" and later.id > e.id for later in events)
    }
    return [e for e in events if e.id not in answered_after]


def variant_for(*, case_id: int, strategy: StrategyDoc) -> str:
    """Deterministic A/B/n assignment: a hash of (strategy key, case id) picks a bucket in 0..99.

    The same case always lands in the same variant of the same strategy key, whatever the version
    or the machine, so results can be compared later; "" when the strategy has no variants.
    """
    if not strategy.variants:
        return ""
    digest = hashlib.sha256(f"{strategy.key}:{case_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    edge = 0
    for variant in strategy.variants:
        edge += variant.share
        if bucket < edge:
            return variant.name
    return strategy.variants[-1].name  # pragma: no cover - shares add up to 100


def facts(case: CaseSnapshot, now: datetime) -> dict[str, object]:
    """The values a condition may read (conditions.FIELDS)."""
    today = now.astimezone(ZoneInfo(case.debtor_timezone)).date()
    return {
        "outstanding": Decimal(case.outstanding_minor) / 100,
        "days_past_due": (today - case.due_date).days if case.due_date else None,
        "days_since_placement": (now - case.placed_at).days,
        "contacts_sent": case.contacts_sent,
        "claims": case.claims,
        "segment": case.segment,
        "creditor": case.creditor,
        "debtor_kind": case.debtor_kind,
        "language": case.language,
        "variant": case.variant,
        "status": case.status.value,
        "has_email": "email" in case.channels,
        "has_phone": "sms" in case.channels or "call" in case.channels,
        "has_address": "letter" in case.channels,
    }


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


def step_due_at(step: Step, case: CaseSnapshot, previous_at: datetime | None = None) -> datetime | None:
    """When ``step`` is due for ``case``; None when its anchor date is unknown (no promise, no due date)."""
    delay = step.delay
    days = timedelta(days=delay.days)
    if delay.anchor == "placement":
        return case.placed_at + days
    if delay.anchor == "previous":
        return (previous_at or case.step_at or case.placed_at) + days
    anchor = case.due_date if delay.anchor == "due" else case.promise_date
    if anchor is None:
        return None
    return _local_midnight(anchor, case.debtor_timezone) + days


def decide(case: CaseSnapshot, strategy: StrategyDoc, policy: ContactPolicy, now: datetime) -> Outcome:
    status = case.status
    transition: Status | None = None
    notes: list[str] = []
    events = current_events(case.events)
    if status == Status.PROMISED:
        if case.promise_date is None or now < _day_after(case.promise_date, case.debtor_timezone):
            reacted = _react(case, strategy, policy, now, events, transition=None, notes=[])
            if reacted is not None:
                return reacted
            return Outcome(reason="promise pending", next_action_at=_day_after_or(case, now))
        if case.outstanding_minor <= 0:
            return Outcome(transition=Status.PAID, reason="promise kept: nothing outstanding")
        transition, status = Status.ACTIVE, Status.ACTIVE
        notes.append("promise broken")
        events.append(CaseEvent(id=_promise_event_id(case), kind="promise_broken", at=now))
    if status not in CHASEABLE:
        return Outcome(reason=f"case is {status.value}")
    if case.outstanding_minor <= 0:
        return Outcome(transition=Status.PAID, reason="nothing outstanding")
    if case.missing_evidence:
        # Invariant 5: not chased at all without the evidence the mandate requires. The case waits
        # (no next action); attaching the evidence re-arms it (claims.services.evidence_attach).
        reason = evidence_missing_reason(case.missing_evidence)
        return Outcome(transition=transition, reason=reason, notes=(*notes, reason))
    reacted = _react(case, strategy, policy, now, events, transition=transition, notes=notes)
    if reacted is not None:
        return reacted
    return _step(case, strategy, policy, now, transition=transition, notes=notes)


def _step(
    case: CaseSnapshot,
    strategy: StrategyDoc,
    policy: ContactPolicy,
    now: datetime,
    *,
    transition: Status | None,
    notes: list[str],
) -> Outcome:
    index = _applicable(strategy, case.step_index, case.variant)
    if index >= len(strategy.steps):
        moved = index if index != case.step_index else None
        return Outcome(transition=transition, next_step=moved, reason="strategy finished", notes=tuple(notes))
    step = strategy.steps[index]
    moved_to = index if index != case.step_index else None
    due = step_due_at(step, case)
    skip = ""
    if due is None:
        skip = f"no {step.delay.anchor} date"
    elif (
        step.delay.anchor == "due"
        and step.delay.days < 0
        and case.due_date
        and now >= _local_midnight(case.due_date, case.debtor_timezone)
    ):
        # A pre-due reminder makes no sense once the due date has passed.
        skip = "due date already passed"
    elif now < due:
        return Outcome(
            transition=transition,
            next_step=moved_to,
            next_action_at=due,
            reason="waiting",
            notes=tuple(notes),
            step_id=step.id,
        )
    elif step.when is not None and not step.when.evaluate(facts(case, now)):
        skip = f"condition not met ({step.when.source})"
    following = _next_due(strategy, index + 1, case, now)
    if not skip:
        ending = _end_action(step.action)
        if ending is not None:
            why = f"step {step.id}" + (f": {step.reason}" if step.reason else "")
            return Outcome(transition=ending, next_step=index + 1, reason=why, step_id=step.id)
        if step.action == "wait":
            return Outcome(
                transition=transition,
                next_step=index + 1,
                next_action_at=following,
                reason=f"step {step.id} (wait)",
                notes=tuple(notes),
                step_id=step.id,
            )
        if step.action not in case.channels:
            skip = f"no {step.action} address"
    if skip:
        # The step cannot happen at all: say why and go on with the next one.
        return Outcome(
            transition=transition,
            next_step=index + 1,
            next_action_at=following,
            reason=f"step {step.id} skipped: {skip}",
            notes=(*notes, skip),
            step_id=step.id,
        )
    verdict = check_contact(
        policy=policy,
        channel=step.action,
        now=now,
        debtor_timezone=case.debtor_timezone,
        recent_contacts=case.recent_contacts,
    )
    if not verdict.allowed and verdict.retry_at is None:
        return Outcome(
            transition=transition,
            next_step=index + 1,
            next_action_at=following,
            reason=f"step {step.id} skipped: {verdict.reason}",
            notes=(*notes, verdict.reason),
            step_id=step.id,
        )
    if not verdict.allowed:
        return Outcome(
            transition=transition,
            next_step=moved_to,
            next_action_at=verdict.retry_at,
            reason=f"step {step.id} deferred: {verdict.reason}",
            notes=(*notes, verdict.reason),
            step_id=step.id,
        )
    if case.status == Status.NEW:
        transition = Status.ACTIVE
    return Outcome(
        contacts=(Contact(strategy.step_key(step), step.action, step.template),),
        transition=transition,
        next_step=index + 1,
        next_action_at=following,
        reason=f"step {step.id}",
        notes=tuple(notes),
        step_id=step.id,
    )


_END_ACTIONS = {
    "return_to_creditor": Status.RETURNED,
    "close": Status.CLOSED,
    # Escalation hands the case to a person: it leaves the automatic flow until an agent resumes it.
    "escalate": Status.ON_HOLD,
}


def _end_action(action: str) -> Status | None:
    return _END_ACTIONS.get(action)


def _applicable(strategy: StrategyDoc, index: int, variant: str) -> int:
    """The first step at or after ``index`` that belongs to the case's variant."""
    while index < len(strategy.steps) and not strategy.steps[index].applies_to_variant(variant):
        index += 1
    return index


def _react(
    case: CaseSnapshot,
    strategy: StrategyDoc,
    policy: ContactPolicy,
    now: datetime,
    events: list[CaseEvent],
    *,
    transition: Status | None,
    notes: list[str],
) -> Outcome | None:
    """Apply the document's reactions to the new events; None when nothing reacted."""
    if not events or not strategy.reactions:
        return None
    contacts: list[Contact] = []
    reasons: list[str] = []
    goto: int | None = None
    ending: Status | None = None
    chaseable = case.status in CHASEABLE or transition in CHASEABLE
    recent = list(case.recent_contacts)
    current = facts(case, now)
    for event in events:
        for index, reaction in enumerate(strategy.reactions):
            if reaction.on != event.kind or (reaction.when is not None and not reaction.when.evaluate(current)):
                continue
            label = f"on {event.kind}"
            if reaction.action in CONTACT_ACTIONS:
                contact, why = _reaction_contact(
                    case,
                    strategy,
                    policy,
                    now,
                    index=index,
                    reaction=reaction,
                    event=event,
                    recent=recent,
                    chaseable=chaseable,
                )
                if contact is not None:
                    contacts.append(contact)
                    recent.append(contact.at or now)
                    reasons.append(f"{label}: {reaction.action} {reaction.template}")
                else:
                    reasons.append(f"{label}: {reaction.action} not sent ({why})")
            elif reaction.action:
                ending = _end_action(reaction.action)
                reasons.append(f"{label}: {reaction.action}" + (f" ({reaction.reason})" if reaction.reason else ""))
            if reaction.goto:
                goto = strategy.step_index(reaction.goto)
                reasons.append(f"{label}: go to step {reaction.goto}")
    if not reasons:
        return None
    reason = "; ".join(reasons)
    if ending is not None and case.status != ending:
        return Outcome(contacts=tuple(contacts), transition=ending, reason=reason, notes=(*notes, reason))
    if contacts and case.status == Status.NEW and transition is None:
        transition = Status.ACTIVE
    if goto is not None:
        target = strategy.steps[goto] if goto < len(strategy.steps) else None
        moved = replace_step(case, goto, now)
        due = step_due_at(target, moved) if target else None
        return Outcome(
            contacts=tuple(contacts),
            transition=transition,
            next_step=goto,
            next_action_at=max(due, now + _ONE_MINUTE) if due else now + _ONE_MINUTE,
            reason=reason,
            notes=(*notes, reason),
        )
    # Contacts only: the current step stays where it was, looked at again when it is due.
    step = strategy.steps[case.step_index] if case.step_index < len(strategy.steps) else None
    due = step_due_at(step, case) if step else None
    if case.status == Status.PROMISED and transition is None:
        due = _day_after_or(case, now)
    return Outcome(
        contacts=tuple(contacts),
        transition=transition,
        next_action_at=max(due, now + _ONE_MINUTE) if due else None,
        reason=reason,
        notes=(*notes, reason),
    )


def replace_step(case: CaseSnapshot, index: int, now: datetime) -> CaseSnapshot:
    return replace(case, step_index=index, step_at=now)


def _reaction_contact(
    case: CaseSnapshot,
    strategy: StrategyDoc,
    policy: ContactPolicy,
    now: datetime,
    *,
    index: int,
    reaction: Reaction,
    event: CaseEvent,
    recent: list[datetime],
    chaseable: bool,
) -> tuple[Contact | None, str]:
    if not chaseable:
        return None, f"case is {case.status.value}"
    if reaction.action not in case.channels:
        return None, f"no {reaction.action} address"
    verdict = check_contact(
        policy=policy, channel=reaction.action, now=now, debtor_timezone=case.debtor_timezone, recent_contacts=recent
    )
    if not verdict.allowed and verdict.retry_at is None:
        return None, verdict.reason
    key = strategy.reaction_key(index, event.id)
    return Contact(key, reaction.action, reaction.template, at=None if verdict.allowed else verdict.retry_at), ""


def _promise_event_id(case: CaseSnapshot) -> int:
    # One "promise broken" per promise date: a stable id derived from the date (negative, never an audit seq).
    assert case.promise_date is not None  # noqa: S101 - only called for a broken promise
    return -case.promise_date.toordinal()


def _next_due(strategy: StrategyDoc, index: int, case: CaseSnapshot, now: datetime) -> datetime | None:
    index = _applicable(strategy, index, case.variant)
    if index >= len(strategy.steps):
        return None
    due = step_due_at(strategy.steps[index], case, previous_at=now)
    # Never schedule in the past: a late engine catches up one step per tick, not all at once.
    return max(due, now + _ONE_MINUTE) if due else now + _ONE_MINUTE


def _day_after(day: date, tz: str) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz))


def _day_after_or(case: CaseSnapshot, now: datetime) -> datetime:
    return _day_after(case.promise_date, case.debtor_timezone) if case.promise_date else now + timedelta(days=1)


def route(case: CaseSnapshot, candidates: list[StrategyDoc], now: datetime) -> StrategyDoc | None:
    """The first candidate (best first) whose ``applies_to`` holds for the case; None: keep the default."""
    current = facts(case, now)
    for doc in candidates:
        if doc.applies_to is None or doc.applies_to.evaluate(current):
            return doc
    return None
