"""Money in: payments and their reversals. Every payment is posted to the ledger."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from relance.cases.models import Case
from relance.core.models import TimeStampedModel
from relance.ledger.models import LedgerTransaction


class Payment(TimeStampedModel):
    """One amount received for a case, by one method, with its ledger transaction."""

    class Method(models.TextChoices):
        SANDBOX = "sandbox", _("Sandbox (test, no real money)")
        CARD = "card", _("Card")
        TRANSFER = "transfer", _("Bank transfer")
        DIRECT_DEBIT = "direct_debit", _("SEPA direct debit")
        CREDITOR_REPORTED = "creditor_reported", _("Paid to the creditor")
        SIMULATED = "simulated", _("Simulation")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="payments")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=20, choices=Method.choices)
    # The provider's id (PSP payment id, bank entry reference): a retried webhook is the same payment.
    external_ref = models.CharField(max_length=120)
    received_at = models.DateTimeField()
    ledger_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, related_name="payment"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["method", "external_ref"], name="payment_unique_external_ref"),
            models.CheckConstraint(name="payment_amount_positive", condition=models.Q(amount_minor__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.amount_minor} {self.currency} {self.method} for {self.case_id}"
