"""Reading creditors' claim files (CSV, XLSX) into ``ClaimData``, one row at a time (pure).

What this module is for: turn whatever a shop or an accounting tool exported into ``ClaimData`` values,
with every problem reported as a ``RowError`` value naming the 1-based row (as a spreadsheet shows it:
header = row 1), the creditor's own column name, a stable code and a message in English and French.
Storing, de-duplicating against the database and import modes belong to the import pipeline, not here.

Invariants kept:

* **Streaming.** Files are read through the ``csv`` module (or openpyxl in read-only mode) one record at
  a time; only a bounded look-ahead (``SAMPLE_BYTES`` of bytes, ``SAMPLE_ROWS`` records) is held to detect
  the encoding, the delimiter and the decimal separator. A million-row file costs the memory of one row.
* **Never guess money or dates silently.** An amount whose decimal separator cannot be told from the file
  (``1,234`` in a file with no other evidence) is an error (``amount.ambiguous``), never a coin toss;
  ``12/31/2026`` is read day-first and is therefore ``date.impossible``, never silently a US date; an
  amount with more decimals than its currency is an error, never a rounding.
* **Data is data.** Text such as ``=HYPERLINK(...)`` is kept verbatim: we never evaluate it. Only the error
  report, which creditors open in a spreadsheet, neutralises it (``csv_safe``, OWASP "CSV injection").
* **Errors are values.** Row problems are ``RowError`` values; the only exceptions are ``ParseError`` from
  the single-value parsers and ``IntakeFileError`` for a file that cannot be read at all (empty, missing
  columns, not a spreadsheet) — both carry stable codes.

No Django import: the same code runs in the web upload, the ``relance import`` command and benchmarks.

Reading ``1,234`` (decision)
----------------------------
The decimal separator is a property of the *file*, not of one value. ``detect_decimal`` looks at a sample
of the amount column: a value like ``12,50``, ``1 234,50`` or ``1.234,50`` proves a decimal comma, one like
``12.50`` or ``1,234.50`` proves a decimal point. With a decimal comma, ``1,234`` is 1.234 — three decimals,
``amount.too_many_decimals`` for EUR; with a decimal point it is 1234. When the sample proves nothing, or
proves both (a file mixing conventions), the separator stays unknown and every value that could be read
both ways is refused as ``amount.ambiguous`` while unambiguous values still parse.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
import sys
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any, Protocol

from babel import Locale

from relance.core.money import Money, MoneyError, minor_digits
from relance.intake.validate import ClaimData, DebtorData

# Look-ahead used for sniffing: enough for a header and a few hundred rows, bounded whatever the file.
SAMPLE_BYTES = 64 * 1024
SAMPLE_ROWS = 1000
# The csv module refuses fields over 128 KiB by default; a 10 MB description must not crash the reader.
# Raised (never lowered) process-wide when a file is read; a field beyond this is a file-level error.
FIELD_SIZE_LIMIT = 64 * 1024 * 1024
# Amounts above this are refused before they reach a BigIntegerField (10^15 minor units = 10^13 EUR).
MAX_MINOR = 10**15
# How much of a bad value an error carries (a 10 MB field must not be copied into the error report).
MAX_REPORTED_VALUE = 200

FIELDS: tuple[str, ...] = (
    "external_ref",
    "invoice_number",
    "invoice_date",
    "due_date",
    "amount",
    "currency",
    "debtor.kind",
    "debtor.first_name",
    "debtor.last_name",
    "debtor.company_name",
    "debtor.siren",
    "debtor.siret",
    "debtor.vat_number",
    "debtor.email",
    "debtor.phone",
    "debtor.address_line1",
    "debtor.address_line2",
    "debtor.postcode",
    "debtor.city",
    "debtor.country",
    "debtor.iban",
    "description",
)
# A file must name these; a debtor also needs a name (last name or company name), checked separately.
# invoice_number falls back to external_ref and due_date to invoice_date (shop exports have neither).
REQUIRED_FIELDS: tuple[str, ...] = ("external_ref", "invoice_date", "amount")
NAME_FIELDS: tuple[str, ...] = ("debtor.last_name", "debtor.company_name")

# Longest text we accept per field: the column sizes of claims.models (Claim, Debtor).
MAX_LENGTH: Mapping[str, int] = {
    "external_ref": 100,
    "invoice_number": 100,
    "debtor.first_name": 100,
    "debtor.last_name": 100,
    "debtor.company_name": 200,
    "debtor.email": 254,
    "debtor.address_line1": 200,
    "debtor.address_line2": 200,
    "debtor.postcode": 12,
    "debtor.city": 100,
    "debtor.siret": 30,
    "debtor.vat_number": 30,
    "debtor.iban": 50,
    "description": 300,
}


# --------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one cell: ``row`` as the spreadsheet numbers it, ``column`` as the creditor names it.

    ``row`` 0 and ``column`` "" mean the whole file. ``message`` is "English / français".
    """

    row: int
    column: str
    code: str
    message: str
    value: str = ""


class ParseError(ValueError):
    """A single value (amount, date) that cannot be read; ``code`` is stable, messages in en and fr."""

    def __init__(self, code: str, en: str, fr: str) -> None:
        super().__init__(f"{en} / {fr}")
        self.code = code
        self.en = en
        self.fr = fr

    @property
    def message(self) -> str:
        return f"{self.en} / {self.fr}"


