"""Validation of one incoming claim (pure): every problem is a value naming its field.

Used by the API today and by file intake (row + column) with the intake issue. Messages are in
English and French so the creditor's staff can act on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from relance.core.money import Money, MoneyError
from relance.intake.normalise import email_normalise, phone_normalise


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
}


def _too_long(data: ClaimData) -> list[FieldError]:
    # Claim fields are stored as sent, debtor fields stripped (intake.services).
    fields = [(name, getattr(data, name), limit) for name, limit in _MAX_LENGTHS.items()]
    fields += [
        (f"debtor.{name}", getattr(data.debtor, name).strip(), limit) for name, limit in _DEBTOR_MAX_LENGTHS.items()
    ]
    return [
        _err(name, "too_long", f"At most {limit} characters, got {len(value)}", f"{limit} caractères au maximum")
        for name, value, limit in fields
        if len(value) > limit
    ]


def validate_claim(data: ClaimData, *, today: date) -> tuple[CleanClaim | None, list[FieldError]]:
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
        errors.append(_err(field, exc.code, str(exc), "Montant ou devise invalide"))
    if data.due_date < data.invoice_date:
        errors.append(
            _err(
                "due_date",
                "due_date.before_invoice",
                "Due date is before the invoice date",
                "L'échéance précède la date de facture",
            )
        )
    if data.invoice_date > today:
        errors.append(
            _err(
                "invoice_date",
                "date.future",
                f"Invoice date {data.invoice_date} is in the future",
                "Date de facture dans le futur",
            )
        )
    if data.invoice_date < today - timedelta(days=365 * 10):
        errors.append(
            _err(
                "invoice_date",
                "date.too_old",
                f"Invoice date {data.invoice_date} is more than 10 years ago",
                "Date de facture de plus de 10 ans",
            )
        )
    debtor = data.debtor
    if debtor.kind not in ("person", "company"):
        errors.append(
            _err(
                "debtor.kind", "debtor.kind", "Debtor kind is person or company", "Type de débiteur : person ou company"
            )
        )
    if debtor.kind == "company" and not debtor.company_name.strip():
        errors.append(_err("debtor.company_name", "required", "Company name is required", "Raison sociale obligatoire"))
    if debtor.kind == "person" and not debtor.last_name.strip():
        errors.append(_err("debtor.last_name", "required", "Last name is required", "Nom obligatoire"))
    if debtor.siren.strip() and not (len(debtor.siren.strip()) == 9 and debtor.siren.strip().isdigit()):
        errors.append(
            _err("debtor.siren", "siren.invalid", f"SIREN has 9 digits, got {debtor.siren!r}", "SIREN : 9 chiffres")
        )
    if not (len(debtor.country) == 2 and debtor.country.isalpha()):
        errors.append(
            _err(
                "debtor.country",
                "country.invalid",
                f"Country is a 2-letter ISO code, got {debtor.country!r}",
                "Pays : code ISO à 2 lettres",
            )
        )
    email = ""
    if debtor.email.strip():
        email, problem = email_normalise(debtor.email.strip())
        if problem:
            errors.append(
                _err(
                    "debtor.email",
                    "email.invalid",
                    f"Invalid e-mail {debtor.email!r}: {problem}",
                    "Adresse e-mail invalide",
                )
            )
    phone = ""
    if debtor.phone.strip():
        phone = phone_normalise(debtor.phone, debtor.country.upper() or "FR") or ""
        if not phone:
            errors.append(
                _err(
                    "debtor.phone",
                    "phone.invalid",
                    f"Invalid phone number {debtor.phone!r}",
                    "Numéro de téléphone invalide",
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
    elif debtor.country.upper() == "FR" and not (
        len(debtor.postcode.strip()) == 5 and debtor.postcode.strip().isdigit()
    ):
        errors.append(
            _err(
                "debtor.postcode",
                "postcode.invalid",
                f"French postcode has 5 digits, got {debtor.postcode!r}",
                "Code postal français : 5 chiffres",
            )
        )
    if not email and not debtor.address_line1.strip():
        errors.append(
            _err(
                "debtor.email",
                "contact.missing",
                "An e-mail or a postal address is required",
                "E-mail ou adresse postale obligatoire",
            )
        )
    if errors or amount is None:
        return None, errors
    return CleanClaim(data=data, amount=amount, email=email, phone=phone), []
