"""Validation of one incoming claim (pure): every problem is a value naming its field.

Used by the API and by file intake (which turns the field into the creditor's row, column and value).
Messages are "English / français" so the creditor's staff can act on them. The rules: amount > 0 in an
ISO 4217 currency with no more decimals than it has; due date not before the invoice date nor more than
a year ahead; invoice date neither in the future nor more than 10 years old; e-mail syntax; phone in
E.164 (default region: the debtor's country); IBAN, SIREN, SIRET and VAT numbers when given, and
consistent (identifiers.py); postcode required, in its country's format; the fields the creditor's
mandate requires (``REQUIRABLE``). Identifier checks are cached per distinct value, so big files pay
for each value once. Codes are listed in docs/file-formats.md.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta

import phonenumbers

from relance.core.money import Money, MoneyError
from relance.intake.identifiers import iban_check, postcode_check, siren_check, siret_check, vat_check, vat_siren
from relance.intake.normalise import email_normalise


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DebtorData:
    kind: str = "person"
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    siren: str = ""
    email: str = ""
    phone: str = ""
    address_line1: str = ""
    address_line2: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "FR"
    language: str = "fr"
    # Checked when given (identifiers.py); SIRET and a French VAT number also give the SIREN.
    siret: str = ""
    vat_number: str = ""
    iban: str = ""


@dataclass(frozen=True, slots=True)
class ClaimData:
    external_ref: str
    invoice_number: str
    invoice_date: date
    due_date: date
    amount: str
    currency: str
    debtor: DebtorData
    description: str = ""


@dataclass(frozen=True, slots=True)
class CleanClaim:
    data: ClaimData
    amount: Money
    email: str
    phone: str


def _err(field: str, code: str, en: str, fr: str) -> FieldError:
    return FieldError(field, code, f"{en} / {fr}")


# Far above any real claim, far below the 64-bit columns that hold amounts and their sums: "1e30"
# is a field error, not a database overflow.
MAX_AMOUNT_MINOR = 10**12

# The longest text each field can be stored with (the models' max_length): longer input is a field
# error here, not a database error on PostgreSQL or a silently accepted value on SQLite (invariant 8).
_MAX_LENGTHS = {"external_ref": 100, "invoice_number": 100, "description": 300}
_DEBTOR_MAX_LENGTHS = {
    "first_name": 100,
    "last_name": 100,
    "company_name": 200,
    "email": 254,
    "address_line1": 200,
    "address_line2": 200,
    "postcode": 12,
    "city": 100,
    "siret": 30,
    "vat_number": 30,
    "iban": 50,
}

# Fields a creditor's mandate can require (``Creditor.required_fields``), with their names in English
# and French for the messages. Company identifiers are required of companies only, the first name of
# people only. ``invoice_number`` and ``due_date`` are not here: files fall back to the reference and
# the invoice date for them (parse.py), so "required" could never fail.
REQUIRABLE: Mapping[str, tuple[str, str]] = {
    "debtor.first_name": ("the first name", "le prénom"),
    "debtor.email": ("the e-mail address", "l'adresse e-mail"),
    "debtor.phone": ("the phone number", "le numéro de téléphone"),
    "debtor.address_line1": ("the postal address", "l'adresse postale"),
    "debtor.city": ("the city", "la ville"),
    "debtor.siren": ("the SIREN (companies)", "le SIREN (entreprises)"),
    "debtor.siret": ("the SIRET (companies)", "le SIRET (entreprises)"),
    "debtor.vat_number": ("the VAT number (companies)", "le numéro de TVA (entreprises)"),
    "debtor.iban": ("the IBAN", "l'IBAN"),
    "description": ("the description", "le libellé"),
}
COMPANY_ONLY = frozenset({"debtor.siren", "debtor.siret", "debtor.vat_number"})
FRENCH_ONLY = frozenset({"debtor.siren", "debtor.siret"})  # INSEE numbers: French companies only
PERSON_ONLY = frozenset({"debtor.first_name"})
# A due date further ahead than this is a typo (2062 for 2026), not a claim to collect.
MAX_DUE_AHEAD = timedelta(days=366)


def _too_long(data: ClaimData) -> list[FieldError]:
    # Claim fields are stored as sent, debtor fields stripped (intake.services).
    fields = [(name, getattr(data, name), limit) for name, limit in _MAX_LENGTHS.items()]
    fields += [
        (f"debtor.{name}", getattr(data.debtor, name).strip(), limit) for name, limit in _DEBTOR_MAX_LENGTHS.items()
    ]
    return [
        _err(
            name,
            "too_long",
            f"At most {limit} characters, got {len(value)}",
            f"{limit} caractères au maximum, reçu {len(value)}",
        )
        for name, value, limit in fields
        if len(value) > limit
    ]


# Files repeat the same e-mails and phones (a debtor with ten claims): each distinct value is checked once.
@functools.lru_cache(maxsize=1 << 16)
def _email_normalised(text: str) -> tuple[str, str]:
    """(normalised address, "") or ("", why it is not an address) — syntax only, no DNS."""
    return email_normalise(text)  # email_validator's result, the domain checked once per domain


@functools.lru_cache(maxsize=1 << 16)
def _phone_e164(text: str, region: str) -> str:
    """The number in E.164 (``+33612345678``), the region being the debtor's country; "" if not valid."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(parsed):
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _value(data: ClaimData, field: str) -> str:
    if field.startswith("debtor."):
        return str(getattr(data.debtor, field.removeprefix("debtor.")))
    return str(getattr(data, field))


