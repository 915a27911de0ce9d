"""``{% arrangements_card case token %}``: the case page's links to plan, promise and hardship."""

from __future__ import annotations

from typing import Any

from django import template

from relance.cases.models import Case
from relance.payments.arrangement_selectors import case_arrangements
from relance.tenancy.actors import Actor

register = template.Library()


@register.inclusion_tag("portal/_arrangements_card.html")
def arrangements_card(case: Case, token: str) -> dict[str, Any]:
    found = case_arrangements(actor=Actor.for_debtor(case_id=case.pk), case_id=case.pk)
    # A disputed case or one on hold takes no arrangement (the dispute is answered first).
    hidden = case.status in {"disputed", "on_hold"} or case.is_closed
    return {"token": token, "plan": found.plan, "promise": found.promise, "hidden": hidden}
