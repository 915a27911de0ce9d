"""What an agent does on a case page (issue 6): notes, holds, resume, discounts, return, write-off.

Each is one audited use case. Money changes (discount, write-off) are ledger transactions against the
creditor's claims account — never an edit of a claim — so the outstanding amount stays derived from the
ledger (invariant 1). A discount above the agent's authority becomes a work item for a supervisor.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case, WorkItem
from relance.cases.queues import WorkItemNotFoundError, work_item_close, work_item_open
from relance.cases.selectors import case_claim_balances
from relance.cases.services import case_transition
from relance.cases.status import TERMINAL, Status, can_transition
from relance.claims.services import creditor_claims_account
from relance.core.errors import ConflictError, PermissionDeniedError, ValidationError
from relance.ledger.allocate import allocate
from relance.ledger.balance import Line
from relance.ledger.services import ledger_post
from relance.tenancy.actors import Actor
from relance.tenancy.models import User

MAX_HOLD = timedelta(days=366)
WRITE_OFF = "claim.written_off"
DISCOUNT = "claim.discount"
# Share of the outstanding amount each role may waive on its own (settings.DISCOUNT_AUTHORITY_PERCENT).
DEFAULT_AUTHORITY: dict[str, int] = {
    User.Role.AGENT.value: 10,
    User.Role.SUPERVISOR.value: 30,
    User.Role.AGENCY_ADMIN.value: 100,
}
ACTING_ROLES = frozenset({User.Role.AGENT, User.Role.SUPERVISOR, User.Role.AGENCY_ADMIN})


def _require_agent(actor: Actor) -> None:
    if actor.kind != "staff" or actor.role not in ACTING_ROLES:
        raise PermissionDeniedError("Only agents, supervisors and agency admins act on cases.")


def _clean(text: str, *, field: str, required: bool = True, limit: int = 2000) -> str:
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    if required and not text:
        raise ValidationError("This field is required.", field=field)
    if len(text) > limit:
        raise ValidationError(f"At most {limit} characters.", field=field)
    return text


@transaction.atomic
def case_note_add(*, case: Case, text: str, actor: Actor) -> None:
    """A staff-only note on the timeline (creditors never see it)."""
    _require_agent(actor)
    audit_record(
        actor=actor, verb="case.note", subject=case, data={"text": _clean(text, field="text"), "staff_only": True}
    )


@transaction.atomic
def case_hold(*, case: Case, until: date, reason: str, actor: Actor) -> Case:
    """Stop chasing until ``until`` (at most a year away), for a stated reason."""
    _require_agent(actor)
    reason = _clean(reason, field="reason", limit=300)
    today = timezone.localdate()
    if until <= today:
        raise ValidationError("The end of the hold must be after today.", field="until")
    if until > today + MAX_HOLD:
        raise ValidationError("A hold lasts at most a year.", field="until")
    case = Case.objects.select_for_update().get(pk=case.pk)
    case_transition(case=case, to=Status.ON_HOLD, actor=actor, reason="hold", data={"until": until, "why": reason})
    case.hold_until = until
    case.save(update_fields=["hold_until", "updated_at"])
    return case


@transaction.atomic
def case_resume(*, case: Case, actor: Actor, reason: str = "") -> Case:
    """Back to active: the engine looks at the case at its next tick."""
    _require_agent(actor)
    case = Case.objects.select_for_update().get(pk=case.pk)
    case_transition(case=case, to=Status.ACTIVE, actor=actor, reason="resumed", data={"why": reason[:300]})
    case.hold_until = None
    case.next_action_at = timezone.now()
    case.save(update_fields=["hold_until", "next_action_at", "updated_at"])
    return case


@transaction.atomic
def case_return_to_creditor(*, case: Case, reason: str, actor: Actor) -> Case:
    """Hand the case back to the creditor: chasing stops for good; the claims stay theirs."""
    _require_agent(actor)
    reason = _clean(reason, field="reason", limit=300)
    case = Case.objects.select_for_update().get(pk=case.pk)
    return case_transition(
        case=case, to=Status.RETURNED, actor=actor, reason="returned to creditor", data={"why": reason}
    )


def _reduce(case: Case, amount_minor: int, *, code: str, key: str, memo: str) -> dict[str, int]:
    """Dr creditor claims / Cr claims, oldest due first; returns the amount taken from each claim."""
    balances = case_claim_balances(case=case)
    allocations, remainder = allocate(amount_minor, [(b.claim.ledger_key, b.outstanding_minor) for b in balances])
    if remainder:
        raise ValidationError("More than the outstanding amount.", field="amount")
    if not allocations:
        return {}
    cur = case.currency
    lines = [Line.dr(creditor_claims_account(case.creditor, cur), amount_minor, cur)]
    lines += [Line.cr(a.key, a.amount, cur) for a in allocations]
    ledger_post(idempotency_key=key, code=code, lines=lines, memo=memo)
    return {a.key: a.amount for a in allocations}


@transaction.atomic
def case_write_off(*, case: Case, reason: str, actor: Actor) -> Case:
    """Give up the rest of the case: the outstanding leaves the books (ledger), chasing stops for good."""
    _require_agent(actor)
    reason = _clean(reason, field="reason", limit=300)
    case = Case.objects.select_for_update().select_related("creditor").get(pk=case.pk)
    if not can_transition(Status(case.status), Status.WRITTEN_OFF):
        raise ConflictError(f"A {case.status} case cannot be written off.", case_id=case.pk)
    outstanding = sum(b.outstanding_minor for b in case_claim_balances(case=case))
    taken = _reduce(case, outstanding, code=WRITE_OFF, key=f"{WRITE_OFF}:{case.pk}", memo=f"Write-off {case.reference}")
    return case_transition(
        case=case,
        to=Status.WRITTEN_OFF,
        actor=actor,
        reason="written off",
        data={"why": reason, "amount": outstanding, "claims": taken},
    )


def discount_authority_percent(role: str) -> int:
    configured: dict[str, int] = getattr(settings, "DISCOUNT_AUTHORITY_PERCENT", {})
    default = DEFAULT_AUTHORITY.get(role, 0)
    return int(configured.get(role, default))


@transaction.atomic
def case_discount_grant(*, case: Case, amount_minor: int, reason: str, actor: Actor) -> WorkItem | None:
    """Waive ``amount_minor`` of the outstanding amount.

    Within the actor's authority (a share of the outstanding) it applies at once and returns ``None``;
    above it a supervisor must approve: a work item is opened and returned, nothing is applied yet.
    """
    _require_agent(actor)
    reason = _clean(reason, field="reason", limit=300)
    case = Case.objects.select_for_update().select_related("creditor").get(pk=case.pk)
    if Status(case.status) in TERMINAL:
        raise ConflictError(f"A {case.status} case takes no discount.", case_id=case.pk)
    outstanding = sum(b.outstanding_minor for b in case_claim_balances(case=case))
    if amount_minor <= 0:
        raise ValidationError("A discount must be positive.", field="amount")
    if amount_minor > outstanding:
        raise ValidationError("A discount cannot exceed the outstanding amount.", field="amount")
    percent = discount_authority_percent(actor.role)
    if amount_minor * 100 > outstanding * percent:
        return work_item_open(
            kind=WorkItem.Kind.DISCOUNT_APPROVAL,
            source=f"discount:{case.pk}:{uuid.uuid4().hex[:12]}",
            agency_id=case.creditor.agency_id,
            case=case,
            title=f"Discount of {amount_minor / 100:.2f} {case.currency} on {case.reference}",
            amount_minor=amount_minor,
            data={"amount": amount_minor, "reason": reason, "requested_by": actor.label, "outstanding": outstanding},
            actor=actor,
        )
    _apply_discount(case, amount_minor, reason=reason, actor=actor, approved_by="")
    return None


def _apply_discount(case: Case, amount_minor: int, *, reason: str, actor: Actor, approved_by: str) -> None:
    taken = _reduce(
        case,
        amount_minor,
        code=DISCOUNT,
        key=f"{DISCOUNT}:{case.pk}:{uuid.uuid4().hex}",
        memo=f"Settlement discount on {case.reference}",
    )
    audit_record(
        actor=actor,
        verb="case.discount_granted",
        subject=case,
        data={"amount": amount_minor, "why": reason, "claims": taken, "approved_by": approved_by},
    )
    if sum(b.outstanding_minor for b in case_claim_balances(case=case)) == 0:
        case_transition(case=case, to=Status.SETTLED, actor=actor, reason="settled with a discount")


@transaction.atomic
def case_discount_decide(*, item_id: int, approve: bool, actor: Actor, note: str = "") -> WorkItem:
    """A supervisor approves (the discount applies) or refuses a discount above an agent's authority."""
    item = WorkItem.objects.select_for_update().filter(pk=item_id, kind=WorkItem.Kind.DISCOUNT_APPROVAL).first()
    if item is None or item.agency_id != actor.agency_id or item.case_id is None:
        raise WorkItemNotFoundError(item_id=item_id)
    case_id: int = item.case_id
    if actor.role not in {User.Role.SUPERVISOR, User.Role.AGENCY_ADMIN}:
        raise PermissionDeniedError("Only a supervisor approves a discount above an agent's authority.")
    if item.status != WorkItem.Status.OPEN:
        raise ConflictError("This request was already decided.", item_id=item_id)
    amount = int(item.data["amount"])
    if approve:
        case = Case.objects.select_for_update().select_related("creditor").get(pk=case_id)
        if amount * 100 > sum(b.outstanding_minor for b in case_claim_balances(case=case)) * discount_authority_percent(
            actor.role
        ):
            raise PermissionDeniedError("This discount is above your own authority too.")
        _apply_discount(case, amount, reason=str(item.data.get("reason", "")), actor=actor, approved_by=actor.label)
    closed = work_item_close(
        actor=actor,
        kind=item.kind,
        source=item.source,
        outcome=("approved" if approve else "refused") + (f": {note[:250]}" if note else ""),
        cancelled=not approve,
    )
    assert closed is not None  # noqa: S101 - locked and open above
    return closed


@transaction.atomic
def case_recall(*, case: Case, reason: str, actor: Actor) -> Case:
    """The creditor takes its case back: chasing stops for good; open work on it is cancelled."""
    if actor.kind != "creditor" or actor.role != User.Role.CREDITOR_ADMIN or actor.creditor_id != case.creditor_id:
        raise PermissionDeniedError("Only the creditor's admin recalls its cases.")
    reason = _clean(reason, field="reason", limit=300)
    case = Case.objects.select_for_update().get(pk=case.pk)
    case_transition(case=case, to=Status.RETURNED, actor=actor, reason="recalled by the creditor", data={"why": reason})
    for item in WorkItem.objects.filter(case=case, status=WorkItem.Status.OPEN):
        work_item_close(actor=actor, kind=item.kind, source=item.source, outcome="case recalled", cancelled=True)
    return case
