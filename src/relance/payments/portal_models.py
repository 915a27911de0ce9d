"""Card payments through PSPs, reversals, receipts, disputes, returns and creditor notifications.

Kept apart from ``payments.models`` (which imports this module) so that parallel work on plans and
promises does not touch the same lines. Invariants kept here by constraints:

* a PSP event is applied once: ``(provider, event_id)`` is unique (a webhook delivered twice is one row);
* a payment has at most one receipt, and a receipt number is unique (FR-COL-13);
* a dispute file, like evidence, is identified by its SHA-256; files are never edited.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from relance.cases.models import Case
from relance.claims.models import Claim
from relance.core.models import TimeStampedModel
from relance.ledger.models import LedgerTransaction
from relance.tenancy.models import Creditor


class PspCheckout(TimeStampedModel):
    """A card payment page opened at a PSP for a case (Stripe Checkout Session, Mollie payment).

    ``session_id`` is the provider's id of the page (``cs_…``, ``tr_…``); ``payment_ref`` the id of
    the money movement the webhooks talk about (Stripe PaymentIntent ``pi_…``; Mollie ``tr_…``).
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Waiting for the payment")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Not paid")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="psp_checkouts")
    provider = models.CharField(max_length=20)
    session_id = models.CharField(max_length=120)
    payment_ref = models.CharField(max_length=120, blank=True, db_index=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    checkout_url = models.URLField(max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "session_id"], name="psp_checkout_unique_session"),
            models.CheckConstraint(name="psp_checkout_amount_positive", condition=Q(amount_minor__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.session_id}"


class PspWebhookEvent(models.Model):
    """One provider event, stored once (deduplicated by the provider's event id).

    ``pending``: it names a payment we have not recorded yet (a refund that overtook its payment);
    it is applied as soon as that payment is recorded, so order of delivery does not matter.
    """

    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied")
        PENDING = "pending", _("Waiting for its payment")
        IGNORED = "ignored", _("Ignored")

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=160)
    kind = models.CharField(max_length=40)
    payment_ref = models.CharField(max_length=120, blank=True, db_index=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="psp_event_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} ({self.kind}, {self.status})"


class PaymentReversal(TimeStampedModel):
    """Money that went back: a refund or a card chargeback, reversed through the ledger."""

    class Kind(models.TextChoices):
        REFUND = "refund", _("Refund")
        CHARGEBACK = "chargeback", _("Card chargeback")

    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="reversals")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    external_ref = models.CharField(max_length=160)
    occurred_at = models.DateTimeField()
    ledger_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, related_name="payment_reversal"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "external_ref"], name="payment_reversal_unique_ref"),
            models.CheckConstraint(name="payment_reversal_amount_positive", condition=Q(amount_minor__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_minor} {self.currency} of payment {self.payment_id}"


class Receipt(models.Model):
    """The quittance for one payment (R124-6 al. 1, FR-COL-13): number, allocation, remaining balance.

    The facts are fixed when the payment is recorded (same transaction); the PDF is rendered from
    them (WeasyPrint) and stored with its SHA-256 the first time it is needed.
    """

    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="receipt")
    number = models.CharField(max_length=30, unique=True)
    issued_at = models.DateTimeField(default=timezone.now)
    # [{"invoice": "F-1", "principal": 1000}] in minor units; interest and fees are lines too when charged.
    allocation = models.JSONField(default=list)
    overpayment_minor = models.BigIntegerField(default=0)
    remaining_minor = models.BigIntegerField()
    pdf = models.FileField(upload_to="receipts/%Y/%m/", max_length=255, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.number


class Dispute(TimeStampedModel):
    """A debtor contests the claim: reason, statement, files. The case stays disputed (no chasing,
    invariant 5) until the creditor answers: uphold (claim reduced or cancelled by a credit note) or
    reject (the creditor's evidence is sent to the debtor and chasing resumes)."""

    class Reason(models.TextChoices):
        NOT_RECEIVED = "not_received", _("I did not receive the goods or service")
        RETURNED = "returned", _("I returned the goods")
        DEFECTIVE = "defective", _("The goods were defective")
        ALREADY_PAID = "already_paid", _("I already paid")
        NOT_ME = "not_me", _("This is not me / fraud")
        WRONG_AMOUNT = "wrong_amount", _("The amount is wrong")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", _("Waiting for the creditor's answer")
        UPHELD = "upheld", _("Accepted by the creditor")
        REJECTED = "rejected", _("Rejected with evidence")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="disputes")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    statement = models.TextField(max_length=4000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.CharField(max_length=100, blank=True)
    answer_note = models.TextField(max_length=4000, blank=True)
    # Upheld: how much was credited (a partial reduction or the whole outstanding amount).
    credited_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # One open dispute per case at a time; a new one may follow an answered one.
            models.UniqueConstraint(fields=["case"], condition=Q(status="open"), name="dispute_one_open_per_case"),
        ]

    def __str__(self) -> str:
        return f"dispute {self.pk} on {self.case_id} ({self.status})"


