"""Posting to the ledger. The only way money moves in Relance."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from relance.core.errors import ConflictError, ValidationError
from relance.ledger.balance import Line, check_balanced
from relance.ledger.models import Account, LedgerTransaction, Posting


def account_ensure(*, key: str, name: str, kind: str, currency: str) -> Account:
    account, _ = Account.objects.get_or_create(key=key, defaults={"name": name, "kind": kind, "currency": currency})
    if account.currency != currency:
        raise ValidationError(f"Account {key} is in {account.currency}, not {currency}.")
    return account


@transaction.atomic
def ledger_post(
    *,
    idempotency_key: str,
    code: str,
    lines: Sequence[Line],
    memo: str = "",
    occurred_at: datetime | None = None,
    reverses: LedgerTransaction | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction; posting the same key twice returns the first one.

    Accounts must exist (``account_ensure``). A repeated key with different lines is a conflict,
    never a silent second posting.
    """
    check_balanced(lines)
    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if _signature(existing) != sorted((ln.account, ln.currency, ln.debit, ln.credit) for ln in lines):
            raise ConflictError("Idempotency key reused with different postings.", idempotency_key=idempotency_key)
        return existing
    accounts = {a.key: a for a in Account.objects.filter(key__in={ln.account for ln in lines})}
    missing = {ln.account for ln in lines} - accounts.keys()
    if missing:
        raise ValidationError(f"Unknown ledger accounts: {', '.join(sorted(missing))}.")
    for ln in lines:
        if accounts[ln.account].currency != ln.currency:
            raise ValidationError(f"Account {ln.account} is not in {ln.currency}.")
    txn = LedgerTransaction.objects.create(
        idempotency_key=idempotency_key,
        code=code,
        memo=memo,
        occurred_at=occurred_at or timezone.now(),
        reverses=reverses,
    )
    Posting.objects.bulk_create(
        Posting(
            transaction=txn,
            account=accounts[ln.account],
            debit=ln.debit,
            credit=ln.credit,
            currency=ln.currency,
        )
        for ln in lines
    )
    return txn


def ledger_reverse(*, txn: LedgerTransaction, code: str, memo: str = "") -> LedgerTransaction:
    """Cancel a transaction by posting its mirror image (entries are never edited)."""
    lines = [
        Line(account=p.account.key, currency=p.currency, debit=p.credit, credit=p.debit)
        for p in txn.postings.select_related("account")
    ]
    return ledger_post(
        idempotency_key=f"reverse:{txn.idempotency_key}", code=code, lines=lines, memo=memo, reverses=txn
    )


def _signature(txn: LedgerTransaction) -> list[tuple[str, str, int, int]]:
    return sorted((p.account.key, p.currency, p.debit, p.credit) for p in txn.postings.select_related("account"))


def account_balance(*, key: str) -> int:
    """Debits minus credits of one account, in minor units (0 for an unknown account)."""
    totals = Posting.objects.filter(account__key=key).aggregate(d=Sum("debit"), c=Sum("credit"))
    return (totals["d"] or 0) - (totals["c"] or 0)


def account_balances(*, keys: Sequence[str]) -> dict[str, int]:
    rows = (
        Posting.objects.filter(account__key__in=keys).values("account__key").annotate(d=Sum("debit"), c=Sum("credit"))
    )
    result = dict.fromkeys(keys, 0)
    for row in rows:
        result[row["account__key"]] = (row["d"] or 0) - (row["c"] or 0)
    return result
