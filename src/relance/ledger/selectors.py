"""Reads of remittances, fee invoices and payout files, always scoped by the actor (invariant 6).

A creditor's users and API keys see only their creditor's remittances and invoices; agency staff
see their agency's; payout files (every creditor's IBAN and amount) are for agency staff only.
"Not found" and "not yours" answer the same.
"""

from __future__ import annotations

from django.db.models import QuerySet

from relance.core.errors import NotFoundError
from relance.ledger.models import FeeInvoice, PayoutBatch, Remittance
from relance.tenancy.actors import Actor


class RemittanceNotFoundError(NotFoundError):
    code = "remittance.not_found"
    title = "Remittance not found"


class PayoutBatchNotFoundError(NotFoundError):
    code = "payout_batch.not_found"
    title = "Payout file not found"


def remittance_list(*, actor: Actor) -> QuerySet[Remittance]:
    qs = Remittance.objects.select_related("creditor", "batch").order_by("-period_end", "creditor__legal_name", "pk")
    if actor.kind in {"creditor", "api"} and actor.creditor_id is not None:
        return qs.filter(creditor_id=actor.creditor_id)
    if actor.kind == "staff" and actor.agency_id is not None:
        return qs.filter(agency_id=actor.agency_id)
    if actor.kind == "system":
        return qs
    return qs.none()


def remittance_get_for_actor(*, actor: Actor, remittance_id: int) -> Remittance:
    try:
        return remittance_list(actor=actor).select_related("agency").get(pk=remittance_id)
    except Remittance.DoesNotExist:
        raise RemittanceNotFoundError(remittance_id=remittance_id) from None


def fee_invoice_get_for_actor(*, actor: Actor, remittance_id: int) -> FeeInvoice:
    remittance = remittance_get_for_actor(actor=actor, remittance_id=remittance_id)
    invoice = FeeInvoice.objects.filter(remittance=remittance).select_related("remittance").first()
    if invoice is None:
        raise RemittanceNotFoundError(remittance_id=remittance_id)
    return invoice


def payout_batch_list(*, actor: Actor) -> QuerySet[PayoutBatch]:
    qs = PayoutBatch.objects.order_by("-created_at", "-pk")
    if actor.kind == "staff" and actor.agency_id is not None:
        return qs.filter(agency_id=actor.agency_id)
    if actor.kind == "system":
        return qs
    return qs.none()


def payout_batch_get_for_actor(*, actor: Actor, batch_id: int) -> PayoutBatch:
    try:
        return payout_batch_list(actor=actor).get(pk=batch_id)
    except PayoutBatch.DoesNotExist:
        raise PayoutBatchNotFoundError(batch_id=batch_id) from None
