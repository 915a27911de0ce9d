"""Credit notes decided after a dispute or a return: the claim is reduced or cancelled in the ledger.

Same postings as a credit note at intake (``intake.placement``): Dr "claims placed by the creditor" /
Cr the claim, code ``claim.credit_note`` — never more than what is still outstanding on the claim, so a
claim never goes below zero. Entries are never edited.
"""

from __future__ import annotations

from django.db import transaction

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.selectors import case_claim_balances
from relance.claims.services import creditor_claims_account
from relance.core.errors import ValidationError
from relance.ledger.allocate import allocate
from relance.ledger.balance import Line
from relance.ledger.services import ledger_post
from relance.tenancy.actors import Actor

CREDIT_NOTE = "claim.credit_note"


@transaction.atomic
def case_credit(
    *, case: Case, amount_minor: int | None, why: str, key: str, actor: Actor, claim_id: int | None = None
) -> int:
    """Credit ``amount_minor`` (``None``: everything outstanding) on the case's claims, or on one claim.

    Returns the amount credited. ``key`` makes it idempotent (one credit per dispute or return).
    """
    balances = [b for b in case_claim_balances(case=case) if claim_id is None or b.claim.pk == claim_id]
    if claim_id is not None and not balances:
        raise ValidationError("This invoice is not part of the case.", field="claim")
    outstanding = sum(max(b.outstanding_minor, 0) for b in balances)
    amount = outstanding if amount_minor is None else amount_minor
    if amount <= 0 or amount > outstanding:
        raise ValidationError(
            f"The reduction must be between 0.01 and the outstanding amount ({outstanding}).", field="amount"
        )
    # Newest claims first: the debtor keeps the oldest debts' order of payment (C. civ. 1342-10).
    parts, _ = allocate(amount, [(b.claim.ledger_key, b.outstanding_minor) for b in reversed(balances)])
    cur = case.currency
    lines = [Line.cr(p.key, p.amount, cur) for p in parts]
    lines.append(Line.dr(creditor_claims_account(case.creditor, cur), amount, cur))
    ledger_post(idempotency_key=f"{CREDIT_NOTE}:{key}", code=CREDIT_NOTE, lines=lines, memo=why[:300])
    for p in parts:
        audit_record(
            actor=actor,
            verb="claim.credit_note",
            subject_type="claims.claim",
            subject_id=p.key.removeprefix("claim:"),
            data={"reduction": p.amount, "why": why, "key": key},
        )
    return amount
