"""The back-office case page's sections for disputes, returns and direct payments (inclusion tag)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from relance.cases.models import Case
from relance.payments.models import Dispute, PaymentReversal, Receipt, ReturnRequest

register = template.Library()

ANSWER_ROLES = {"creditor_admin", "agency_admin", "supervisor", "agent"}


@register.inclusion_tag("backoffice/_case_more.html", takes_context=True)
def backoffice_case_more(context: dict[str, Any], case: Case) -> dict[str, Any]:
    user = context.get("user")
    role = getattr(user, "role", "")
    return {
        "case": case,
        "csrf_token": context.get("csrf_token"),
        "can_answer": role in ANSWER_ROLES,
        "disputes": Dispute.objects.filter(case=case).prefetch_related("files").order_by("-created_at"),
        "returns": ReturnRequest.objects.filter(case=case).select_related("claim").order_by("-created_at"),
        "receipts": Receipt.objects.filter(payment__case=case).select_related("payment").order_by("-issued_at"),
        "reversals": PaymentReversal.objects.filter(payment__case=case).order_by("-occurred_at"),
        "today": timezone.localdate().isoformat(),
        "closed": case.is_closed,
    }
