"""Writes on debtors and claims. A claim enters the ledger the moment it exists."""

from __future__ import annotations

from datetime import date

from django.db import transaction

from relance.audit.services import audit_record
from relance.claims.models import Claim, Debtor
from relance.core.money import Money
from relance.ledger.balance import Line
from relance.ledger.models import Account
from relance.ledger.services import account_ensure, ledger_post
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor


def creditor_claims_account(creditor: Creditor, currency: str) -> str:
    """Contra account of the receivables a creditor placed with us (claims under management)."""
    key = f"creditor:{creditor.pk}:claims:{currency}"
    account_ensure(
        key=key, name=f"Claims placed by {creditor.legal_name}", kind=Account.Kind.LIABILITY, currency=currency
    )
    return key


@transaction.atomic
def claim_create(
    *,
    creditor: Creditor,
    debtor: Debtor,
    external_ref: str,
    invoice_number: str,
    invoice_date: date,
    due_date: date,
    amount: Money,
    description: str = "",
    actor: Actor,
) -> Claim:
    """Create a claim and post its placement: Dr claim receivable / Cr creditor claims."""
    claim = Claim.objects.create(
        creditor=creditor,
        debtor=debtor,
        external_ref=external_ref,
        invoice_number=invoice_number,
        invoice_date=invoice_date,
        due_date=due_date,
        currency=amount.currency,
        original_amount_minor=amount.minor,
        segment=creditor.segment,
        description=description,
    )
    account_ensure(
        key=claim.ledger_key,
        name=f"Claim {creditor.slug}/{external_ref}",
        kind=Account.Kind.ASSET,
        currency=amount.currency,
    )
    ledger_post(
        idempotency_key=f"claim.placed:{claim.pk}",
        code="claim.placed",
        lines=[
            Line.dr(claim.ledger_key, amount.minor, amount.currency),
            Line.cr(creditor_claims_account(creditor, amount.currency), amount.minor, amount.currency),
        ],
        memo=f"Placement of {creditor.slug}/{external_ref}",
    )
    audit_record(
        actor=actor,
        verb="claim.created",
        subject=claim,
        data={
            "creditor": creditor.pk,
            "external_ref": external_ref,
            "amount": amount.minor,
            "currency": amount.currency,
        },
    )
    return claim