class IntakeFileError(Exception):
    """The file as a whole cannot be read (``error.code``: file.empty, file.missing_columns, …)."""

    def __init__(self, error: RowError, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = error.code
        self.missing = missing


FileFormatError = IntakeFileError  # the name the import pipeline uses


def _clip(value: str) -> str:
    return value if len(value) <= MAX_REPORTED_VALUE else value[:MAX_REPORTED_VALUE] + "…"


def _file_error(code: str, en: str, fr: str, *, row: int = 0, value: str = "") -> RowError:
    return RowError(row, "", code, f"{en} / {fr}", _clip(value))


# --------------------------------------------------------------------------------------------------------
# Amounts
# --------------------------------------------------------------------------------------------------------

_SPACES = "\u0020\u00a0\u202f"  # space, no-break space, narrow no-break space (French thousands separators)
_SYMBOLS: Mapping[str, str] = {"€": "EUR", "£": "GBP", "$": "USD"}
_BODY = re.compile(r"[0-9.,\u0020\u00a0\u202f]+")
_CODE_PREFIX = re.compile(r"([A-Za-z]{3})\s*(.*)", re.DOTALL)
_CODE_SUFFIX = re.compile(r"(.*?)\s*([A-Za-z]{3})", re.DOTALL)


_minor_digits = functools.cache(minor_digits)  # babel looks the table up on every call


def _amount_error(code: str, text: str, en: str, fr: str) -> ParseError:
    return ParseError(code, f"{en} (got {_clip(text)!r})", f"{fr} (reçu {_clip(text)!r})")


def _strip_marker(s: str, currency: str, text: str) -> str:
    """Remove one leading or trailing currency marker (``€``, ``EUR``…); refuse another currency's."""
    marker = ""
    if s and s[0] in _SYMBOLS:
        marker, s = _SYMBOLS[s[0]], s[1:].strip()
    elif s and s[-1] in _SYMBOLS:
        marker, s = _SYMBOLS[s[-1]], s[:-1].strip()
    else:
        for pattern, code_group, rest_group in ((_CODE_PREFIX, 1, 2), (_CODE_SUFFIX, 2, 1)):
            m = pattern.fullmatch(s)
            if m is None:
                continue
            code = m.group(code_group).upper()
            try:
                minor_digits(code)
            except MoneyError:
                continue
            marker, s = code, m.group(rest_group).strip()
            break
    if marker and marker != currency:
        raise _amount_error(
            "amount.currency_mismatch",
            text,
            f"The amount is in {marker} but the claim currency is {currency}",
            f"Le montant est en {marker} mais la devise de la créance est {currency}",
        )
    return s


def _structure(body: str, decimal: str, text: str) -> tuple[str, str]:
    """Split ``body`` into (integer digits, fraction digits) reading ``decimal`` as the decimal separator.

    Everything else among ``.``, ``,`` and the spaces is a thousands separator: one kind per value, groups of
    exactly three digits after a first group of one to three digits that does not start with 0.
    """
    if body.count(decimal) > 1:
        raise _amount_error(
            "amount.separators",
            text,
            f"The decimal separator {decimal!r} appears more than once",
            f"Le séparateur décimal {decimal!r} apparaît plusieurs fois",
        )
    int_part, _, frac = body.partition(decimal)
    if decimal in body and not frac:
        raise _amount_error("amount.not_a_number", text, "This is not an amount", "Ce n'est pas un montant")
    if not frac.isdigit() and frac:
        raise _amount_error(
            "amount.separators",
            text,
            f"Separators after the decimal separator {decimal!r}",
            f"Séparateurs après le séparateur décimal {decimal!r}",
        )
    if not int_part or not int_part[0].isdigit() or not int_part[-1].isdigit():
        raise _amount_error("amount.not_a_number", text, "This is not an amount", "Ce n'est pas un montant")
    seps = {"space" if c in _SPACES else c for c in int_part if not c.isdigit()}
    if not seps:
        return int_part, frac
    if len(seps) > 1:
        raise _amount_error(
            "amount.separators",
            text,
            "Mixed thousands separators",
            "Séparateurs de milliers mélangés",
        )
    groups = re.split(f"[{re.escape(_SPACES)}]" if seps == {"space"} else re.escape(seps.pop()), int_part)
    first, rest = groups[0], groups[1:]
    if not (1 <= len(first) <= 3 and first[0] != "0" and all(len(g) == 3 for g in rest)):
        raise _amount_error(
            "amount.grouping",
            text,
            "Thousands separators must separate groups of three digits",
            "Les séparateurs de milliers doivent séparer des groupes de trois chiffres",
        )
    return "".join(groups), frac


def _read_number(body: str, decimal: str | None, text: str) -> tuple[str, str]:
    if decimal is not None:
        return _structure(body, decimal, text)
    readings: dict[str, tuple[str, str]] = {}
    failures: dict[str, ParseError] = {}
    for candidate in (",", "."):
        try:
            readings[candidate] = _structure(body, candidate, text)
        except ParseError as exc:
            failures[candidate] = exc
    if len(readings) == 2:
        if readings[","] == readings["."]:
            return readings[","]
        raise _amount_error(
            "amount.ambiguous",
            text,
            "Cannot tell whether the separator is a decimal or a thousands separator; set the file's decimal separator",
            "Impossible de savoir si le séparateur est décimal ou de milliers ; "
            "indiquez le séparateur décimal du fichier",
        )
    if readings:
        return next(iter(readings.values()))
    # Both readings fail: report the one whose candidate could be the (single) decimal separator.
    if body.count(",") > 1 >= body.count("."):
        raise failures["."]
    if body.count(".") > 1 >= body.count(","):
        raise failures[","]
    last = max(body.rfind(","), body.rfind("."))
    raise failures[body[last] if last >= 0 else ","]


def parse_amount(text: str, currency: str, *, decimal: str | None = None) -> Money:
    """Read a positive amount written by a person or a spreadsheet, exactly, as ``Money``.

    ``decimal`` is the file's decimal separator (``","`` or ``"."``, see ``detect_decimal``); ``None`` reads
    each value on its own and refuses the ambiguous ones. Raises only ``ParseError``.
    """
    try:
        digits = _minor_digits(currency)
    except MoneyError:
        raise ParseError(
            "currency.unsupported", f"Unsupported currency {currency!r}", f"Devise non prise en charge {currency!r}"
        ) from None
    if decimal not in (None, ",", "."):
        raise ParseError(
            "amount.decimal_separator", f"Unknown decimal separator {decimal!r}", f"Séparateur inconnu {decimal!r}"
        )
    s = text.strip()
    if not s:
        raise ParseError("amount.empty", "The amount is empty", "Le montant est vide")
    negative = False
    if s.startswith("(") and s.endswith(")"):  # accounting notation for a negative amount
        negative, s = True, s[1:-1].strip()
    if s and s[0] in "+-":
        negative, s = negative or s[0] == "-", s[1:].strip()
    s = _strip_marker(s, currency, text)
    if s and s[0] in "+-":
        negative, s = negative or s[0] == "-", s[1:].strip()
    if not _BODY.fullmatch(s):
        raise _amount_error("amount.not_a_number", text, "This is not an amount", "Ce n'est pas un montant")
    integer, fraction = _read_number(s, decimal, text)
    if negative:
        raise _amount_error(
            "amount.not_positive",
            text,
            "The amount must be positive (a credit note is not a claim)",
            "Le montant doit être positif (un avoir n'est pas une créance)",
        )
    if len(fraction) > digits:
        raise _amount_error(
            "amount.too_many_decimals",
            text,
            f"{currency} amounts have at most {digits} decimals",
            f"Les montants en {currency} ont au plus {digits} décimales",
        )
    try:
        money = Money.parse(f"{integer}.{fraction}" if fraction else integer, currency)
    except MoneyError as exc:  # not expected after the checks above; keep the promise of one error type
        raise ParseError(exc.code, str(exc), "Montant invalide") from None
    if money.minor <= 0:
        raise _amount_error("amount.not_positive", text, "The amount must be positive", "Le montant doit être positif")
    if money.minor >= MAX_MINOR:
        raise _amount_error("amount.too_large", text, "The amount is implausibly large", "Montant invraisemblable")
    return money


def _decimal_evidence(text: str) -> str | None:
    """The decimal separator one value proves, or None when it proves nothing (``1234``, ``1,234``, junk)."""
    s = text.strip().strip("€£$").strip()
    s = re.sub(r"^[A-Za-z]{3}\s*|\s*[A-Za-z]{3}$", "", s).lstrip("+-").strip()
    if not s or not _BODY.fullmatch(s):
        return None
    works = []
    for candidate in (",", "."):
        try:
            works.append((candidate, _structure(s, candidate, text)))
        except ParseError:
            continue
    if len(works) == 1:
        return works[0][0]
    return None


def detect_decimal(values: Iterable[str]) -> str | None:
    """The decimal separator of a file from a sample of its amounts: ``","``, ``"."`` or None if unproven.

    A file whose sample proves both (mixed conventions) gets None, so only unambiguous values parse.
    """
    seen = {e for e in map(_decimal_evidence, values) if e is not None}
    return seen.pop() if len(seen) == 1 else None


# --------------------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------------------

_TIME = r"(?:[T ](\d{1,2})[:h](\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?"
_ZONE = r"(?:\s?(?:Z|[+-]\d{2}(?::?\d{2})?))?"
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME + _ZONE)
_DMY_DATE = re.compile(r"(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})" + _TIME)


