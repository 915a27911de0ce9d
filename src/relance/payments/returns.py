"""Merchandise returns: where the creditor allows it, the debtor sends the goods back instead of paying.

``return_request`` (debtor, portal): the creditor's instructions are shown and kept with the request;
the case is put ``on_hold`` (no chasing while the parcel travels) and the creditor is told (a
proposal, FR-COL-12). ``return_confirm_received`` (creditor or agency): the claim is cancelled by a
credit note through the ledger; the case closes when nothing is left. ``return_refuse``: chasing resumes.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.selectors import case_claim_balances, case_outstanding_minor
from relance.cases.services import case_transition
from relance.cases.status import Status, can_transition
from relance.claims.models import Claim
from relance.core.errors import ConflictError, PermissionDeniedError, ValidationError
from relance.payments.credit import case_credit
from relance.payments.disputes import ANSWERING_ROLES
from relance.payments.notify import creditor_notify
from relance.payments.portal_models import CreditorNotification, ReturnPolicy, ReturnRequest
from relance.tenancy.actors import Actor


def return_policy(creditor_id: int) -> ReturnPolicy | None:
    policy = ReturnPolicy.objects.filter(creditor_id=creditor_id).first()
    return policy if policy is not None and policy.returns_allowed else None


def returnable_claims(*, case: Case, today: date | None = None) -> list[Claim]:
    """The claims of the case the debtor may send back now (policy, age, something owed, none pending)."""
    policy = return_policy(case.creditor_id)
    if policy is None or case.is_closed or case.status == Status.DISPUTED.value:
        return []
    today = today or timezone.localdate()
    pending = set(
        ReturnRequest.objects.filter(case=case, status=ReturnRequest.Status.REQUESTED).values_list(
            "claim_id", flat=True
        )
    )
    out = []
    for b in case_claim_balances(case=case):
        if b.outstanding_minor <= 0 or b.claim.pk in pending:
            continue
        if policy.max_invoice_age_days and (today - b.claim.invoice_date).days > policy.max_invoice_age_days:
            continue
        out.append(b.claim)
    return out


@transaction.atomic
def return_request(*, case: Case, claim_id: int, note: str, actor: Actor) -> ReturnRequest:
    case = Case.objects.select_for_update().select_related("creditor").get(pk=case.pk)
    claims = {c.pk: c for c in returnable_claims(case=case)}
    if claim_id not in claims:
        raise ValidationError("This invoice cannot be settled by a return.", field="claim")
    policy = return_policy(case.creditor_id)
    request = ReturnRequest.objects.create(
        case=case, claim=claims[claim_id], note=note.strip()[:2000], instructions=policy.instructions if policy else ""
    )
    if can_transition(Status(case.status), Status.ON_HOLD):
        case_transition(case=case, to=Status.ON_HOLD, actor=actor, reason="return of goods announced")
    audit_record(actor=actor, verb="return.requested", subject=case, data={"return": request.pk, "claim": claim_id})
    creditor_notify(
        case=case,
        kind=CreditorNotification.Kind.RETURN_REQUESTED,
        message=f"{case.reference}: the debtor is returning the goods of invoice {claims[claim_id].invoice_number}",
        data={"return": request.pk, "claim": claim_id},
    )
    return request


def _decidable(request: ReturnRequest, actor: Actor) -> tuple[ReturnRequest, Case]:
    if actor.role not in ANSWERING_ROLES:
        raise PermissionDeniedError("Your role cannot decide returns.")
    locked = ReturnRequest.objects.select_for_update().get(pk=request.pk)
    case = Case.objects.visible_to(actor).select_for_update().filter(pk=locked.case_id).first()
    if case is None:
        raise PermissionDeniedError("Not your case.")
    if locked.status != ReturnRequest.Status.REQUESTED:
        raise ConflictError("This return was already decided.", field="return")
    return locked, case


def _after(case: Case, actor: Actor, why: str) -> None:
    left = case_outstanding_minor(case=case)
    still_waiting = ReturnRequest.objects.filter(case=case, status=ReturnRequest.Status.REQUESTED).exists()
    if left == 0:
        case_transition(case=case, to=Status.CLOSED, actor=actor, reason=why)
    elif not still_waiting and case.status == Status.ON_HOLD.value:
        case_transition(case=case, to=Status.ACTIVE, actor=actor, reason=why)
        case.next_action_at = timezone.now()
        case.save(update_fields=["next_action_at", "updated_at"])


@transaction.atomic
def return_confirm_received(*, request: ReturnRequest, actor: Actor) -> ReturnRequest:
    """The creditor has the goods back: the claim is cancelled (credit note of what is left on it)."""
    request, case = _decidable(request, actor)
    credited = case_credit(
        case=case,
        amount_minor=None,
        claim_id=request.claim_id,
        why=f"goods returned (return {request.pk})",
        key=f"return:{request.pk}",
        actor=actor,
    )
    request.status = ReturnRequest.Status.RECEIVED
    request.decided_at = timezone.now()
    request.decided_by = actor.label[:100]
    request.save()
    audit_record(actor=actor, verb="return.received", subject=case, data={"return": request.pk, "credited": credited})
    _after(case, actor, "goods returned: claim cancelled")
    return request


@transaction.atomic
def return_refuse(*, request: ReturnRequest, note: str, actor: Actor) -> ReturnRequest:
    request, case = _decidable(request, actor)
    request.status = ReturnRequest.Status.REFUSED
    request.decided_at = timezone.now()
    request.decided_by = actor.label[:100]
    request.save()
    audit_record(actor=actor, verb="return.refused", subject=case, data={"return": request.pk, "note": note[:500]})
    _after(case, actor, "return refused")
    return request
