"""Reads of cases, always scoped through ``Case.objects.visible_to(actor)``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet

from relance.cases.models import Case
from relance.claims.keys import email_key
from relance.claims.models import Claim
from relance.core.errors import NotFoundError
from relance.ledger.services import account_balances
from relance.tenancy.actors import Actor


class CaseNotFoundError(NotFoundError):
    code = "case.not_found"
    title = "Case not found"


def case_list(
    *,
    actor: Actor,
    status: str | None = None,
    query: str = "",
    creditor_id: int | None = None,
    placed_from: date | None = None,
    placed_to: date | None = None,
) -> QuerySet[Case]:
    """Cases the actor may see, filtered; ``query`` is a case reference, a claim's reference or invoice
    number, a debtor's e-mail, or part of a debtor's name."""
    qs = Case.objects.visible_to(actor).select_related("creditor", "debtor")
    if status:
        qs = qs.filter(status=status)
    if creditor_id is not None:
        qs = qs.filter(creditor_id=creditor_id)
    if placed_from is not None:
        qs = qs.filter(placed_at__date__gte=placed_from)
    if placed_to is not None:
        qs = qs.filter(placed_at__date__lte=placed_to)
    query = " ".join(query.split())[:100]
    if query:
        exact = Q(reference__iexact=query) | Q(claims__external_ref=query) | Q(claims__invoice_number=query)
        if "@" in query:
            exact |= Q(debtor__email_key=email_key(query))
        elif len(query) >= 2:
            exact |= (
                Q(debtor__last_name__icontains=query)
                | Q(debtor__company_name__icontains=query)
                | Q(debtor__first_name__icontains=query)
            )
        qs = qs.filter(pk__in=Case.objects.filter(exact).values("pk"))
    return qs.order_by("-placed_at", "-pk")


def case_get_for_actor(*, actor: Actor, case_id: int) -> Case:
    try:
        return Case.objects.visible_to(actor).select_related("creditor", "debtor").get(pk=case_id)
    except Case.DoesNotExist:
        raise CaseNotFoundError(case_id=case_id) from None  # same answer for absent and not yours


@dataclass(frozen=True, slots=True)
class ClaimBalance:
    claim: Claim
    outstanding_minor: int

    @property
    def paid_minor(self) -> int:
        return self.claim.original_amount_minor - self.outstanding_minor


def case_claim_balances(*, case: Case) -> list[ClaimBalance]:
    """Each claim of the case with its outstanding amount, derived from the ledger (invariant 1)."""
    claims = list(case.claims.order_by("due_date", "pk"))
    balances = account_balances(keys=[c.ledger_key for c in claims])
    return [ClaimBalance(claim=c, outstanding_minor=balances[c.ledger_key]) for c in claims]


def case_outstanding_minor(*, case: Case) -> int:
    return sum(b.outstanding_minor for b in case_claim_balances(case=case))
