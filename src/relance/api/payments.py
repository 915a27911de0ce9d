"""Payments the creditor received directly, reported through the API (``write`` scope).

``POST /cases/{case_id}/payments`` with ``{"amount": "25.00", "received_on": "2026-11-20",
"reference": "BANK-123"}``. The same reference again for the same case is the same payment (200);
another creditor's case answers 404 like a missing one (invariant 6).
"""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest
from ninja import Router, Schema, Status

from relance.api.auth import require_scope, scoped
from relance.cases.selectors import case_get_for_actor, case_outstanding_minor
from relance.core.errors import ValidationError
from relance.core.money import Money, MoneyError
from relance.payments.direct import payment_creditor_reported
from relance.payments.models import Payment
from relance.tenancy.actors import Actor
from relance.tenancy.models import ApiKey

router = Router(tags=["payments"])


class DirectPaymentIn(Schema):
    amount: str
    received_on: date
    reference: str = ""


class PaymentOut(Schema):
    id: int
    case_id: int
    amount: str
    currency: str
    method: str
    received_at: str
    case_status: str
    outstanding: str


@router.post(
    "/cases/{case_id}/payments",
    response={200: PaymentOut, 201: PaymentOut},
    summary="Report a payment the debtor made to you directly",
    auth=scoped("write"),
)
def payments_report(request: HttpRequest, case_id: int, payload: DirectPaymentIn) -> Status[PaymentOut]:
    key = require_scope(request, ApiKey.Scope.WRITE)
    actor = Actor.for_api_key(key)
    case = case_get_for_actor(actor=actor, case_id=case_id)
    try:
        amount = Money.parse(payload.amount, case.currency)
    except MoneyError as exc:
        raise ValidationError(str(exc), field="amount") from None
    before = Payment.objects.filter(case=case).count()
    payment = payment_creditor_reported(
        case_id=case.pk, amount=amount, received_on=payload.received_on, reference=payload.reference, actor=actor
    )
    case.refresh_from_db()
    created = Payment.objects.filter(case=case).count() > before
    return Status(
        201 if created else 200,
        PaymentOut(
            id=payment.pk,
            case_id=case.pk,
            amount=str(Money(payment.amount_minor, payment.currency).to_decimal()),
            currency=payment.currency,
            method=payment.method,
            received_at=payment.received_at.isoformat(),
            case_status=case.status,
            outstanding=str(Money(case_outstanding_minor(case=case), case.currency).to_decimal()),
        ),
    )
