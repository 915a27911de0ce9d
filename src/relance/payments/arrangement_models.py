"""Arrangements: instalment plans, SEPA direct-debit mandates and batches, promises, hardship statements.

Imported by ``payments.models`` so Django registers them with the payments app. Money in integer
minor units; an instalment's money is never typed in as paid: it is paid when the case's ledger
shows it (``arrangements.arrangements_review``) or when its direct debit settles.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from relance.core.models import TimeStampedModel


class ArrangementPolicy(TimeStampedModel):
    """A creditor's policy for plans and promises (``schedule.PlanPolicy``); defaults when absent."""

    creditor = models.OneToOneField("tenancy.Creditor", on_delete=models.CASCADE, related_name="arrangement_policy")
    max_months = models.PositiveSmallIntegerField(default=12)
    min_instalment_minor = models.PositiveIntegerField(default=2000)
    first_due_within_days = models.PositiveSmallIntegerField(default=30)
    promise_within_days = models.PositiveSmallIntegerField(default=30)
    promise_min_percent = models.PositiveSmallIntegerField(default=100)
    grace_days = models.PositiveSmallIntegerField(default=5)
    allowance_per_dependant_minor = models.PositiveIntegerField(default=30000)
    hardship_share_percent = models.PositiveSmallIntegerField(default=50)

    class Meta:
        constraints = [
            models.CheckConstraint(name="policy_months_positive", condition=Q(max_months__gte=1)),
            models.CheckConstraint(name="policy_promise_percent", condition=Q(promise_min_percent__lte=100)),
            models.CheckConstraint(name="policy_hardship_percent", condition=Q(hardship_share_percent__lte=100)),
        ]

    def __str__(self) -> str:
        return f"policy of {self.creditor_id}"


class SepaCreditor(TimeStampedModel):
    """The agency as SEPA direct-debit creditor: its identifier (ICS, PAY-04) on the trust account."""

    agency = models.OneToOneField("tenancy.Agency", on_delete=models.CASCADE, related_name="sepa_creditor")
    creditor_identifier = models.CharField(max_length=35)  # e.g. FR72ZZZ123456
    bic = models.CharField(max_length=11, blank=True)

    def __str__(self) -> str:
        return self.creditor_identifier


class PaymentPlan(TimeStampedModel):
    """An échéancier: the balance in monthly instalments, accepted by policy or by an agent."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Awaiting an adviser")
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        BROKEN = "broken", _("Broken")
        REJECTED = "rejected", _("Declined")
        CANCELLED = "cancelled", _("Cancelled")

    class Method(models.TextChoices):
        DIRECT_DEBIT = "direct_debit", _("SEPA direct debit")
        CARD = "card", _("Card")
        TRANSFER = "transfer", _("Bank transfer")

    class Source(models.TextChoices):
        PORTAL = "portal", _("Debtor portal")
        HARDSHIP = "hardship", _("Hardship budget")
        AGENT = "agent", _("Adviser")

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="plans")
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    method = models.CharField(max_length=20, choices=Method.choices)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PORTAL)
    total_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    months = models.PositiveSmallIntegerField()
    first_due = models.DateField()
    # The case's outstanding balance when the plan started: instalments are paid as it goes down.
    outstanding_at_start_minor = models.BigIntegerField()
    within_policy = models.BooleanField()
    violations = models.JSONField(default=list, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=80, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="plan_total_positive", condition=Q(total_minor__gt=0)),
            models.UniqueConstraint(
                fields=["case"], condition=Q(status__in=["proposed", "active"]), name="plan_one_open_per_case"
            ),
        ]

    def __str__(self) -> str:
        return f"plan {self.pk} of case {self.case_id} ({self.status})"


class SepaMandate(TimeStampedModel):
    """A SEPA Core mandate signed online (PAY-08): UMR, debtor, IBAN, date of signature, evidence."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="mandates")
    plan = models.OneToOneField(PaymentPlan, on_delete=models.PROTECT, related_name="mandate")
    umr = models.CharField(max_length=35, unique=True)
    creditor_identifier = models.CharField(max_length=35)
    debtor_name = models.CharField(max_length=70)
    iban = models.CharField(max_length=34)
    bic = models.CharField(max_length=11, blank=True)
    signed_at = models.DateTimeField()
    signature_date = models.DateField()
    signed_ip = models.GenericIPAddressField(null=True, blank=True)
    signed_user_agent = models.CharField(max_length=300, blank=True)
    wording_sha256 = models.CharField(max_length=64)  # hash of the mandate text the debtor accepted
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # FRST until a first collection went through; back to FRST if the first one is rejected (EPC rules).
    first_collected = models.BooleanField(default=False)
    last_collection_date = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return self.umr


