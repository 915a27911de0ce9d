"""Placing one claim (API): validate, then the same bulk path as file imports.

Idempotent (invariant 2): placing the same (creditor, external reference) again returns the existing
claim; a lower amount is a credit note, a higher one is flagged for review (``placement.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from relance.cases.models import Case
from relance.claims.models import Claim
from relance.core.errors import ValidationError
from relance.intake.placement import claims_place_many
from relance.intake.validate import ClaimData, validate_claim
from relance.strategies.selectors import strategy_default
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor


class ClaimValidationError(ValidationError):
    code = "claim.invalid"
    title = "The claim has invalid fields"


@dataclass(frozen=True, slots=True)
class Placed:
    claim: Claim
    case: Case
    created: bool
    outcome: str = "created"  # created | unchanged | credited | review
    detail: str = ""


@transaction.atomic
def claim_place(*, creditor: Creditor, data: ClaimData, actor: Actor, placed_at: datetime | None = None) -> Placed:
    clean, errors = validate_claim(data, today=timezone.localdate(), required=creditor.required_fields)
    if clean is None:
        existing = Claim.objects.filter(creditor=creditor, external_ref=data.external_ref).first()
        if existing is not None:
            # A re-sent claim that no longer validates (e.g. its date went out of range) changes nothing.
            return Placed(claim=existing, case=existing.case_link.case, created=False, outcome="unchanged")
        raise ClaimValidationError(
            "; ".join(f"{e.field}: {e.message}" for e in errors),
            errors=[{"field": e.field, "code": e.code, "message": e.message} for e in errors],
        )
    strategy = strategy_default()
    (outcome,) = claims_place_many(
        creditor=creditor,
        items=[clean],
        actor=actor,
        placed_at=placed_at or timezone.now(),
        strategy_key=strategy.key,
        strategy_version=strategy.version,
    )
    return Placed(
        claim=Claim.objects.get(pk=outcome.claim_id),
        case=Case.objects.select_related("creditor", "debtor").get(pk=outcome.case_id),
        created=outcome.status == "created",
        outcome=outcome.status,
        detail=outcome.detail,
    )


MAX_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class BatchItem:
    """The outcome of one element of an API batch, in the order it was sent."""

    index: int
    external_ref: str
    status: str  # created | unchanged | credited | review | invalid
    claim_id: int | None = None
    case_id: int | None = None
    detail: str = ""
    errors: tuple[dict[str, str], ...] = ()


@transaction.atomic
def claims_place_batch(*, creditor: Creditor, items: list[ClaimData], actor: Actor) -> list[BatchItem]:
    """Place up to 10,000 claims at once: valid ones are placed, invalid ones reported by index.

    Duplicated references inside one batch are errors (the first occurrence wins).
    """
    if len(items) > MAX_BATCH:
        raise ValidationError(f"At most {MAX_BATCH} claims per call.", field="body")
    today = timezone.localdate()
    results: dict[int, BatchItem] = {}
    valid = []
    first_seen: dict[str, int] = {}
    for index, data in enumerate(items):
        clean, errors = validate_claim(data, today=today, required=creditor.required_fields)
        problems = [{"field": e.field, "code": e.code, "message": e.message} for e in errors]
        first = first_seen.setdefault(data.external_ref, index)
        if first != index:
            problems.append(
                {
                    "field": "external_ref",
                    "code": "ref.duplicate_in_batch",
                    "message": f"Reference already at index {first} / Référence déjà présente à l'index {first}",
                }
            )
        if clean is None or problems:
            results[index] = BatchItem(index, data.external_ref, "invalid", errors=tuple(problems))
        else:
            valid.append((index, clean))
    strategy = strategy_default()
    now = timezone.now()
    for start in range(0, len(valid), 1000):
        chunk = valid[start : start + 1000]
        outcomes = claims_place_many(
            creditor=creditor,
            items=[clean for _, clean in chunk],
            actor=actor,
            placed_at=now,
            strategy_key=strategy.key,
            strategy_version=strategy.version,
        )
        for (index, clean), outcome in zip(chunk, outcomes, strict=True):
            results[index] = BatchItem(
                index, clean.data.external_ref, outcome.status, outcome.claim_id, outcome.case_id, outcome.detail
            )
    return [results[i] for i in range(len(items))]
