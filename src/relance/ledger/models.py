"""Generic double-entry ledger: accounts, transactions, postings (invariant 1).

Postings carry a positive ``debit`` or a positive ``credit`` in integer minor units, never both.
Every transaction balances per currency: checked by ``balance.check_balanced`` before writing (both
databases) and by a deferred constraint trigger at commit on PostgreSQL. Entries are never edited;
mistakes are corrected by reversing transactions. The ledger knows accounts, not cases.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Account(models.Model):
    """A ledger account, named by a stable key such as ``claim:42`` or ``trust:1:EUR``."""

    class Kind(models.TextChoices):
        ASSET = "asset", "Asset"
        LIABILITY = "liability", "Liability"
        INCOME = "income", "Income"
        EXPENSE = "expense", "Expense"
        EQUITY = "equity", "Equity"

    key = models.CharField(max_length=120, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    currency = models.CharField(max_length=3)

    def __str__(self) -> str:
        return self.key


class LedgerTransaction(models.Model):
    """A balanced set of postings with a reason (``code``) and an idempotency key."""

    idempotency_key = models.CharField(max_length=160, unique=True)
    code = models.CharField(max_length=60, db_index=True)
    memo = models.CharField(max_length=300, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    reverses = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by")

    def __str__(self) -> str:
        return f"{self.code} {self.idempotency_key}"


class Posting(models.Model):
    """One line of a transaction: a positive debit or a positive credit on one account."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    debit = models.BigIntegerField(default=0)
    credit = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="posting_one_positive_side",
                condition=(Q(debit__gt=0, credit=0) | Q(debit=0, credit__gt=0)),
            )
        ]
        indexes = [models.Index(fields=["account", "transaction"])]

    def __str__(self) -> str:
        return f"{self.account_id} D{self.debit} C{self.credit} {self.currency}"
