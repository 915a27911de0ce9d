"""The debtor updates their own contact details and channel preferences (portal, issue 5).

Writes on the ``Debtor`` row shared by all their cases (one person, one set of preferences, across
creditors). Opting out of e-mail or SMS is honoured where contacts are decided and sent: the engine
skips the channel (``strategies.engine.snapshot``) and the senders block it (``comms.channels``).
A corrected postal address clears a previous "returned letter" (NPAI) flag. The audit row names the
fields that changed, not their values (no personal data copied into the trail).
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from django.db import transaction
from email_validator import EmailNotValidError, validate_email

from relance.audit.services import audit_record
from relance.claims.models import Debtor
from relance.core.errors import ValidationError
from relance.tenancy.actors import Actor

ADDRESS_FIELDS = ("address_line1", "address_line2", "postcode", "city")


@dataclass(frozen=True, slots=True)
class ContactDetails:
    email: str
    phone: str
    address_line1: str
    address_line2: str
    postcode: str
    city: str
    email_opt_out: bool
    sms_opt_out: bool


def _email(raw: str) -> str:
    raw = raw.strip()
    if not raw:
        return ""
    try:
        return str(validate_email(raw, check_deliverability=False).normalized)
    except EmailNotValidError:
        raise ValidationError("Enter a valid e-mail address.", field="email") from None


def _phone(raw: str, country: str) -> str:
    raw = raw.strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, country or "FR")
    except phonenumbers.NumberParseException:
        raise ValidationError("Enter a valid phone number.", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError("Enter a valid phone number.", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@transaction.atomic
def debtor_contact_update(*, debtor: Debtor, details: ContactDetails, actor: Actor) -> list[str]:
    """Apply the new details; returns the names of the fields that changed (audited)."""
    if not details.postcode.strip():
        raise ValidationError("Enter your postcode.", field="postcode")
    if not details.address_line1.strip():
        raise ValidationError("Enter your address.", field="address_line1")
    new = {
        "email": _email(details.email),
        "phone": _phone(details.phone, debtor.country),
        "address_line1": details.address_line1.strip()[:200],
        "address_line2": details.address_line2.strip()[:200],
        "postcode": details.postcode.strip()[:12],
        "city": details.city.strip()[:100],
        "email_opt_out": details.email_opt_out,
        "sms_opt_out": details.sms_opt_out,
    }
    debtor = Debtor.objects.select_for_update().get(pk=debtor.pk)
    changed = [name for name, value in new.items() if getattr(debtor, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(debtor, name, new[name])
    if "email" in changed:
        debtor.email_bounced = False  # a new address has not bounced yet
        changed.append("email_bounced")
    if any(name in ADDRESS_FIELDS for name in changed) and debtor.address_invalid:
        debtor.address_invalid = False
        debtor.address_invalid_at = None
        debtor.address_invalid_reason = ""
        changed += ["address_invalid", "address_invalid_at", "address_invalid_reason"]
    debtor.save()  # save(): the matching keys follow the new e-mail and postcode
    audit_record(actor=actor, verb="debtor.contact_updated", subject=debtor, data={"fields": changed})
    return changed
