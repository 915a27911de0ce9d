"""Case lifecycle: every status change goes through ``case_transition`` and leaves an audit row."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from relance.audit.services import PendingEvent, audit_record
from relance.cases.models import Case
from relance.cases.status import CHASEABLE, TERMINAL, Status, can_transition
from relance.core.errors import InvalidTransitionError
from relance.tenancy.actors import Actor

_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on the phone


def case_reference_new() -> str:
    """A short case reference, unambiguous when read aloud (RL-XXXXXXXX)."""
    return "RL-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))


@transaction.atomic
def case_transition(
    *,
    case: Case,
    to: Status,
    actor: Actor,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Case:
    """Move a case to ``to`` if the status machine allows it; audited."""
    pending = case_transition_in_memory(case=case, to=to, reason=reason, data=data, now=now)
    if pending is None:
        return case
    fields, event = pending
    case.save(update_fields=fields)
    audit_record(actor=actor, verb=event.verb, subject=case, data=event.data)
    return case


class CaseStatusFields(Protocol):
    """What ``case_transition_in_memory`` reads and sets: a ``Case``, or a bulk writer's lighter row."""

    @property
    def pk(self) -> Any: ...

    status: str
    closed_at: datetime | None
    next_action_at: datetime | None


def case_transition_in_memory(
    *,
    case: CaseStatusFields,
    to: Status,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[list[str], PendingEvent] | None:
    """``case_transition`` without the writes, for bulk writers (the engine's batches): the changed
    fields and the audit event the caller must save and record in its transaction; ``None`` if no change.
    """
    # Enum look-ups by plain dicts (``Status(…)`` and ``.value`` go through Python-level enum machinery,
    # ≈ 1 µs per case in the engine's batches); an unknown status still raises ``Status``'s ValueError.
    current = _STATUS_OF.get(case.status) or Status(case.status)
    if current == to:
        return None
    if not can_transition(current, to):
        raise InvalidTransitionError(
            f"A case cannot go from {current} to {to}.", case_id=case.pk, current=current.value, target=to.value
        )
    target = _VALUE_OF[to]
    case.status = target
    fields = ["status", "updated_at"]
    if to in TERMINAL:
        case.closed_at = now or timezone.now()
        case.next_action_at = None
        fields += ["closed_at", "next_action_at"]
    elif to not in CHASEABLE:
        case.next_action_at = None
        fields.append("next_action_at")
    event = PendingEvent(
        "case.status_changed",
        "cases.case",
        case.pk,
        {"from": _VALUE_OF[current], "to": target, "reason": reason, **(data or {})},
    )
    return fields, event


_STATUS_OF: dict[str, Status] = {s.value: s for s in Status}
_VALUE_OF: dict[Status, str] = {s: s.value for s in Status}


@transaction.atomic
def case_promise(*, case: Case, on: date, amount_minor: int, actor: Actor, now: datetime | None = None) -> Case:
    """The debtor promises to pay ``amount_minor`` by ``on``; chasing pauses until the day after."""
    now = now or timezone.now()
    case_transition(
        case=case, to=Status.PROMISED, actor=actor, reason="promise", data={"on": on, "amount": amount_minor}
    )
    case.promise_date = on
    case.promise_amount_minor = amount_minor
    # The engine looks again the day after the promised date: kept, or broken and chasing resumes.
    case.next_action_at = timezone.make_aware(datetime.combine(on, datetime.min.time())) + timedelta(days=1)
    case.save(update_fields=["promise_date", "promise_amount_minor", "next_action_at", "updated_at"])
    return case


@transaction.atomic
def case_dispute(*, case: Case, reason: str, statement: str, actor: Actor) -> Case:
    """A dispute stops chasing until the creditor answers with evidence (invariant 5)."""
    return case_transition(
        case=case,
        to=Status.DISPUTED,
        actor=actor,
        reason="dispute",
        data={"dispute_reason": reason, "statement": statement},
    )