class DisputeFile(models.Model):
    """A file the debtor sent with a dispute, or the creditor with its answer (stored by SHA-256)."""

    class Side(models.TextChoices):
        DEBTOR = "debtor", _("Debtor")
        CREDITOR = "creditor", _("Creditor")

    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="files")
    side = models.CharField(max_length=10, choices=Side.choices)
    file = models.FileField(upload_to="disputes/%Y/%m/", max_length=255)
    original_filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dispute", "side", "sha256"], name="dispute_file_unique_content"),
        ]

    def __str__(self) -> str:
        return f"{self.dispute_id}/{self.side}/{self.original_filename}"


class ReturnPolicy(models.Model):
    """Whether a creditor takes goods back instead of payment, and how (shown to its debtors)."""

    creditor = models.OneToOneField(Creditor, on_delete=models.CASCADE, related_name="return_policy")
    returns_allowed = models.BooleanField(default=False)
    instructions = models.TextField(blank=True, help_text="Address, packaging, label: shown to the debtor")
    # Returns are offered only for invoices at most this many days old (0: no limit).
    max_invoice_age_days = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"returns for {self.creditor_id}: {self.returns_allowed}"


class ReturnRequest(TimeStampedModel):
    """The debtor sends the goods back; the claim is cancelled when the creditor confirms receipt."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Return announced, waiting for the goods")
        RECEIVED = "received", _("Goods received, claim cancelled")
        REFUSED = "refused", _("Return refused")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="return_requests")
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="return_requests")
    note = models.TextField(max_length=2000, blank=True)
    instructions = models.TextField(blank=True, help_text="The instructions as shown when the return was asked")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["claim"], condition=Q(status="requested"), name="return_one_open_per_claim"
            ),
        ]

    def __str__(self) -> str:
        return f"return of {self.claim_id} ({self.status})"


class CreditorNotification(models.Model):
    """What the creditor is told (R124-5, FR-COL-12): every payment, even partial, and every debtor
    proposal (plan, partial settlement, dispute, return). Listed in the creditor portal."""

    class Kind(models.TextChoices):
        PAYMENT_RECEIVED = "payment.received", _("Payment received")
        PAYMENT_PARTIAL = "payment.partial", _("Partial payment received")
        PAYMENT_REVERSED = "payment.reversed", _("Payment reversed")
        PROPOSAL_RECEIVED = "proposal.received", _("Proposal from the debtor")
        DISPUTE_OPENED = "dispute.opened", _("Dispute: evidence requested")
        RETURN_REQUESTED = "return.requested", _("Return of goods announced")

    creditor = models.ForeignKey(Creditor, on_delete=models.CASCADE, related_name="notifications")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="creditor_notifications")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    message = models.CharField(max_length=300)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["creditor", "read_at", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.creditor_id} on {self.case_id}"