class DirectDebitBatch(TimeStampedModel):
    """One pain.008 file handed to the bank: its message id, collection date, totals and the XML."""

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="direct_debit_batches")
    message_id = models.CharField(max_length=35, unique=True)
    schema = models.CharField(max_length=20)
    collection_date = models.DateField()
    count = models.PositiveIntegerField()
    total_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="EUR")
    xml = models.TextField()

    def __str__(self) -> str:
        return self.message_id


class PlanInstalment(TimeStampedModel):
    """One due date of a plan; collected by direct debit (a batch) or paid by the debtor."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SUBMITTED = "submitted", _("Sent to the bank")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Missed")
        CANCELLED = "cancelled", _("Cancelled")

    plan = models.ForeignKey(PaymentPlan, on_delete=models.CASCADE, related_name="instalments")
    number = models.PositiveSmallIntegerField()
    due_date = models.DateField(db_index=True)
    amount_minor = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    sequence_type = models.CharField(max_length=4, blank=True)  # FRST | RCUR, set when submitted
    end_to_end_id = models.CharField(max_length=35, null=True, blank=True, unique=True)
    batch = models.ForeignKey(
        DirectDebitBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="instalments"
    )
    collection_date = models.DateField(null=True, blank=True)
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    failure_code = models.CharField(max_length=10, blank=True)  # ISO 20022 reason: AM04, MD01, …
    failed_at = models.DateTimeField(null=True, blank=True)
    # Presented to the bank how many times; an AM04 return (insufficient funds) is presented once more,
    # on ``represent_on`` (PAY-09; never after a refund or a mandate problem).
    presentations = models.PositiveSmallIntegerField(default=0)
    represent_on = models.DateField(null=True, blank=True)
    previous_end_to_end_id = models.CharField(max_length=35, blank=True, db_index=True)

    class Meta:
        ordering = ["plan", "number"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="instalment_unique_number"),
            models.CheckConstraint(name="instalment_amount_positive", condition=Q(amount_minor__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}#{self.number} {self.amount_minor} {self.status}"


class DirectDebitReturn(TimeStampedModel):
    """A collected direct debit taken back by the debtor's bank (R-transaction): the mirror ledger
    transaction and the ISO reason code (AM04, MD01, MD06…). Card refunds and chargebacks are
    ``PaymentReversal``."""

    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="direct_debit_return")
    reason_code = models.CharField(max_length=10)
    ledger_transaction = models.OneToOneField(
        "ledger.LedgerTransaction", on_delete=models.PROTECT, related_name="direct_debit_return"
    )

    def __str__(self) -> str:
        return f"reversal of {self.payment_id} ({self.reason_code})"


class Promise(TimeStampedModel):
    """A promise to pay an amount by a date; kept or broken is read from the ledger after the date."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        KEPT = "kept", _("Kept")
        BROKEN = "broken", _("Broken")
        CANCELLED = "cancelled", _("Cancelled")

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="promises")
    due_date = models.DateField()
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    outstanding_at_promise_minor = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="promise_amount_positive", condition=Q(amount_minor__gt=0)),
            models.UniqueConstraint(
                fields=["case"], condition=Q(status="pending"), name="promise_one_pending_per_case"
            ),
        ]

    def __str__(self) -> str:
        return f"promise {self.amount_minor} by {self.due_date} ({self.status})"


class HardshipStatement(TimeStampedModel):
    """A debtor's short budget and what it allows; vulnerable ones wait for a human (``to_review``)."""

    class Status(models.TextChoices):
        RECORDED = "recorded", _("Recorded")
        TO_REVIEW = "to_review", _("To review by an adviser")
        REVIEWED = "reviewed", _("Reviewed")

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="hardship_statements")
    income_minor = models.BigIntegerField()
    fixed_charges_minor = models.BigIntegerField()
    dependants = models.PositiveSmallIntegerField()
    declared_vulnerable = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    capacity_minor = models.BigIntegerField()
    proposed_months = models.PositiveSmallIntegerField()
    proposed_instalment_minor = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)

    def __str__(self) -> str:
        return f"hardship of case {self.case_id} ({self.status})"
