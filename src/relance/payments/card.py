"""Card payments through a PSP: opening a payment page, and applying the provider's webhooks once.

``card_checkout_start`` asks the adapter for a hosted payment page for the amount the debtor chose
(the whole balance or a part of it) and records it. ``psp_events_apply`` applies verified webhook
events: each ``(provider, event id)`` is stored once (unique constraint), so a webhook delivered twice
changes nothing the second time; a refund or chargeback that arrives before its payment waits
(``pending``) and is applied right after the payment is recorded, so delivery order does not matter.
Payments are recorded by ``payment_record`` (``method=card``, ``external_ref=<provider>:<payment id>``),
reversals by ``payment_reverse``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.core.errors import DomainError, ValidationError
from relance.core.money import Money
from relance.payments.models import Payment
from relance.payments.portal_models import PaymentReversal, PspCheckout, PspWebhookEvent
from relance.payments.psp.base import CheckoutRequest, PspAdapter, PspEvent
from relance.payments.reverse import payment_reverse
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor

log = logging.getLogger("relance.payments")


class CardAmountError(ValidationError):
    code = "payment.amount"
    title = "This amount cannot be paid"


def card_checkout_start(
    *,
    case: Case,
    amount: Money,
    adapter: PspAdapter,
    success_url: str,
    cancel_url: str,
    webhook_url: str,
    locale: str,
    actor: Actor,
) -> PspCheckout:
    """Open a card payment page for ``amount`` (at most the outstanding balance) and record it."""
    outstanding = case_outstanding_minor(case=case)
    if amount.currency != case.currency:
        raise CardAmountError(f"This case is in {case.currency}.", field="amount")
    # At least 1.00 (card fees), unless less than that is left: the last cents can be paid too.
    minimum = min(100, outstanding)
    if amount.minor <= 0 or amount.minor < minimum or amount.minor > outstanding:
        raise CardAmountError(
            f"Enter an amount between {Money(minimum, case.currency).to_decimal()}"
            f" and {Money(outstanding, case.currency).to_decimal()}.",
            field="amount",
            outstanding=outstanding,
        )
    session = adapter.checkout_create(
        CheckoutRequest(
            case_id=case.pk,
            case_reference=case.reference,
            amount=amount,
            description=f"{case.creditor.display_name} — {case.reference}",
            success_url=success_url,
            cancel_url=cancel_url,
            webhook_url=webhook_url,
            # One key per click: a retried request after a timeout gets the same page back.
            idempotency_key=f"relance-checkout-{case.pk}-{uuid.uuid4()}",
            locale=locale,
            customer_email=case.debtor.email,
        )
    )
    with transaction.atomic():
        checkout = PspCheckout.objects.create(
            case=case,
            provider=session.provider,
            session_id=session.session_id,
            payment_ref=session.payment_ref,
            amount_minor=amount.minor,
            currency=amount.currency,
            checkout_url=session.redirect_url,
        )
        audit_record(
            actor=actor,
            verb="payment.card_checkout_opened",
            subject=case,
            data={"provider": session.provider, "session": session.session_id, "amount": amount.minor},
        )
    return checkout


def _external_ref(provider: str, payment_ref: str) -> str:
    return f"{provider}:{payment_ref}"


def _case_for(event: PspEvent) -> Case | None:
    checkout = None
    if event.session_id:
        checkout = PspCheckout.objects.filter(provider=event.provider, session_id=event.session_id).first()
    if checkout is None and event.payment_ref:
        checkout = PspCheckout.objects.filter(provider=event.provider, payment_ref=event.payment_ref).first()
    if checkout is not None:
        return checkout.case
    if event.case_id is not None:
        return Case.objects.filter(pk=event.case_id).first()
    return None


def _apply_success(event: PspEvent, row: PspWebhookEvent, actor: Actor) -> str:
    case = _case_for(event)
    if case is None or event.amount is None or not event.payment_ref:
        row.status, row.note = PspWebhookEvent.Status.IGNORED, "no case for this payment"
        return "ignored"
    payment = payment_record(
        case=case,
        amount=event.amount,
        method=Payment.Method.CARD,
        external_ref=_external_ref(event.provider, event.payment_ref),
        actor=actor,
        received_at=event.occurred_at,
    )
    PspCheckout.objects.filter(provider=event.provider, session_id=event.session_id).update(
        status=PspCheckout.Status.PAID, payment_ref=event.payment_ref, updated_at=timezone.now()
    )
    row.status = PspWebhookEvent.Status.APPLIED
    row.note = f"payment {payment.pk}"
    return "applied"


def _apply_reversal(event: PspEvent, row: PspWebhookEvent, actor: Actor) -> str:
    payment = Payment.objects.filter(
        method=Payment.Method.CARD, external_ref=_external_ref(event.provider, event.payment_ref)
    ).first()
    if payment is None:
        row.status, row.note = PspWebhookEvent.Status.PENDING, "waiting for its payment"
        return "pending"
    kind = PaymentReversal.Kind.REFUND if event.kind == "payment.refunded" else PaymentReversal.Kind.CHARGEBACK
    # Both providers give the cumulative amount refunded / charged back: apply only what is new, so an
    # older event arriving late, or the same state seen twice, takes nothing more.
    target = event.amount.minor if event.amount is not None else 0
    done = payment.reversals.filter(kind=kind).aggregate(t=Sum("amount_minor"))["t"] or 0
    left = payment.amount_minor - (payment.reversals.aggregate(t=Sum("amount_minor"))["t"] or 0)
    amount = min(target - done, left)
    if amount > 0:
        payment_reverse(
            payment=payment,
            kind=kind,
            amount_minor=amount,
            external_ref=f"{event.provider}:{event.payment_ref}:{kind}:{target}",
            actor=actor,
            occurred_at=event.occurred_at,
        )
    row.status = PspWebhookEvent.Status.APPLIED
    return "applied"


def _apply_reinstated(event: PspEvent, row: PspWebhookEvent, actor: Actor) -> str:
    """A chargeback the merchant won: the money is back, booked as a new payment of the same case."""
    original = Payment.objects.filter(
        method=Payment.Method.CARD, external_ref=_external_ref(event.provider, event.payment_ref)
    ).first()
    if original is None or event.amount is None:
        row.status, row.note = PspWebhookEvent.Status.IGNORED, "no payment for this reinstatement"
        return "ignored"
    dispute_ref = event.payload.get("dispute", "")
    payment = payment_record(
        case=original.case,
        amount=event.amount,
        method=Payment.Method.CARD,
        external_ref=f"{_external_ref(event.provider, event.payment_ref)}:reinstated:{dispute_ref}",
        actor=actor,
        received_at=event.occurred_at,
    )
    row.status, row.note = PspWebhookEvent.Status.APPLIED, f"payment {payment.pk}"
    return "applied"


def _apply_one(event: PspEvent, actor: Actor) -> str:
    """Store and apply one event in its own transaction; the unique row makes it happen once."""
    try:
        with transaction.atomic():
            row = PspWebhookEvent.objects.create(
                provider=event.provider,
                event_id=event.event_id,
                kind=event.kind,
                payment_ref=event.payment_ref,
                payload=_jsonable(event),
            )
            outcome = _dispatch(event, row, actor)
            row.applied_at = timezone.now() if row.status == PspWebhookEvent.Status.APPLIED else None
            row.save(update_fields=["status", "note", "applied_at"])
            if event.kind == "payment.succeeded" and outcome == "applied":
                _apply_pending(event.provider, event.payment_ref, actor)
            return outcome
    except IntegrityError:
        return "duplicate"  # the same event id was stored before (or by a concurrent delivery)


def _dispatch(event: PspEvent, row: PspWebhookEvent, actor: Actor) -> str:
    if event.kind == "payment.succeeded":
        return _apply_success(event, row, actor)
    if event.kind in ("payment.refunded", "payment.chargeback"):
        return _apply_reversal(event, row, actor)
    if event.kind == "payment.reinstated":
        return _apply_reinstated(event, row, actor)
    if event.kind == "payment.failed":
        # The page closed unpaid: nothing to book; the debtor can open a new one.
        PspCheckout.objects.filter(
            provider=event.provider, session_id=event.session_id, status=PspCheckout.Status.OPEN
        ).update(status=PspCheckout.Status.FAILED, updated_at=timezone.now())
        row.status = PspWebhookEvent.Status.APPLIED
        return "applied"
    row.status, row.note = PspWebhookEvent.Status.IGNORED, event.raw_type[:300]
    return "ignored"


def _apply_pending(provider: str, payment_ref: str, actor: Actor) -> None:
    for row in PspWebhookEvent.objects.select_for_update().filter(
        provider=provider, payment_ref=payment_ref, status=PspWebhookEvent.Status.PENDING
    ):
        event = _event_from_row(row)
        _apply_reversal(event, row, actor)
        row.applied_at = timezone.now() if row.status == PspWebhookEvent.Status.APPLIED else None
        row.save(update_fields=["status", "note", "applied_at"])


def _jsonable(event: PspEvent) -> dict[str, Any]:
    data = asdict(event)
    data["amount"] = {"minor": event.amount.minor, "currency": event.amount.currency} if event.amount else None
    data["occurred_at"] = event.occurred_at.isoformat()
    return data


def _event_from_row(row: PspWebhookEvent) -> PspEvent:
    data = row.payload
    amount = data.get("amount")
    return PspEvent(
        provider=row.provider,
        event_id=row.event_id,
        kind=data["kind"],
        payment_ref=row.payment_ref,
        amount=Money(int(amount["minor"]), str(amount["currency"])) if amount else None,
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        case_id=data.get("case_id"),
        session_id=data.get("session_id", ""),
        raw_type=data.get("raw_type", ""),
    )


def psp_events_apply(*, events: list[PspEvent], actor: Actor) -> list[str]:
    """Apply verified events; one outcome each: applied, pending, ignored, duplicate or failed."""
    outcomes = []
    for event in events:
        try:
            outcomes.append(_apply_one(event, actor))
        except DomainError as exc:
            # A payment our rules refuse (another currency, a conflicting reference): kept for a human.
            log.warning("PSP event %s:%s refused: %s", event.provider, event.event_id, exc)
            with transaction.atomic():
                PspWebhookEvent.objects.get_or_create(
                    provider=event.provider,
                    event_id=event.event_id,
                    defaults={
                        "kind": event.kind,
                        "payment_ref": event.payment_ref,
                        "payload": _jsonable(event),
                        "status": PspWebhookEvent.Status.IGNORED,
                        "note": str(exc)[:300],
                    },
                )
            outcomes.append("failed")
    return outcomes
