"""Reads of cases, always scoped through ``Case.objects.visible_to(actor)``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import QuerySet

from relance.cases.models import Case
from relance.claims.models import Claim
from relance.core.errors import NotFoundError
from relance.ledger.services import account_balances
from relance.tenancy.actors import Actor


class CaseNotFoundError(NotFoundError):
    code = "case.not_found"
    title = "Case not found"


def case_list(*, actor: Actor, status: str | None = None) -> QuerySet[Case]:
    qs = Case.objects.visible_to(actor).select_related("creditor", "debtor")
    if status:
        qs = qs.filter(status=status)
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


def cases_outstanding_minor(*, case_ids: Sequence[int]) -> dict[int, int]:
    """``case_outstanding_minor`` for many cases in two queries (the engine's batches)."""
    from relance.cases.models import CaseClaim  # noqa: PLC0415

    links = list(CaseClaim.objects.filter(case_id__in=case_ids).values_list("case_id", "claim_id"))
    balances = account_balances(keys=[f"claim:{claim_id}" for _, claim_id in links])
    result = dict.fromkeys(case_ids, 0)
    for case_id, claim_id in links:
        result[case_id] += balances[f"claim:{claim_id}"]
    return result
