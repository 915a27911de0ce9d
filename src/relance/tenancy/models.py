"""Who runs the instance (Agency), its clients (Creditor), people (User) and machine keys (ApiKey).

Tenant isolation (invariant 6) starts here: a creditor user belongs to exactly one creditor, staff
belong to the agency; every selector scopes through ``Actor`` (see ``tenancy.actors``).
"""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from schwifty import IBAN

from relance.core.models import TimeStampedModel


class Agency(TimeStampedModel):
    """The organisation operating this Relance instance (a collection agency or a merchant)."""

    legal_name = models.CharField(max_length=200)
    siren = models.CharField(max_length=9, blank=True)
    address = models.TextField(blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    # FR-COL-02: collected funds land on an account dedicated to creditors' money.
    trust_iban = models.CharField(max_length=34, blank=True)

    class Meta:
        verbose_name_plural = "agencies"

    def __str__(self) -> str:
        return self.legal_name

    def clean(self) -> None:
        super().clean()
        # The portal prints this account and encodes it in the EPC QR code: refuse a mistyped one.
        if self.trust_iban:
            try:
                IBAN(self.trust_iban)
            except ValueError:  # schwifty's errors are ValueErrors
                raise ValidationError({"trust_iban": _("Enter a valid IBAN.")}) from None


def validate_evidence_kinds(value: object) -> None:
    """A list of known evidence kinds (the kinds live with the evidence, in the claims app)."""
    from relance.claims.models import Evidence  # noqa: PLC0415 - claims depends on tenancy, not the reverse

    if not isinstance(value, list) or not all(isinstance(k, str) and k in Evidence.Kind.values for k in value):
        raise ValidationError(
            _("Choose evidence kinds among: %(kinds)s."), params={"kinds": ", ".join(Evidence.Kind.values)}
        )


# Fields of an incoming claim a creditor's mandate can make compulsory (intake.validate.REQUIRABLE holds
# the same names and checks them); company identifiers apply to company debtors only.
REQUIRABLE_FIELDS = (
    ("debtor.first_name", _("Debtor's first name (people)")),
    ("debtor.email", _("Debtor's e-mail address")),
    ("debtor.phone", _("Debtor's phone number")),
    ("debtor.address_line1", _("Debtor's postal address")),
    ("debtor.city", _("Debtor's city")),
    ("debtor.siren", _("SIREN (companies)")),
    ("debtor.siret", _("SIRET (companies)")),
    ("debtor.vat_number", _("VAT number (companies)")),
    ("debtor.iban", _("Debtor's IBAN")),
    ("description", _("Description of the claim")),
)


def validate_required_fields(value: object) -> None:
    """A list of distinct field names among ``REQUIRABLE_FIELDS``."""
    known = [name for name, _label in REQUIRABLE_FIELDS]
    if not isinstance(value, list) or not all(isinstance(f, str) and f in known for f in value):
        raise ValidationError(_("Choose required fields among: %(fields)s."), params={"fields": ", ".join(known)})
    if len(set(value)) != len(value):
        raise ValidationError(_("A required field is listed twice."))


class Creditor(TimeStampedModel):
    """A client of the agency whose claims are collected (an e-merchant)."""

    class Mode(models.TextChoices):
        # DOMAIN-RULES 0.3: A = the merchant's own reminders; B = agency collects (R124 applies).
        OWN_REMINDERS = "A", _("Mode A — merchant's own reminders")
        AGENCY = "B", _("Mode B — agency collection")

    class Segment(models.TextChoices):
        B2C = "b2c", "B2C"
        B2B = "b2b", "B2B"

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="creditors")
    slug = models.SlugField(max_length=60, unique=True)
    legal_name = models.CharField(max_length=200)
    trade_name = models.CharField(max_length=200, blank=True)
    siren = models.CharField(max_length=9, blank=True)
    vat_number = models.CharField(max_length=20, blank=True)
    address = models.TextField(blank=True)
    remittance_iban = models.CharField(max_length=34, blank=True)
    mode = models.CharField(max_length=1, choices=Mode.choices, default=Mode.AGENCY)
    segment = models.CharField(max_length=3, choices=Segment.choices, default=Segment.B2C)
    default_currency = models.CharField(max_length=3, default="EUR")
    support_email = models.EmailField(blank=True)
    # Claims of one debtor are grouped into one open case, or each claim gets its own case.
    consolidate_cases = models.BooleanField(default=True)
    # The creditor's saved column mapping for file imports ({"preset": "shopify"} or {"columns": {...}}).
    import_mapping = models.JSONField(default=dict, blank=True)
    # Invariant 5, "evidence first": kinds of evidence (``claims.Evidence.Kind``) every claim of a case
    # must have before the case is chased, e.g. ["invoice", "delivery_proof"]. Empty: nothing required.
    required_evidence = models.JSONField(default=list, blank=True, validators=[validate_evidence_kinds])
    # Fields every claim of this creditor must carry (``REQUIRABLE_FIELDS``), checked at intake for files
    # and API alike: a claim missing one is refused with the field named (mandate.required).
    required_fields = models.JSONField(default=list, blank=True, validators=[validate_required_fields])
    # Letters to this creditor's debtors go out as registered mail (lettre recommandée); the flag is
    # copied into the daily print manifest for the printing house.
    registered_letters = models.BooleanField(default=False)
    # Issue 6: the creditor's admin can make two-factor authentication mandatory for its users.
    require_2fa = models.BooleanField(default=False)

    class Meta:
        ordering = ["legal_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.trade_name or self.legal_name


class User(AbstractUser):
    """A person who logs in: agency staff (no creditor) or a creditor's user (one creditor)."""

    class Role(models.TextChoices):
        AGENCY_ADMIN = "agency_admin", _("Agency admin")
        SUPERVISOR = "supervisor", _("Supervisor")
        AGENT = "agent", _("Agent")
        AUDITOR = "auditor", _("Auditor")
        CREDITOR_ADMIN = "creditor_admin", _("Creditor admin")
        CREDITOR_VIEWER = "creditor_viewer", _("Creditor viewer")

    STAFF_ROLES = frozenset({Role.AGENCY_ADMIN, Role.SUPERVISOR, Role.AGENT, Role.AUDITOR})
    CREDITOR_ROLES = frozenset({Role.CREDITOR_ADMIN, Role.CREDITOR_VIEWER})

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.AGENT)
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, null=True, related_name="users")
    creditor = models.ForeignKey(Creditor, on_delete=models.PROTECT, null=True, blank=True, related_name="users")

    class Meta:
        constraints = [
            # A creditor role always has its creditor; a staff role never has one.
            models.CheckConstraint(
                name="user_role_matches_creditor",
                condition=(
                    models.Q(role__in=["creditor_admin", "creditor_viewer"], creditor__isnull=False)
                    | models.Q(
                        role__in=["agency_admin", "supervisor", "agent", "auditor"],
                        creditor__isnull=True,
                    )
                ),
            )
        ]

    @property
    def is_agency_staff(self) -> bool:
        return self.role in self.STAFF_ROLES

    @property
    def is_creditor_user(self) -> bool:
        return self.role in self.CREDITOR_ROLES


class ApiKey(TimeStampedModel):
    """A creditor's API key. Only a SHA-256 of the secret is stored; the key is shown once.

    Keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed).
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        INTAKE = "intake", "Intake"

    PREFIX = "rl_"

    creditor = models.ForeignKey(Creditor, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def generate_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)
