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
    # The payer's account when the bank told us (camt.053 ``DbtrAcct``): a later transfer from the
    # same account for the exact amount matches this case (PAY-06 step 4).
    payer_iban = models.CharField(max_length=34, blank=True, db_index=True)
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


class UnmatchedBankEntry(TimeStampedModel):
    """A credit on the trust account that no case could be matched to: the queue a human works through.

    Filled by ``payments.bank.camt053_import`` (DOMAIN-RULES PAY-06, step 5: the manual queue). One row
    per bank entry (``entry_key`` is the same idempotency key a matched entry's payment would carry),
    so importing a statement again adds nothing. Resolved by recording the payment against a case
    (``matched``, with its payment) or by setting it aside (``ignored``, e.g. a refund to make).
    """

    class Status(models.TextChoices):
        OPEN = "open", _("To match")
        MATCHED = "matched", _("Matched")
        IGNORED = "ignored", _("Ignored")

    class Reason(models.TextChoices):
        NO_MATCH = "no_match", _("No case found")
        AMBIGUOUS = "ambiguous", _("Several cases could match")
        REJECTED = "rejected", _("The matched case refused the payment")
        DD_MISMATCH = "dd_mismatch", _("A direct-debit credit of another amount than the file")
        DD_RETURNED = "dd_returned", _("A credit for a direct debit marked returned")

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="unmatched_bank_entries")
    statement_id = models.CharField(max_length=140)
    account_iban = models.CharField(max_length=34)
    entry_key = models.CharField(max_length=120, unique=True)
    entry_ref = models.CharField(max_length=140, blank=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    booking_date = models.DateField(null=True, blank=True)
    value_date = models.DateField(null=True, blank=True)
    debtor_name = models.CharField(max_length=140, blank=True)
    debtor_iban = models.CharField(max_length=34, blank=True)
    structured_ref = models.CharField(max_length=35, blank=True)
    remittance_text = models.TextField(blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.NO_MATCH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="bank_entry")

    class Meta:
        constraints = [
            models.CheckConstraint(name="bank_entry_amount_positive", condition=models.Q(amount_minor__gt=0)),
            # A matched entry names its payment; an open or ignored one has none.
            models.CheckConstraint(
                name="bank_entry_matched_has_payment",
                condition=models.Q(status="matched", payment__isnull=False)
                | models.Q(~models.Q(status="matched"), payment__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entry_key} {self.amount_minor} {self.currency} ({self.status})"


class ReconciledBankEntry(TimeStampedModel):
    """A trust-account credit accounted for without a new payment: the bank crediting a direct-debit
    file we sent, as one entry for the file or one per collection (``payments.bank``, PAY-06).

    The collections themselves are payments (``sepa_settle``); this row ties the bank's entry to the
    file so importing the statement again changes nothing and the trust account reconciles.
    """

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="reconciled_bank_entries")
    statement_id = models.CharField(max_length=140)
    entry_key = models.CharField(max_length=120, unique=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    booking_date = models.DateField(null=True, blank=True)
    value_date = models.DateField(null=True, blank=True)
    batch = models.ForeignKey("payments.DirectDebitBatch", on_delete=models.PROTECT, related_name="bank_entries")
    instalment = models.ForeignKey(
        "payments.PlanInstalment", on_delete=models.PROTECT, null=True, blank=True, related_name="bank_entries"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(name="reconciled_entry_amount_positive", condition=models.Q(amount_minor__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.entry_key} {self.amount_minor} {self.currency} (file {self.batch_id})"


# Card payments, reversals, receipts, disputes, returns, creditor notifications (issue 5).
# Arrangements live in their own module; imported here so the payments app registers them.
from relance.payments.arrangement_models import (  # noqa: E402
    ArrangementPolicy,
    DirectDebitBatch,
    DirectDebitReturn,
    HardshipStatement,
    PaymentPlan,
    PlanInstalment,
    Promise,
    SepaCreditor,
    SepaMandate,
)
from relance.payments.portal_models import (  # noqa: E402
    CreditorNotification,
    Dispute,
    DisputeFile,
    PaymentReversal,
    PspCheckout,
    PspWebhookEvent,
    Receipt,
    ReturnPolicy,
    ReturnRequest,
)

__all__ = [
    "ArrangementPolicy",
    "CreditorNotification",
    "DirectDebitBatch",
    "DirectDebitReturn",
    "Dispute",
    "DisputeFile",
    "HardshipStatement",
    "Payment",
    "PaymentPlan",
    "PaymentReversal",
    "PlanInstalment",
    "Promise",
    "PspCheckout",
    "PspWebhookEvent",
    "Receipt",
    "ReturnPolicy",
    "ReturnRequest",
    "SepaCreditor",
    "SepaMandate",
    "UnmatchedBankEntry",
]
