"""Reads of claims and their evidence, scoped through the actor (invariant 6).

``evidence_missing_for_case`` is what "evidence first" (invariant 5) asks of the database: which kinds
the creditor's mandate requires that some claim of the case still lacks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from django.db.models import QuerySet

from relance.cases.models import Case
from relance.claims.models import Claim, Evidence
from relance.core.errors import NotFoundError
from relance.tenancy.actors import Actor


class ClaimNotFoundError(NotFoundError):
    code = "claim.not_found"
    title = "Claim not found"


class EvidenceNotFoundError(NotFoundError):
    code = "evidence.not_found"
    title = "Evidence not found"


def claim_get_for_actor(*, actor: Actor, external_ref: str) -> Claim:
    """A claim of the actor's creditor by its reference; another creditor's claim answers like a missing one."""
    claim = None
    if actor.creditor_id is not None:
        claim = Claim.objects.filter(creditor_id=actor.creditor_id, external_ref=external_ref).first()
    if claim is None:
        raise ClaimNotFoundError(external_ref=external_ref)
    return claim


def evidence_get_for_actor(*, actor: Actor, evidence_id: int) -> Evidence:
    """One piece of evidence, only if its claim's case is visible to the actor (the one choke point)."""
    evidence = (
        Evidence.objects.filter(pk=evidence_id, claim__case_link__case__in=Case.objects.visible_to(actor))
        .select_related("claim")
        .first()
    )
    if evidence is None:
        raise EvidenceNotFoundError(evidence_id=evidence_id)  # same answer for absent and not yours
    return evidence


def evidence_list_for_case(*, case: Case) -> QuerySet[Evidence]:
    """The evidence of every claim of a case the caller already read through ``case_get_for_actor``."""
    return Evidence.objects.filter(claim__case_link__case=case).select_related("claim").order_by("claim_id", "pk")


def evidence_missing(required: Sequence[str], held: Iterable[Collection[str]]) -> tuple[str, ...]:
    """Required kinds that at least one claim lacks, in the mandate's order (pure).

    ``held`` has one collection of kinds per claim. Every claim needs every required kind: one invoice PDF
    does not prove another invoice (invariant 5, "no undue debts").
    """
    claims = list(held)
    return tuple(kind for kind in dict.fromkeys(required) if any(kind not in kinds for kinds in claims))


def evidence_missing_for_case(*, case_id: int, required: Sequence[str]) -> tuple[str, ...]:
    """``evidence_missing`` for the claims of one case: no query when nothing is required, else one."""
    if not required:
        return ()
    held: dict[int, set[str]] = {}
    rows = Claim.objects.filter(case_link__case_id=case_id).values_list("pk", "evidence__kind")
    for claim_id, kind in rows:
        kinds = held.setdefault(claim_id, set())
        if kind:
            kinds.add(kind)
    return evidence_missing(required, held.values())
