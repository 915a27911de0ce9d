"""Writes on debtors and claims. A claim enters the ledger the moment it exists."""

from __future__ import annotations

from relance.ledger.models import Account
from relance.ledger.services import account_ensure
from relance.tenancy.models import Creditor


def creditor_claims_account(creditor: Creditor, currency: str) -> str:
    """Contra account of the receivables a creditor placed with us (claims under management)."""
    key = f"creditor:{creditor.pk}:claims:{currency}"
    account_ensure(
        key=key, name=f"Claims placed by {creditor.legal_name}", kind=Account.Kind.LIABILITY, currency=currency
    )
    return key
