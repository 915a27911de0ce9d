"""Placing claims: validate, match the debtor, create the claim, open or extend the case.

Idempotent (invariant 2): placing the same (creditor, external reference) again returns the
existing claim and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.services import case_attach_claim, case_open_or_get
from relance.claims.models import Claim, Debtor
from relance.claims.services import claim_create
from relance.core.errors import ValidationError
from relance.intake.validate import ClaimData, CleanClaim, validate_claim
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


def debtor_match_or_create(*, creditor: Creditor, clean: CleanClaim, actor: Actor) -> Debtor:
    """Same person across rows and creditors: by normalised e-mail, then SIREN, else a new debtor."""
    d = clean.data.debtor
    agency_debtors = Debtor.objects.filter(agency_id=creditor.agency_id)
    match, reason = None, ""
    if clean.email:
        match, reason = agency_debtors.filter(email__iexact=clean.email).order_by("pk").first(), "email"
    if match is None and d.siren:
        match, reason = agency_debtors.filter(siren=d.siren).order_by("pk").first(), "siren"
    if match is not None:
        return match
    debtor = Debtor.objects.create(
        agency_id=creditor.agency_id,
        kind=d.kind,
        first_name=d.first_name.strip(),
        last_name=d.last_name.strip(),
        company_name=d.company_name.strip(),
        siren=d.siren.strip(),
        email=clean.email,
        phone=clean.phone,
        address_line1=d.address_line1.strip(),
        address_line2=d.address_line2.strip(),
        postcode=d.postcode.strip(),
        city=d.city.strip(),
        country=d.country.upper(),
        language=d.language or "fr",
    )
    audit_record(actor=actor, verb="debtor.created", subject=debtor, data={"match": reason or "new"})
    return debtor


@transaction.atomic
def claim_place(*, creditor: Creditor, data: ClaimData, actor: Actor, placed_at: datetime | None = None) -> Placed:
    existing = Claim.objects.filter(creditor=creditor, external_ref=data.external_ref).first()
    if existing is not None:
        return Placed(claim=existing, case=existing.case_link.case, created=False)
    clean, errors = validate_claim(data, today=timezone.localdate())
    if clean is None:
        raise ClaimValidationError(
            "; ".join(f"{e.field}: {e.message}" for e in errors),
            errors=[{"field": e.field, "code": e.code, "message": e.message} for e in errors],
        )
    debtor = debtor_match_or_create(creditor=creditor, clean=clean, actor=actor)
    claim = claim_create(
        creditor=creditor,
        debtor=debtor,
        external_ref=data.external_ref,
        invoice_number=data.invoice_number,
        invoice_date=data.invoice_date,
        due_date=data.due_date,
        amount=clean.amount,
        description=data.description,
        actor=actor,
    )
    strategy = strategy_default()
    case, _ = case_open_or_get(
        creditor=creditor,
        debtor=debtor,
        currency=clean.amount.currency,
        placed_at=placed_at or timezone.now(),
        strategy_key=strategy.key,
        strategy_version=strategy.version,
        actor=actor,
    )
    case_attach_claim(case=case, claim=claim, actor=actor)
    return Placed(claim=claim, case=case, created=True)
