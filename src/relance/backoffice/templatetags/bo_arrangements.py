"""``{% case_arrangements_panel case %}``: the case's plan, instalments, mandate and promise (back office)."""

from __future__ import annotations

from typing import Any

from django import template

from relance.cases.models import Case
from relance.core.money import Money
from relance.payments.arrangement_selectors import case_arrangements
from relance.tenancy.actors import Actor
from relance.tenancy.models import User

register = template.Library()


@register.inclusion_tag("backoffice/_arrangements_panel.html", takes_context=True)
def case_arrangements_panel(context: dict[str, Any], case: Case) -> dict[str, Any]:
    user = context["request"].user
    if not isinstance(user, User):
        return {"plan": None, "promise": None}
    found = case_arrangements(actor=Actor.for_user(user), case_id=case.pk)  # the read choke point
    return {
        "plan": found.plan,
        "total": Money(found.plan.total_minor, found.plan.currency) if found.plan else None,
        "instalments": [(i, Money(i.amount_minor, case.currency)) for i in found.instalments],
        "mandate": found.mandate,
        "promise": found.promise,
        "promise_amount": Money(found.promise.amount_minor, found.promise.currency) if found.promise else None,
    }
