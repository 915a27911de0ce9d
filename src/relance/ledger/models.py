"""Generic double-entry ledger: accounts, transactions, postings (invariant 1).

Postings carry a positive ``debit`` or a positive ``credit`` in integer minor units, never both.
Every transaction balances per currency: checked by ``balance.check_balanced`` before writing (both
databases) and by a deferred constraint trigger at commit on PostgreSQL. Entries are never edited;
mistakes are corrected by reversing transactions. The ledger knows accounts, not cases.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from relance.ledger.fees import FeeScheduleError, schedule_parse


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


# --- Money out: fee schedules, remittances, fee invoices (issue 5; FR-COL-02, FR-COL-14) ----------


class FeeSchedule(models.Model):
    """A creditor's fee terms (R124-3 3°): the document read by ``ledger.fees.schedule_parse``.

    Tiers by amount, by age of the debt, by B2C/B2B, a minimum fee per case, the VAT rate, the
    remittance mode (net or gross) and the agreed remittance term (FR-COL-14). See docs/payments.md.
    """

    creditor = models.OneToOneField("tenancy.Creditor", on_delete=models.PROTECT, related_name="fee_schedule")
    document = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"fees of {self.creditor_id}"

    def clean(self) -> None:
        try:
            schedule_parse(self.document)
        except FeeScheduleError as exc:
            raise DjangoValidationError({"document": f"{exc.field}: {exc.message}"}) from None


class PayoutBatch(models.Model):
    """One SEPA credit-transfer file (pain.001) paying the remittances of one run from the trust account."""

    class Status(models.TextChoices):
        ORDERED = "ordered", _("Ordered (file to send to the bank)")
        PAID = "paid", _("Paid")

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="payout_batches")
    period_end = models.DateField()
    msg_id = models.CharField(max_length=35, unique=True)
    execution_date = models.DateField()
    currency = models.CharField(max_length=3)
    transactions = models.PositiveIntegerField()
    control_sum_minor = models.BigIntegerField()
    xml = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ORDERED)
    paid_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.msg_id


class Remittance(models.Model):
    """What one creditor is paid for one period: collected, commission, VAT, transfer (FR-COL-14).

    Written once by the run, never edited except ``status``/``paid_transaction`` when the transfer
    is confirmed. Totals are exact sums of the lines (``ledger.fees``).
    """

    class Status(models.TextChoices):
        ORDERED = "ordered", _("Transfer ordered")
        PAID = "paid", _("Paid")
        NOTHING_TO_PAY = "settled", _("Nothing to transfer")

    class Mode(models.TextChoices):
        NET = "net", _("Net (fee deducted)")
        GROSS = "gross", _("Gross (fee invoiced)")

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="remittances")
    creditor = models.ForeignKey("tenancy.Creditor", on_delete=models.PROTECT, related_name="remittances")
    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="remittances")
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    mode = models.CharField(max_length=5, choices=Mode.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    collected_minor = models.BigIntegerField()
    commission_minor = models.BigIntegerField()
    vat_minor = models.BigIntegerField()
    deducted_minor = models.BigIntegerField()
    transfer_minor = models.BigIntegerField()
    receivable_minor = models.BigIntegerField()
    first_encashed_on = models.DateField()
    due_by = models.DateField()
    payee_name = models.CharField(max_length=200)
    payee_iban = models.CharField(max_length=34)
    end_to_end_id = models.CharField(max_length=35, unique=True)
    ledger_transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="remittance")
    paid_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="remittance_paid"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Idempotency: one remittance per creditor, period and currency.
            models.UniqueConstraint(fields=["creditor", "period_end", "currency"], name="remittance_unique_period"),
            models.CheckConstraint(
                name="remittance_sums",
                condition=Q(transfer_minor=models.F("collected_minor") - models.F("deducted_minor"))
                & Q(receivable_minor=models.F("commission_minor") + models.F("vat_minor") - models.F("deducted_minor")),
            ),
        ]
        ordering = ["-period_end", "creditor_id"]

    def __str__(self) -> str:
        return f"remittance {self.pk} to {self.creditor_id} for {self.period_end}"


class RemittanceItem(models.Model):
    """One ledger movement on the creditor's payable account, remitted once and only once."""

    remittance = models.ForeignKey(Remittance, on_delete=models.PROTECT, related_name="items")
    source_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, related_name="remittance_item"
    )
    reference = models.CharField(max_length=40)  # the case reference
    amount_minor = models.BigIntegerField()  # credit minus debit on the payable account
    encashed_on = models.DateField()

    def __str__(self) -> str:
        return f"{self.reference} {self.amount_minor}"


class RemittanceLine(models.Model):
    """One case on a remittance statement: collected, the rate applied, the commission (HT)."""

    remittance = models.ForeignKey(Remittance, on_delete=models.PROTECT, related_name="lines")
    reference = models.CharField(max_length=40)
    # The creditor's own references for the case (its invoice numbers), for its reconciliation.
    creditor_refs = models.CharField(max_length=300, blank=True)
    segment = models.CharField(max_length=3)
    age_days = models.IntegerField()
    placed_minor = models.BigIntegerField()
    collected_minor = models.BigIntegerField()
    rate = models.DecimalField(max_digits=6, decimal_places=3)
    commission_minor = models.BigIntegerField()
    minimum_applied = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["remittance", "reference"], name="remittance_line_unique_case"),
        ]
        indexes = [models.Index(fields=["reference"])]

    def __str__(self) -> str:
        return f"{self.reference} {self.collected_minor} fee {self.commission_minor}"


class InvoiceSequence(models.Model):
    """The last invoice number used per agency and year: locked row, so numbers have no gaps."""

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="+")
    year = models.PositiveIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agency", "year"], name="invoice_sequence_unique")]

    def __str__(self) -> str:
        return f"{self.agency_id}/{self.year}: {self.last_number}"


class FeeInvoice(models.Model):
    """The agency's success-fee invoice for one remittance (CGI art. 242 nonies A mentions).

    Seller and buyer identities are copied at issue (an invoice never changes afterwards).
    """

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="fee_invoices")
    creditor = models.ForeignKey("tenancy.Creditor", on_delete=models.PROTECT, related_name="fee_invoices")
    remittance = models.OneToOneField(Remittance, on_delete=models.PROTECT, related_name="invoice")
    year = models.PositiveIntegerField()
    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=20)
    issued_on = models.DateField()
    service_from = models.DateField()
    service_to = models.DateField()
    currency = models.CharField(max_length=3)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    amount_ht_minor = models.BigIntegerField()
    vat_minor = models.BigIntegerField()
    amount_ttc_minor = models.BigIntegerField()
    deducted_minor = models.BigIntegerField()
    due_minor = models.BigIntegerField()
    seller = models.JSONField()
    buyer = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "year", "sequence"], name="fee_invoice_unique_number"),
            models.CheckConstraint(
                name="fee_invoice_ttc",
                condition=Q(amount_ttc_minor=models.F("amount_ht_minor") + models.F("vat_minor")),
            ),
        ]

    def __str__(self) -> str:
        return self.number
