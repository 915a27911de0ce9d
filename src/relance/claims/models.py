"""Debtors, their claims (créances) and the evidence behind each claim. The data only; intake creates them.

A claim's outstanding amount is never stored: it is the balance of its ledger account
(``claim:<id>``), invariant 1. Evidence files are what make a claim due (invariant 5, "evidence
first"): a creditor's mandate may require kinds of evidence before any of its cases is chased.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from relance.claims.keys import email_key, name_key
from relance.core.models import TimeStampedModel
from relance.tenancy.models import Agency, Creditor


class Debtor(TimeStampedModel):
    """A person or company who owes; one debtor may owe several creditors of the agency."""

    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        COMPANY = "company", "Company"

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="debtors")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PERSON)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    siren = models.CharField(max_length=9, blank=True)
    # As the creditor gave them, checked and normalised at intake (intake.identifiers): the company's
    # establishment, its VAT number, and an account the debtor pays from (bank matching, PAY-06 step 4).
    siret = models.CharField(max_length=14, blank=True)
    vat_number = models.CharField(max_length=20, blank=True)
    iban = models.CharField(max_length=34, blank=True, db_index=True)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=20, blank=True, db_index=True, help_text="E.164")
    # Normalised matching keys (intake.match): indexed so that matching a chunk of rows reads only the
    # debtors that share a key, never a whole city of namesakes.
    email_key = models.CharField(max_length=254, blank=True, db_index=True)
    name_key = models.CharField(max_length=260, blank=True, db_index=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    postcode = models.CharField(max_length=12, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="FR")
    language = models.CharField(max_length=5, default="fr")
    timezone = models.CharField(max_length=40, default="Europe/Paris")
    email_opt_out = models.BooleanField(default=False)
    email_bounced = models.BooleanField(default=False)
    # Set when the debtor answers STOP to an SMS (L121-7 3° C. conso: no unwanted solicitations).
    sms_opt_out = models.BooleanField(default=False)
    # A letter came back undelivered ("N'habite pas à l'adresse indiquée", NPAI): no more letters to
    # this address until it is corrected (comms.letters.letter_returned sets it, audited).
    address_invalid = models.BooleanField(default=False)
    address_invalid_at = models.DateTimeField(null=True, blank=True)
    address_invalid_reason = models.CharField(max_length=200, blank=True)

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Bulk intake sets the keys itself (bulk_create skips save()); every other path gets them here.
        self.email_key = email_key(self.email)
        self.name_key = name_key(
            last_name=self.last_name or self.company_name, first_name=self.first_name, postcode=self.postcode
        )
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.kind == self.Kind.COMPANY and self.company_name:
            return self.company_name
        return f"{self.first_name} {self.last_name}".strip() or self.company_name or f"#{self.pk}"


class Claim(TimeStampedModel):
    """One unpaid invoice of a creditor against a debtor, unique by the creditor's reference."""

    creditor = models.ForeignKey(Creditor, on_delete=models.PROTECT, related_name="claims")
    debtor = models.ForeignKey(Debtor, on_delete=models.PROTECT, related_name="claims")
    external_ref = models.CharField(max_length=100)
    # Indexed: the back office finds a case by it, and bank statements match transfers on it (PAY-06).
    invoice_number = models.CharField(max_length=100, db_index=True)
    invoice_date = models.DateField()
    due_date = models.DateField()
    currency = models.CharField(max_length=3, default="EUR")
    original_amount_minor = models.BigIntegerField()
    segment = models.CharField(max_length=3, choices=Creditor.Segment.choices)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            # Invariant 2: intake is idempotent per creditor reference.
            models.UniqueConstraint(fields=["creditor", "external_ref"], name="claim_unique_ref"),
            models.CheckConstraint(name="claim_amount_positive", condition=models.Q(original_amount_minor__gt=0)),
            models.CheckConstraint(
                name="claim_due_after_invoice", condition=models.Q(due_date__gte=models.F("invoice_date"))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.creditor_id}/{self.external_ref}"

    @property
    def ledger_key(self) -> str:
        return f"claim:{self.pk}"


class Evidence(models.Model):
    """A file that proves a claim (invoice PDF, order, proof of delivery, accepted terms…).

    Stored through Django's default storage; ``sha256`` identifies the content, so attaching the same
    file to the same claim twice is one record (``evidence_unique_content``). Records are never edited.
    """

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        ORDER = "order", _("Order")
        DELIVERY_PROOF = "delivery_proof", _("Proof of delivery")
        TERMS_ACCEPTED = "terms_accepted", _("Accepted terms")
        CONSENT_LOG = "consent_log", _("Consent log")
        OTHER = "other", _("Other")

    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    file = models.FileField(upload_to="evidence/%Y/%m/", max_length=255)
    original_filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(default=timezone.now, db_index=True)
    uploaded_by = models.CharField(max_length=100, help_text="Actor label, as in the audit trail")

    class Meta:
        verbose_name_plural = "evidence"
        constraints = [
            # The same content attached to the same claim twice is one piece of evidence.
            models.UniqueConstraint(fields=["claim", "sha256"], name="evidence_unique_content"),
        ]

    def __str__(self) -> str:
        return f"{self.claim_id}/{self.kind}/{self.original_filename}"


class DebtorMatchReview(models.Model):
    """A possible duplicate person found at intake, waiting for a human decision (never auto-merged)."""

    class Status(models.TextChoices):
        OPEN = "open", _("To review")
        SAME = "same", _("Same person")
        DISTINCT = "distinct", _("Different people")

    debtor = models.ForeignKey(Debtor, on_delete=models.CASCADE, related_name="match_reviews")
    candidate = models.ForeignKey(Debtor, on_delete=models.CASCADE, related_name="+")
    rule = models.CharField(max_length=30)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["debtor", "candidate"], name="debtor_match_unique_pair")]

    def __str__(self) -> str:
        return f"{self.debtor_id}~{self.candidate_id} ({self.rule})"