def parse_date(text: str) -> date:
    """Read ``31/12/2026``, ``31.12.2026``, ``31-12-2026`` or ``2026-12-31``, optionally with a time.

    Day-first always: ``12/31/2026`` is ``date.impossible`` (there is no month 31), never a US date. A time
    or a UTC offset is checked and dropped: the calendar date as written is the invoice's date.
    Raises only ``ParseError`` (``date.empty``, ``date.format``, ``date.impossible``).
    """
    s = text.strip()
    if not s:
        raise ParseError("date.empty", "The date is empty", "La date est vide")
    iso = _ISO_DATE.fullmatch(s)
    dmy = None if iso else _DMY_DATE.fullmatch(s)
    if iso:
        year, month, day = int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
        clock = iso.group(4, 5, 6)
    elif dmy:
        day, month, year = int(dmy.group(1)), int(dmy.group(3)), int(dmy.group(4))
        clock = dmy.group(5, 6, 7)
    else:
        raise ParseError(
            "date.format",
            f"Unknown date format {_clip(s)!r}; use 31/12/2026 or 2026-12-31",
            f"Format de date inconnu {_clip(s)!r} ; utilisez 31/12/2026 ou 2026-12-31",
        )
    try:
        value = date(year, month, day)
        if clock[0] is not None:
            time(int(clock[0]), int(clock[1] or 0), int(clock[2] or 0))
    except ValueError:
        hint = " (dates are read day first: dd/mm/yyyy)" if dmy and month > 12 >= day else ""
        raise ParseError(
            "date.impossible",
            f"{_clip(s)!r} is not a real date or time{hint}",
            f"{_clip(s)!r} n'est pas une date ou une heure réelle (jour/mois/année)",
        ) from None
    return value


# --------------------------------------------------------------------------------------------------------
# Column mappings and presets
# --------------------------------------------------------------------------------------------------------


def normalize_header(name: str) -> str:
    """Case-, accent-, space- and punctuation-insensitive key: ``"Date d'échéance"`` → ``"datedecheance"``."""
    decomposed = unicodedata.normalize("NFKD", name.replace("\ufeff", ""))
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