def _mandate_missing(data: ClaimData, required: Collection[str], derived: Mapping[str, str]) -> list[FieldError]:
    """The fields the creditor's mandate requires that this claim leaves empty.

    ``derived`` are the identifiers found elsewhere in the claim: a SIRET or a French VAT number gives
    the SIREN, so a mandate requiring the SIREN is satisfied by them.
    """
    errors = []
    company = data.debtor.kind == "company"
    french = data.debtor.country.upper() == "FR"
    for field in required:
        labels = REQUIRABLE.get(field)
        if (
            labels is None
            or (field in COMPANY_ONLY and not company)
            or (field in FRENCH_ONLY and not french)
            or (field in PERSON_ONLY and company)
        ):
            continue
        if not _value(data, field).strip() and not derived.get(field.removeprefix("debtor.")):
            en, fr = labels
            errors.append(
                _err(
                    field,
                    "mandate.required",
                    f"The creditor's mandate requires {en}, and it is empty",
                    f"Le mandat du créancier exige {fr}, qui est vide",
                )
            )
    return errors


def _identifiers(debtor: DebtorData) -> tuple[dict[str, str], list[FieldError]]:
    """IBAN, SIREN, SIRET and VAT number, each checked when given (cached per value), and consistent with
    each other: a SIRET starts with the SIREN, a French VAT number ends with it. Returns the normalised
    values (the SIREN filled from the SIRET or the VAT number when missing) and the problems."""
    errors: list[FieldError] = []
    clean: dict[str, str] = {}
    checks = (
        ("siren", siren_check),
        ("siret", siret_check),
        ("iban", iban_check),
    )
    for name, check in checks:
        raw = getattr(debtor, name)
        if raw.strip():
            value, problem = check(raw)
            if problem is None:
                clean[name] = value
            else:
                errors.append(FieldError(f"debtor.{name}", problem.code, problem.message))
    if debtor.vat_number.strip():
        value, problem = vat_check(debtor.vat_number, debtor.country.upper())
        if problem is None:
            clean["vat_number"] = value
        else:
            errors.append(FieldError("debtor.vat_number", problem.code, problem.message))
    siren = clean.get("siren", "")
    if siren and clean.get("siret") and not clean["siret"].startswith(siren):
        errors.append(
            _err(
                "debtor.siret",
                "siret.siren_mismatch",
                f"SIRET {clean['siret']} does not belong to SIREN {siren} (its first 9 digits differ)",
                f"Le SIRET {clean['siret']} n'appartient pas au SIREN {siren} (9 premiers chiffres différents)",
            )
        )
    vat_of = vat_siren(clean.get("vat_number", ""))
    if siren and vat_of and vat_of != siren:
        errors.append(
            _err(
                "debtor.vat_number",
                "vat.siren_mismatch",
                f"VAT number {clean['vat_number']} belongs to SIREN {vat_of}, not {siren}",
                f"Le numéro de TVA {clean['vat_number']} est celui du SIREN {vat_of}, pas {siren}",
            )
        )
    if not siren and "siret" in clean:
        clean["siren"] = clean["siret"][:9]
    elif not siren and vat_of:
        clean["siren"] = vat_of
    return clean, errors


