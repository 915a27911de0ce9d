"""The case page's sections for card payment, receipts, disputes, returns, contact history and
preferences — an inclusion tag, so the case view itself stays as it is."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Sum
from django.http import HttpRequest

from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.comms.models import Action
from relance.core.money import Money
from relance.ledger.models import Posting
from relance.payments.models import Dispute, Payment, Receipt, ReturnRequest
from relance.payments.psp import card_payments_enabled
from relance.payments.returns import returnable_claims

register = template.Library()

SENT = (Action.Status.SENT, Action.Status.DELIVERED, Action.Status.BOUNCED)


@register.inclusion_tag("portal/_case_more.html", takes_context=True)
def portal_case_more(context: dict[str, Any], case: Case, token: str) -> dict[str, Any]:
    request: HttpRequest | None = context.get("request")
    locale = "en_GB" if request is not None and (request.LANGUAGE_CODE or "fr").startswith("en") else "fr_FR"
    outstanding = case_outstanding_minor(case=case)
    claims = list(case.claims.all())
    principal = sum(c.original_amount_minor for c in claims)
    # Credit notes (disputes upheld, returns, lower amounts sent by the creditor) are not payments.
    credited = Posting.objects.filter(
        transaction__code="claim.credit_note", account__key__in=[c.ledger_key for c in claims]
    ).aggregate(c=Sum("credit"), d=Sum("debit"))
    credited_minor = (credited["c"] or 0) - (credited["d"] or 0)
    money = lambda minor: Money(minor, case.currency).format(locale)  # noqa: E731
    receipts = Receipt.objects.filter(payment__case=case).select_related("payment").order_by("-issued_at")
    payments = Payment.objects.filter(case=case).prefetch_related("reversals").order_by("-received_at")
    disputes = Dispute.objects.filter(case=case).prefetch_related("files").order_by("-created_at")
    return {
        "token": token,
        "case": case,
        "card_enabled": card_payments_enabled() and outstanding > 0,
        "can_dispute": not case.is_closed and not any(d.status == Dispute.Status.OPEN for d in disputes),
        "can_return": bool(returnable_claims(case=case)),
        "disputes": disputes,
        "returns": ReturnRequest.objects.filter(case=case).select_related("claim").order_by("-created_at"),
        "receipts": [(r, Money(r.payment.amount_minor, r.payment.currency).format(locale)) for r in receipts],
        "reversals": [
            (rv, Money(rv.amount_minor, rv.currency).format(locale)) for p in payments for rv in p.reversals.all()
        ],
        "split": {
            "principal": money(principal),
            "interest": money(0),
            "other": money(0),
            "credited": money(credited_minor) if credited_minor else "",
            "paid": money(principal - credited_minor - outstanding),
            "left": money(outstanding),
        },
        "history": Action.objects.filter(case=case, status__in=SENT).order_by("-sent_at")[:50],
    }


@register.simple_tag
def card_payments_on() -> bool:
    """Whether the portal offers card payment (a PSP chosen and its keys set)."""
    return card_payments_enabled()
