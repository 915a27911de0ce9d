"""Debtors and their claims (créances). The data only; intake creates them.

A claim's outstanding amount is never stored: it is the balance of its ledger account
(``claim:<id>``), invariant 1.
"""

from __future__ import annotations

from django.db import models

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
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164")
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    postcode = models.CharField(max_length=12, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="FR")
    language = models.CharField(max_length=5, default="fr")
    timezone = models.CharField(max_length=40, default="Europe/Paris")
    email_opt_out = models.BooleanField(default=False)
    email_bounced = models.BooleanField(default=False)

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
    invoice_number = models.CharField(max_length=100)
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