def validate_claim(
    data: ClaimData, *, today: date, required: Collection[str] = ()
) -> tuple[CleanClaim | None, list[FieldError]]:
    """Check one claim; ``required`` are the fields its creditor's mandate requires (``REQUIRABLE``).

    The clean claim carries normalised debtor identifiers (compact IBAN, SIREN, SIRET and VAT number,
    canonical postcode) and the SIREN found in a SIRET or a French VAT number when none was given.
    """
    errors: list[FieldError] = _too_long(data)
    if not data.external_ref.strip():
        errors.append(_err("external_ref", "required", "External reference is required", "Référence obligatoire"))
    if not data.invoice_number.strip():
        errors.append(_err("invoice_number", "required", "Invoice number is required", "Numéro de facture obligatoire"))
    amount: Money | None = None
    try:
        amount = Money.parse(data.amount, data.currency.upper())
        if amount.minor > MAX_AMOUNT_MINOR:
            errors.append(
                _err(
                    "amount",
                    "amount.too_large",
                    f"Amount {data.amount} is too large",
                    f"Montant trop élevé ({data.amount})",
                )
            )
            amount = None
        elif amount.minor <= 0:
            errors.append(
                _err(
                    "amount",
                    "amount.not_positive",
                    f"Amount must be positive, got {data.amount}",
                    f"Le montant doit être positif ({data.amount})",
                )
            )
            amount = None
    except MoneyError as exc:
        field = "currency" if exc.code.startswith("currency") else "amount"
        errors.append(
            _err(field, exc.code, str(exc), f"Montant ou devise invalide ({data.amount!r} {data.currency!r})")
        )
    if data.due_date < data.invoice_date:
        errors.append(
            _err(
                "due_date",
                "due_date.before_invoice",
                f"Due date {data.due_date} is before the invoice date {data.invoice_date}",
                f"L'échéance {data.due_date:%d/%m/%Y} précède la date de facture {data.invoice_date:%d/%m/%Y}",
            )
        )
    if data.due_date > today + MAX_DUE_AHEAD:
        errors.append(
            _err(
                "due_date",
                "date.too_far",
                f"Due date {data.due_date} is more than a year ahead",
                f"Échéance {data.due_date:%d/%m/%Y} à plus d'un an",
            )
        )
    if data.invoice_date > today:
        errors.append(
            _err(
                "invoice_date",
                "date.future",
                f"Invoice date {data.invoice_date} is in the future",
                f"Date de facture {data.invoice_date:%d/%m/%Y} dans le futur",
            )
        )
    if data.invoice_date < today - timedelta(days=365 * 10):
        errors.append(
            _err(
                "invoice_date",
                "date.too_old",
                f"Invoice date {data.invoice_date} is more than 10 years ago",
                f"Date de facture {data.invoice_date:%d/%m/%Y} de plus de 10 ans",
            )
        )
    debtor = data.debtor
    if debtor.kind not in ("person", "company"):
        errors.append(
            _err(
                "debtor.kind",
                "debtor.kind",
                f"Debtor kind is person or company, got {debtor.kind!r}",
                f"Type de débiteur : person ou company, reçu {debtor.kind!r}",
            )
        )
    if debtor.kind == "company" and not debtor.company_name.strip():
        errors.append(_err("debtor.company_name", "required", "Company name is required", "Raison sociale obligatoire"))
    if debtor.kind == "person" and not debtor.last_name.strip():
        errors.append(_err("debtor.last_name", "required", "Last name is required", "Nom obligatoire"))
    identifiers, identifier_errors = _identifiers(debtor)
    errors += identifier_errors
    if not (len(debtor.country) == 2 and debtor.country.isalpha()):
        errors.append(
            _err(
                "debtor.country",
                "country.invalid",
                f"Country is a 2-letter ISO code, got {debtor.country!r}",
                f"Pays : code ISO à 2 lettres, reçu {debtor.country!r}",
            )
        )
    email = ""
    if debtor.email.strip():
        email, email_problem = _email_normalised(debtor.email.strip())
        if email_problem:
            errors.append(
                _err(
                    "debtor.email",
                    "email.invalid",
                    f"Invalid e-mail {debtor.email!r}: {email_problem}",
                    f"Adresse e-mail invalide {debtor.email!r}",
                )
            )
    phone = ""
    if debtor.phone.strip():
        phone = _phone_e164(debtor.phone, debtor.country.upper() or "FR")
        if not phone:
            errors.append(
                _err(
                    "debtor.phone",
                    "phone.invalid",
                    f"Invalid phone number {debtor.phone!r} (for country {debtor.country.upper() or 'FR'})",
                    f"Numéro de téléphone invalide {debtor.phone!r} (pays {debtor.country.upper() or 'FR'})",
                )
            )
    if not debtor.postcode.strip():
        errors.append(
            _err(
                "debtor.postcode",
                "required",
                "Postcode is required (debtors verify with it)",
                "Code postal obligatoire",
            )
        )
    else:
        postcode, problem = postcode_check(debtor.postcode, debtor.country)
        if problem is None:
            identifiers["postcode"] = postcode
        else:
            errors.append(FieldError("debtor.postcode", problem.code, problem.message))
    if not email and not debtor.address_line1.strip():
        errors.append(
            _err(
                "debtor.email",
                "contact.missing",
                "An e-mail or a postal address is required",
                "E-mail ou adresse postale obligatoire",
            )
        )
    errors += _mandate_missing(data, required, identifiers)
    if errors or amount is None:
        return None, errors
    changed = {k: v for k, v in identifiers.items() if getattr(debtor, k) != v}
    if changed:
        data = replace(data, debtor=replace(debtor, **changed))
    return CleanClaim(data=data, amount=amount, email=email, phone=phone), []