@dataclass(frozen=True)
class ColumnMapping:
    """A creditor's column names → Relance fields (``FIELDS``); names match whatever their case, accents,
    spaces or punctuation. Several names may feed one field: in each row, the first of them (in mapping
    order) that is present and not empty gives the value.

    ``line_item_rows``: the export repeats an order on one row per line item, the order's fields filled
    only on its first row (Shopify). A row with the previous row's reference and an empty amount is then
    a continuation and is skipped.
    """

    name: str
    columns: Mapping[str, str]
    line_item_rows: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns.values()) - set(FIELDS))
        if unknown:
            raise ValueError(f"Unknown Relance fields in mapping {self.name!r}: {unknown}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnMapping:
        """From what a creditor's saved mapping stores: ``{"their column": "field"}``, or the ``to_dict``
        form ``{"name": …, "columns": {…}, "line_item_rows": …}``; ``{"preset": "shopify"}`` names a preset."""
        if "preset" in data and isinstance(data["preset"], str):
            return PRESETS[data["preset"]]
        if isinstance(data.get("columns"), Mapping):
            return cls(
                str(data.get("name", "custom")),
                {str(k): str(v) for k, v in data["columns"].items()},
                bool(data.get("line_item_rows", False)),
            )
        return cls("custom", {str(k): str(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "columns": dict(self.columns), "line_item_rows": self.line_item_rows}

    def names_for(self, field_name: str) -> list[str]:
        return [their for their, ours in self.columns.items() if ours == field_name]

    def resolve(self, header: Sequence[str]) -> ResolvedHeader:
        """Where each field sits in this header; which columns are unknown; which required ones miss."""
        position: dict[str, int] = {}
        for index, name in enumerate(header):
            position.setdefault(normalize_header(name), index)
        indexes: dict[str, tuple[int, ...]] = {}
        used: set[int] = set()
        for their, ours in self.columns.items():
            found = position.get(normalize_header(their))
            if found is not None and found not in indexes.get(ours, ()):
                indexes[ours] = (*indexes.get(ours, ()), found)
                used.add(found)
        missing = [f for f in REQUIRED_FIELDS if f not in indexes]
        if not any(f in indexes for f in NAME_FIELDS):
            missing.append(" | ".join(NAME_FIELDS))
        unknown = tuple(h for i, h in enumerate(header) if i not in used and h.strip())
        return ResolvedHeader(
            mapping=self,
            header=tuple(header),
            indexes=indexes,
            columns={f: header[i[0]] for f, i in indexes.items()},
            unknown=unknown,
            missing=tuple(missing),
        )


@dataclass(frozen=True)
class ResolvedHeader:
    mapping: ColumnMapping
    header: tuple[str, ...]
    indexes: Mapping[str, tuple[int, ...]]  # field → positions in the row, in mapping order
    columns: Mapping[str, str]  # field → the creditor's (first) column name, for errors
    unknown: tuple[str, ...]  # columns present in the file that no field uses (ignored, reported)
    missing: tuple[str, ...]  # required fields no column provides

    def column(self, field_name: str) -> str:
        if field_name in self.columns:
            return self.columns[field_name]
        if field_name == "invoice_number":
            return self.columns.get("external_ref", field_name)
        if field_name == "due_date":
            return self.columns.get("invoice_date", field_name)
        return field_name


# The generic Relance template: the field names themselves are the template's header (TEMPLATE_HEADER);
# common French and English labels are accepted too.
TEMPLATE_HEADER: tuple[str, ...] = FIELDS
_GENERIC_ALIASES: Mapping[str, tuple[str, ...]] = {
    "external_ref": (
        "reference",
        "référence",
        "ref",
        "external reference",
        "référence externe",
        "n° commande",
        "numéro de commande",
    ),
    "invoice_number": ("invoice number", "numéro de facture", "n° facture", "facture"),
    "invoice_date": ("invoice date", "date de facture", "date facture", "date de commande", "date commande"),
    "due_date": ("due date", "échéance", "date d'échéance"),
    "amount": ("montant", "montant ttc", "amount due", "montant dû", "total ttc"),
    "currency": ("devise",),
    "debtor.kind": ("kind", "type", "type de débiteur"),
    "debtor.first_name": ("first name", "prénom"),
    "debtor.last_name": ("last name", "nom"),
    "debtor.company_name": ("company", "company name", "raison sociale", "société"),
    "debtor.siren": ("siren", "n° siren"),
    "debtor.siret": ("siret", "n° siret"),
    # Never a bare "TVA" or "VAT": in French accounting exports that is the tax amount.
    "debtor.vat_number": (
        "vat number",
        "vat id",
        "n° tva",
        "numéro de tva",
        "tva intracommunautaire",
        "n° tva intracommunautaire",
        "tva intracom",
    ),
    "debtor.iban": ("iban", "iban du débiteur", "debtor iban"),
    "debtor.email": ("email", "e-mail", "courriel", "mail", "adresse e-mail"),
    "debtor.phone": ("phone", "téléphone", "portable", "mobile"),
    "debtor.address_line1": ("address", "adresse", "address line 1", "adresse 1"),
    "debtor.address_line2": ("address line 2", "adresse 2", "complément d'adresse"),
    "debtor.postcode": ("postcode", "postal code", "zip", "code postal", "cp"),
    "debtor.city": ("city", "ville"),
    "debtor.country": ("country", "pays"),
    "description": ("libellé",),
}

GENERIC = ColumnMapping(
    "relance",
    {
        **{f: f for f in FIELDS},
        **{alias: f for f, aliases in _GENERIC_ALIASES.items() for alias in aliases},
    },
)

# Shopify admin → Orders → Export (CSV). One row per line item; order fields only on the first row.
# Verified (Shopify help "Exporting orders", third-party template docs): Name, Email, Financial Status,
# Currency, Total, Created at ("2026-12-31 14:05:00 +0100"), Billing Name (first and last name in one
# field), Billing Company, Billing Address1, Billing Address2, Billing City, Billing Zip, Billing Country
# (ISO code), Billing Phone, Phone, Outstanding Balance.
# Assumed: "Next Payment Due At" (payment terms, newer exports) as the due date. "Total" is the amount;
# a creditor collecting partially paid orders should map "Outstanding Balance" instead.
# Billing Name is kept whole in last_name: splitting people's names is a guess we refuse to make.
SHOPIFY = ColumnMapping(
    "shopify",
    {
        "Name": "external_ref",
        "Created at": "invoice_date",
        "Next Payment Due At": "due_date",
        "Total": "amount",
        "Currency": "currency",
        "Email": "debtor.email",
        "Billing Name": "debtor.last_name",
        "Billing Company": "debtor.company_name",
        "Billing Address1": "debtor.address_line1",
        "Billing Address2": "debtor.address_line2",
        "Billing Zip": "debtor.postcode",
        "Billing City": "debtor.city",
        "Billing Country": "debtor.country",
        "Billing Phone": "debtor.phone",
        "Phone": "debtor.phone",
    },
    line_item_rows=True,
)

# WooCommerce has no order CSV export in core. Verified: the column keys of the official extension
# "Customer / Order / Coupon Export" (SkyVerge, default format: order_number, order_date, order_total,
# order_currency, billing_first_name … billing_phone), which its docs promise never change.
# Assumed: the labels of the popular "Advanced Order Export For WooCommerce" plugin ("Order Number",
# "Order Date", "Order Total Amount", "First Name (Billing)", …), accepted as aliases.
WOOCOMMERCE = ColumnMapping(
    "woocommerce",
    {
        # order_number is empty in some versions of the extension; then the formatted number, then the id.
        "order_number": "external_ref",
        "order_number_formatted": "external_ref",
        "order_id": "external_ref",
        "Order Number": "external_ref",
        "order_date": "invoice_date",
        "order_total": "amount",
        "Order Total Amount": "amount",
        "order_currency": "currency",
        "billing_first_name": "debtor.first_name",
        "First Name (Billing)": "debtor.first_name",
        "billing_last_name": "debtor.last_name",
        "Last Name (Billing)": "debtor.last_name",
        "billing_company": "debtor.company_name",
        "Company (Billing)": "debtor.company_name",
        "billing_email": "debtor.email",
        "Email (Billing)": "debtor.email",
        "billing_phone": "debtor.phone",
        "Phone (Billing)": "debtor.phone",
        "billing_address_1": "debtor.address_line1",
        "Address 1 (Billing)": "debtor.address_line1",
        "billing_address_2": "debtor.address_line2",
        "Address 2 (Billing)": "debtor.address_line2",
        "billing_postcode": "debtor.postcode",
        "Postcode (Billing)": "debtor.postcode",
        "billing_city": "debtor.city",
        "City (Billing)": "debtor.city",
        "billing_country": "debtor.country",
        "Country Code (Billing)": "debtor.country",
    },
)

# PrestaShop 1.7.7+/8 back office → Orders → Export. Verified against OrderGridDefinitionFactory: ID,
# Reference, New client, Delivery (a country *name*), Customer ("J. Martin"), Company (B2B only), Total,
# Payment, Status, Date. Assumed: the French back-office labels (Référence, Client, Livraison, Société,
# État) and that the export is ``;``-delimited. The grid has no e-mail or postcode: claims from it fail
# validation until the creditor adds them (SQL manager export with ``email``, ``postcode`` columns).
PRESTASHOP = ColumnMapping(
    "prestashop",
    {
        "Reference": "external_ref",
        "Référence": "external_ref",
        "Date": "invoice_date",
        "Total": "amount",
        "Customer": "debtor.last_name",
        "Client": "debtor.last_name",
        "Company": "debtor.company_name",
        "Société": "debtor.company_name",
        "Delivery": "debtor.country",
        "Livraison": "debtor.country",
        "email": "debtor.email",
        "postcode": "debtor.postcode",
        "city": "debtor.city",
        "address1": "debtor.address_line1",
        "phone": "debtor.phone",
        # Columns of ps_customer and ps_address that SQL-manager exports add for B2B shops.
        "siret": "debtor.siret",
        "vat_number": "debtor.vat_number",
    },
)

PRESETS: Mapping[str, ColumnMapping] = {m.name: m for m in (GENERIC, SHOPIFY, WOOCOMMERCE, PRESTASHOP)}


def detect_preset(header: Sequence[str]) -> ColumnMapping | None:
    """The preset that fits a header best: complete ones first, then the most columns recognised.

    None when no preset recognises at least two columns.
    """
    best: tuple[bool, int, ColumnMapping] | None = None
    for mapping in PRESETS.values():
        resolved = mapping.resolve(header)
        score = (not resolved.missing, len(resolved.indexes))
        if score[1] >= 2 and (best is None or score > best[:2]):
            best = (*score, mapping)
    return best[2] if best else None


def suggest_fields(header: Sequence[str]) -> dict[str, str]:
    """A first guess at a custom mapping: each column of ``header`` → the field a preset (the Relance
    template first) reads it as; columns no preset knows are left out, for the creditor to map."""
    known: dict[str, str] = {}
    for mapping in PRESETS.values():
        for their, ours in mapping.columns.items():
            known.setdefault(normalize_header(their), ours)
    suggestion: dict[str, str] = {}
    for name in header:
        field_name = known.get(normalize_header(name))
        if name.strip() and field_name is not None:
            suggestion.setdefault(name.strip(), field_name)
    return suggestion


def split_header(line: str) -> list[str]:
    """The column names of a header line pasted from a file (``;``, ``,`` or tab separated)."""
    text = line.strip().lstrip("\ufeff").splitlines()[0] if line.strip() else ""
    if not text:
        return []
    return [c.strip() for c in next(csv.reader([text], delimiter=sniff_delimiter(text)))]


# --------------------------------------------------------------------------------------------------------
# Cells → ClaimData
# --------------------------------------------------------------------------------------------------------

_DEBTOR_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (f, f.removeprefix("debtor.")) for f in FIELDS if f.startswith("debtor.")
)
_KINDS: Mapping[str, str] = {
    normalize_header(k): v
    for k, v in {
        "person": "person",
        "personne": "person",
        "particulier": "person",
        "individual": "person",
        "b2c": "person",
        "company": "company",
        "entreprise": "company",
        "société": "company",
        "professionnel": "company",
        "business": "company",
        "b2b": "company",
    }.items()
}


def _build_countries() -> dict[str, str]:
    names: dict[str, str] = {}
    for locale in ("en", "fr"):
        for code, label in Locale.parse(locale).territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(normalize_header(label), code)
    return names


_COUNTRIES: dict[str, str] = {}


def normalize_country(text: str, default: str = "FR") -> str:
    """ISO 3166 alpha-2 from a code or a country name in English or French; unknown text is kept as is."""
    s = text.strip()
    if not s:
        return default
    if len(s) == 2 and s.isalpha():
        return s.upper()
    if not _COUNTRIES:
        _COUNTRIES.update(_build_countries())
    return _COUNTRIES.get(normalize_header(s), s)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _decimals(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _excel_number(value: float | int | Decimal, currency: str, text: str) -> Money:
    """An amount that arrived as a number (XLSX). Floats are read through their shortest repr, then cleared
    of binary noise beyond Excel's 15 significant digits; real extra decimals are an error, not a rounding.
    """
    if isinstance(value, float):
        exact = Decimal(str(value))
        digits = minor_digits(currency)
        if _decimals(exact) > digits:
            excel = Decimal(f"{value:.15g}")
            if _decimals(excel) <= digits:
                exact = excel
        number = exact
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise ParseError("amount.not_a_number", "This is not an amount", "Ce n'est pas un montant")
    if number <= 0:
        raise _amount_error("amount.not_positive", text, "The amount must be positive", "Le montant doit être positif")
    return parse_amount(format(number, "f"), currency, decimal=".")


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One data row: ``claim`` and ``amount`` when it parsed, else ``errors`` (never both empty).

    ``ref`` is the external reference as written (also on failed rows, for duplicate detection);
    ``header`` tells which creditor column feeds which field; ``cells`` are the row's raw values, so that
    later checks (``validate_claim``) can name the creditor's column and value too.
    """

    row: int
    claim: ClaimData | None
    amount: Money | None
    errors: tuple[RowError, ...]
    ref: str
    header: ResolvedHeader = field(repr=False)
    cells: tuple[object, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.claim is not None

    @property
    def data(self) -> ClaimData | None:
        """The claim, under the name the import pipeline uses."""
        return self.claim

    def column_for(self, field_name: str) -> str:
        """The creditor's column holding a Relance field (``FieldError.field``) in this row."""
        return _pick(self.header, self.cells, field_name)[1]

    def value_for(self, field_name: str) -> str:
        """The row's value for a Relance field, as text, clipped for an error report."""
        return _clip(_cell_text(_pick(self.header, self.cells, field_name)[0]))

    def error(self, field_name: str, code: str, message: str) -> RowError:
        """A ``RowError`` for this row naming the creditor's column and value of ``field_name``."""
        return RowError(self.row, self.column_for(field_name), code, message, self.value_for(field_name))


def _pick(header: ResolvedHeader, cells: Sequence[object], field_name: str) -> tuple[object, str]:
    """The value of a field in a row and the creditor's column it came from (first non-empty alias)."""
    positions = header.indexes.get(field_name, ())
    for position in positions:
        if position < len(cells) and _cell_text(cells[position]):
            return cells[position], header.header[position]
    if positions and positions[0] < len(cells):
        return cells[positions[0]], header.header[positions[0]]
    return None, header.column(field_name)


class _RowParser:
    def __init__(
        self, header: ResolvedHeader, *, currency_default: str, decimal: str | None, country_default: str
    ) -> None:
        self.header = header
        self.currency_default = currency_default
        self.decimal = decimal
        self.country_default = country_default

    def pick(self, cells: Sequence[object], field_name: str) -> tuple[object, str]:
        return _pick(self.header, cells, field_name)

    def cell(self, cells: Sequence[object], field_name: str) -> object:
        return self.pick(cells, field_name)[0]

    def parse(self, row: int, cells: Sequence[object]) -> ParsedRow:
        errors: list[RowError] = []
        header = self.header
        picked = {f: _pick(header, cells, f) for f in header.indexes}

        def pick(field_name: str) -> tuple[object, str]:
            return picked.get(field_name) or (None, header.column(field_name))

        def error(field_name: str, code: str, message: str, value: object) -> None:
            errors.append(RowError(row, pick(field_name)[1], code, message, _clip(_cell_text(value))))

        def text(field_name: str) -> str:
            raw = pick(field_name)[0]
            value = _cell_text(raw)
            limit = MAX_LENGTH.get(field_name)
            if limit is not None and len(value) > limit:
                error(
                    field_name,
                    "field.too_long",
                    f"{len(value)} characters, at most {limit} / {len(value)} caractères, au plus {limit}",
                    raw,
                )
            return value

        if len(cells) > len(header.header) and any(_cell_text(c) for c in cells[len(header.header) :]):
            errors.append(
                RowError(
                    row,
                    "",
                    "row.too_many_fields",
                    f"{len(cells)} fields for {len(header.header)} columns: a value probably contains the "
                    f"delimiter unquoted / {len(cells)} champs pour {len(header.header)} colonnes : une valeur "
                    "contient sans doute le séparateur sans guillemets",
                    _clip(" | ".join(_cell_text(c) for c in cells)),
                )
            )

        ref = text("external_ref")
        if not ref:
            error("external_ref", "required", "External reference is required / Référence obligatoire", "")
        invoice_number = text("invoice_number") or ref

        invoice_date = self.date_of(pick("invoice_date")[0], "invoice_date", error)
        due_date = invoice_date
        if _cell_text(pick("due_date")[0]):
            due_date = self.date_of(pick("due_date")[0], "due_date", error)

        currency = _cell_text(pick("currency")[0]).upper() or self.currency_default
        amount: Money | None = None
        try:
            _minor_digits(currency)
        except MoneyError:
            error(
                "currency",
                "currency.unsupported",
                f"Unsupported currency {currency!r} / Devise non prise en charge {currency!r}",
                currency,
            )
        else:
            amount = self.amount_of(pick("amount")[0], currency, error)

        debtor_values = {key: text(f) for f, key in _DEBTOR_FIELDS}
        for key in ("postcode", "phone", "siren", "siret"):
            # Excel users (and Shopify's Billing Zip) prefix numbers with ' to keep leading zeros.
            value = debtor_values[key]
            if value.startswith("'") and (value[1:2].isdigit() or value[1:2] == "+"):
                debtor_values[key] = value[1:]
        debtor_values["siren"] = re.sub(r"[\s.]", "", debtor_values["siren"])
        debtor_values["country"] = normalize_country(debtor_values["country"], self.country_default)
        kind = debtor_values["kind"]
        if kind:
            debtor_values["kind"] = _KINDS.get(normalize_header(kind), kind)
        elif debtor_values["company_name"] and (
            debtor_values["siren"]
            or debtor_values["siret"]
            or debtor_values["vat_number"]
            or not debtor_values["last_name"]
        ):
            debtor_values["kind"] = "company"
        else:
            debtor_values["kind"] = "person"
        description = text("description")

        if errors or invoice_date is None or due_date is None or amount is None:
            return ParsedRow(row, None, None, tuple(errors), ref, header, tuple(cells))
        claim = ClaimData(
            external_ref=ref,
            invoice_number=invoice_number,
            invoice_date=invoice_date,
            due_date=due_date,
            amount=format(amount.to_decimal(), "f"),
            currency=currency,
            debtor=DebtorData(**debtor_values),
            description=description,
        )
        return ParsedRow(row, claim, amount, (), ref, header, tuple(cells))

    def date_of(self, raw: object, field_name: str, error: _ErrorSink) -> date | None:
        if isinstance(raw, datetime):
            return raw.date()
        if isinstance(raw, date):
            return raw
        try:
            return parse_date(_cell_text(raw))
        except ParseError as exc:
            error(field_name, exc.code, exc.message, raw)
            return None

    def amount_of(self, raw: object, currency: str, error: _ErrorSink) -> Money | None:
        try:
            if isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
                return _excel_number(raw, currency, _cell_text(raw))
            return parse_amount(_cell_text(raw), currency, decimal=self.decimal)
        except ParseError as exc:
            error("amount", exc.code, exc.message, raw)
            return None


class _ErrorSink(Protocol):
    def __call__(self, field_name: str, code: str, message: str, value: object, /) -> None: ...


# --------------------------------------------------------------------------------------------------------
# Row streams (CSV and XLSX share everything after the cells are read)
# --------------------------------------------------------------------------------------------------------


def _blank(cells: Sequence[object]) -> bool:
    return not any(_cell_text(c) for c in cells)


@dataclass
class RowStream(Iterator[ParsedRow]):
    """An iterator of ``ParsedRow`` that also tells how the file was read.

    Built eagerly (header read, mapping resolved, decimal separator detected on a sample): a file-level
    problem raises ``IntakeFileError`` when the stream is created, before any row is yielded.
    """

    header: ResolvedHeader
    decimal: str | None
    encoding: str = ""
    delimiter: str = ""
    _rows: Iterator[ParsedRow] = field(default_factory=lambda: iter(()), repr=False)

    @property
    def mapping(self) -> ColumnMapping:
        return self.header.mapping

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        return self.header.unknown

    def __next__(self) -> ParsedRow:
        return next(self._rows)


def _open_stream(
    records: Iterator[tuple[int, Sequence[object]]],
    *,
    mapping: ColumnMapping | None,
    currency_default: str,
    decimal: str | None,
    country_default: str,
) -> RowStream:
    header_cells: Sequence[object] | None = None
    header_row = 0
    for number, cells in records:
        if not _blank(cells):
            header_row, header_cells = number, cells
            break
    if header_cells is None:
        raise IntakeFileError(_file_error("file.empty", "The file is empty", "Le fichier est vide"))
    header = [_cell_text(c) for c in header_cells]
    chosen = mapping or detect_preset(header)
    if chosen is None:
        raise IntakeFileError(
            _file_error(
                "file.unknown_layout",
                "No known layout matches these columns; choose a column mapping",
                "Aucune disposition connue ne correspond à ces colonnes ; choisissez une correspondance",
                row=header_row,
                value=" | ".join(header),
            )
        )
    resolved = chosen.resolve(header)
    if resolved.missing:
        expected = "; ".join(
            f"{f} ({', '.join(n for part in f.split(' | ') for n in chosen.names_for(part)[:3])})"
            for f in resolved.missing
        )
        raise IntakeFileError(
            _file_error(
                "file.missing_columns",
                f"Required columns missing: {expected}",
                f"Colonnes obligatoires absentes : {expected}",
                row=header_row,
                value=" | ".join(header),
            ),
            missing=resolved.missing,
        )
    # Bounded look-ahead: the decimal separator is decided on the first SAMPLE_ROWS rows.
    buffered: list[tuple[int, Sequence[object]]] = []
    if decimal is None:
        for item in records:
            buffered.append(item)
            if len(buffered) >= SAMPLE_ROWS:
                break
        amount_index = resolved.indexes["amount"][0]
        decimal = detect_decimal(
            v for _, c in buffered if amount_index < len(c) and isinstance(v := c[amount_index], str)
        )
    parser = _RowParser(resolved, currency_default=currency_default, decimal=decimal, country_default=country_default)
    return RowStream(header=resolved, decimal=decimal, _rows=_parse_all(parser, buffered, records))


def _parse_all(
    parser: _RowParser, buffered: list[tuple[int, Sequence[object]]], records: Iterator[tuple[int, Sequence[object]]]
) -> Iterator[ParsedRow]:
    previous_ref: str | None = None
    line_items = parser.header.mapping.line_item_rows
    for number, cells in _chain(buffered, records):
        if _blank(cells):
            continue
        if line_items:
            ref = _cell_text(parser.cell(cells, "external_ref"))
            if ref and ref == previous_ref and not _cell_text(parser.cell(cells, "amount")):
                continue
            previous_ref = ref
        yield parser.parse(number, cells)


def _chain(
    first: list[tuple[int, Sequence[object]]], rest: Iterator[tuple[int, Sequence[object]]]
) -> Iterator[tuple[int, Sequence[object]]]:
    yield from first
    yield from rest


# --------------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------------


class _BinaryReadable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Error handler: bytes that are not UTF-8 in a file sniffed as UTF-8 are read as CP1252.

    A file that is ASCII for its first SAMPLE_BYTES and has one Latin-1 "é" later must not crash.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return bytes(exc.object[exc.start : exc.end]).decode("cp1252", errors="replace"), exc.end


_FALLBACK = "relance.cp1252_fallback"
codecs.register_error(_FALLBACK, _cp1252_fallback)


@dataclass(frozen=True, slots=True)
class CsvFormat:
    encoding: str
    delimiter: str


def sniff_encoding(sample: bytes, *, complete: bool = False) -> str:
    """``utf-8-sig`` (BOM), ``utf-16`` (BOM, Excel "Unicode text"), ``utf-8`` if the sample is strict UTF-8,
    else ``cp1252`` (Windows Latin-1, a superset of ISO 8859-1 for printable text)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=complete)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


_DELIMITERS = (";", ",", "\t")


def sniff_delimiter(text: str) -> str:
    """``csv.Sniffer`` on the sample, checked against the header line: the delimiter splitting the header
    into the most columns wins (headers rarely contain a delimiter; amounts like ``12,50`` often do)."""
    lines = [line for line in text[:16384].splitlines() if line.strip()]
    if not lines:
        return ","
    counts = {d: len(next(csv.reader([lines[0]], delimiter=d))) for d in _DELIMITERS}
    try:
        sniffed: str | None = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    best = max(counts.values())
    if best <= 1:
        return sniffed or ","
    if sniffed in counts and counts[sniffed] == best:
        return sniffed
    return next(d for d in _DELIMITERS if counts[d] == best)


class _Prefixed(io.RawIOBase):
    """A raw stream that replays the sniffed prefix, then continues with the (possibly unseekable) file."""

    def __init__(self, prefix: bytes, rest: _BinaryReadable) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _csv_records(reader: Iterator[list[str]]) -> Iterator[tuple[int, Sequence[object]]]:
    number = 0
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, cells
    except csv.Error as exc:
        raise IntakeFileError(
            _file_error(
                "file.malformed",
                f"Unreadable CSV after row {number}: {exc}",
                f"CSV illisible après la ligne {number} : {exc}",
                row=number + 1,
            )
        ) from None


def read_rows(
    binary_file: _BinaryReadable,
    mapping: ColumnMapping | None = None,
    currency_default: str = "EUR",
    decimal: str | None = None,
    *,
    country_default: str = "FR",
) -> RowStream:
    """Stream the data rows of a CSV file opened in binary mode, as ``ParsedRow`` values.

    Encoding, delimiter and (unless given) decimal separator are detected; ``mapping`` defaults to the
    preset that fits the header. Row numbers count CSV records as a spreadsheet shows them (header = 1,
    a quoted value spanning lines is one row). Blank rows are skipped. Raises ``IntakeFileError`` for an
    empty file, an unknown layout or missing required columns.
    """
    csv.field_size_limit(max(csv.field_size_limit(), min(FIELD_SIZE_LIMIT, sys.maxsize)))
    sample = binary_file.read(SAMPLE_BYTES)
    encoding = sniff_encoding(sample, complete=len(sample) < SAMPLE_BYTES)
    errors = _FALLBACK if encoding.startswith("utf-8") else "replace"
    text_sample = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample)
    delimiter = sniff_delimiter(text_sample.lstrip("\ufeff"))
    raw = io.BufferedReader(_Prefixed(sample, binary_file))
    text = io.TextIOWrapper(raw, encoding=encoding, errors=errors, newline="")
    reader = csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    stream = _open_stream(
        _csv_records(reader),
        mapping=mapping,
        currency_default=currency_default,
        decimal=decimal,
        country_default=country_default,
    )
    stream.encoding, stream.delimiter = encoding, delimiter
    return stream


# --------------------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------------------


def read_xlsx_rows(
    path_or_file: str | Any,
    sheet: str | None = None,
    mapping: ColumnMapping | None = None,
    currency_default: str = "EUR",
    decimal: str | None = None,
    *,
    country_default: str = "FR",
) -> RowStream:
    """Stream the data rows of an XLSX workbook's first (or named) sheet, as ``ParsedRow`` values.

    Read-only mode (rows are streamed from the zip). Formulas are read as the value Excel last computed
    (what the creditor saw); dates may arrive as ``datetime`` and amounts as numbers (see ``_excel_number``).
    """
    from openpyxl import load_workbook  # noqa: PLC0415 - optional at import time for CSV-only callers
    from openpyxl.utils.exceptions import InvalidFileException  # noqa: PLC0415

    try:
        workbook = load_workbook(path_or_file, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise IntakeFileError(
            _file_error("file.not_xlsx", f"Not a readable XLSX file: {exc}", "Fichier XLSX illisible")
        ) from None
    if sheet is None:
        worksheet = workbook.worksheets[0]
    elif sheet in workbook.sheetnames:
        worksheet = workbook[sheet]
    else:
        workbook.close()
        raise IntakeFileError(
            _file_error(
                "file.sheet_missing",
                f"No sheet named {sheet!r} (sheets: {', '.join(workbook.sheetnames)})",
                f"Aucune feuille nommée {sheet!r}",
            )
        )

    def records() -> Iterator[tuple[int, Sequence[object]]]:
        try:
            yield from enumerate(worksheet.iter_rows(values_only=True), start=1)
        finally:
            workbook.close()

    try:
        stream = _open_stream(
            records(),
            mapping=mapping,
            currency_default=currency_default,
            decimal=decimal,
            country_default=country_default,
        )
    except IntakeFileError:
        workbook.close()
        raise
    return stream


# --------------------------------------------------------------------------------------------------------
# Duplicates inside one file and the error report
# --------------------------------------------------------------------------------------------------------


class DuplicateRefTracker:
    """Remembers the row of each external reference seen; flags the second and later occurrences.

    Memory grows with the number of distinct references (one string and one int each).
    """

    def __init__(self) -> None:
        self._first: dict[str, int] = {}

    def check(self, row: ParsedRow) -> RowError | None:
        ref = row.ref.strip()
        if not ref:
            return None
        first = self._first.setdefault(ref, row.row)
        if first == row.row:
            return None
        return RowError(
            row.row,
            row.header.column("external_ref"),
            "ref.duplicate_in_file",
            f"Reference {ref!r} already appears on row {first} / La référence {ref!r} figure déjà ligne {first}",
            _clip(ref),
        )


def duplicate_refs(rows: Iterable[ParsedRow]) -> list[RowError]:
    """``ref.duplicate_in_file`` for every occurrence of a reference after its first one in the file."""
    tracker = DuplicateRefTracker()
    return [e for e in map(tracker.check, rows) if e is not None]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """Neutralise a value for a CSV opened in a spreadsheet (OWASP "CSV Injection"): a leading ``'`` when it
    starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return, so it is shown as text, not run."""
    return "'" + value if value.startswith(_FORMULA_START) else value


REPORT_HEADER = ("row", "column", "value", "code", "message")


def write_error_report(errors: Iterable[RowError], text_file: IO[str]) -> int:
    """Write the downloadable error report (CSV: row, column, value, code, message); returns rows written.

    ``text_file`` should be opened with ``newline=""``. Every text cell passes through ``csv_safe``.
    """
    writer = csv.writer(text_file)
    writer.writerow(REPORT_HEADER)
    count = 0
    for e in errors:
        writer.writerow([e.row, csv_safe(e.column), csv_safe(e.value), csv_safe(e.code), csv_safe(e.message)])
        count += 1
    return count
