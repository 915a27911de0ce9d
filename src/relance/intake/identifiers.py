"""Checking the identifiers a claim may carry (pure): IBAN, SIREN, SIRET, VAT numbers and postcodes.

Each check takes the text as the creditor wrote it and returns ``(normalised, problem)``: the compact
(or, for postcodes, canonical) form when it is valid, else a ``Problem`` with a stable code and a
message in English and French that quotes the value. Field-made libraries do the work: schwifty for
IBANs (ISO 13616 check digits and the national BBAN key, e.g. the French clé RIB), python-stdnum for
SIREN/SIRET (Luhn, La Poste's exception included) and VAT numbers (each EU state's own check digits,
plus GB, CH and NO).

Fast on big files: files repeat the same values (a debtor with ten claims, a company's SIRET), so
every check is cached per distinct value (``functools.lru_cache``, bounded). No Django import.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from schwifty import IBAN
from schwifty import exceptions as iban_errors
from stdnum import exceptions as stdnum_errors
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from stdnum.gb import vat as gb_vat
from stdnum.no import mva as no_vat

CACHE_SIZE = 1 << 16
MAX_QUOTED = 60  # how much of a bad value a message quotes


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    en: str
    fr: str

    @property
    def message(self) -> str:
        return f"{self.en} / {self.fr}"


Checked = tuple[str, Problem | None]


def _q(value: str) -> str:
    shown = value if len(value) <= MAX_QUOTED else value[:MAX_QUOTED] + "…"
    return repr(shown)


# --------------------------------------------------------------------------------------------------------
# IBAN (schwifty)
# --------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=CACHE_SIZE)
def iban_check(value: str) -> Checked:
    """An IBAN in any usual writing (spaces, lower case) → its compact form, or why it is wrong."""
    text = value.strip()
    try:
        with warnings.catch_warnings():
            # Countries without a national key algorithm in schwifty only warn: the ISO check digits
            # (mod 97) still protect against typos.
            warnings.simplefilter("ignore", iban_errors.NationalChecksumNotVerified)
            iban = IBAN(text, validate_bban=True)
    except iban_errors.InvalidCountryCode:
        return "", Problem(
            "iban.country",
            f"IBAN {_q(text)} does not start with a known country code",
            f"L'IBAN {_q(text)} ne commence pas par un code pays connu",
        )
    except iban_errors.InvalidLength:
        return "", Problem(
            "iban.length",
            f"IBAN {_q(text)} has the wrong length for its country",
            f"L'IBAN {_q(text)} n'a pas la longueur prévue pour son pays",
        )
    except (iban_errors.InvalidChecksumDigits, iban_errors.InvalidBBANChecksum):
        return "", Problem(
            "iban.checksum",
            f"IBAN {_q(text)} has wrong check digits (a typo?)",
            f"L'IBAN {_q(text)} a une clé de contrôle fausse (faute de frappe ?)",
        )
    except (iban_errors.SchwiftyException, ValueError):
        return "", Problem(
            "iban.structure",
            f"IBAN {_q(text)} is not laid out as its country's IBANs are",
            f"L'IBAN {_q(text)} n'a pas la structure des IBAN de son pays",
        )
    return iban.compact, None


# --------------------------------------------------------------------------------------------------------
# SIREN, SIRET (python-stdnum; INSEE: Luhn on 9 and 14 digits)
# --------------------------------------------------------------------------------------------------------


def _stdnum(value: str, *, validate: Callable[[str], str], name: str, digits: int, prefix: str) -> Checked:
    text = value.strip()
    try:
        return validate(text), None
    except stdnum_errors.InvalidChecksum:
        return "", Problem(
            f"{prefix}.checksum",
            f"{name} {_q(text)} has a wrong check digit (a typo?)",
            f"Le {name} {_q(text)} a un chiffre de contrôle faux (faute de frappe ?)",
        )
    except stdnum_errors.ValidationError:
        return "", Problem(
            f"{prefix}.format",
            f"{name} has {digits} digits, got {_q(text)}",
            f"Le {name} a {digits} chiffres, reçu {_q(text)}",
        )


@functools.lru_cache(maxsize=CACHE_SIZE)
def siren_check(value: str) -> Checked:
    """A SIREN (9 digits, spaces or dots allowed) → its 9 digits."""
    return _stdnum(value, validate=fr_siren.validate, name="SIREN", digits=9, prefix="siren")


@functools.lru_cache(maxsize=CACHE_SIZE)
def siret_check(value: str) -> Checked:
    """A SIRET (14 digits: the SIREN and the establishment's number) → its 14 digits."""
    return _stdnum(value, validate=fr_siret.validate, name="SIRET", digits=14, prefix="siret")


# --------------------------------------------------------------------------------------------------------
# VAT numbers (EU intra-community, GB, CH, NO)
# --------------------------------------------------------------------------------------------------------

_VAT_OTHERS: Mapping[str, Callable[[str], str]] = {"GB": gb_vat.validate, "CH": ch_vat.validate, "NO": no_vat.validate}
# VAT prefixes that are not the ISO country code (Greece) and ISO codes whose VAT prefix differs.
_VAT_PREFIX_OF_COUNTRY: Mapping[str, str] = {"GR": "EL"}
_VAT_PREFIX = re.compile(r"[A-Za-z]{2}")


def _vat_candidate(text: str, country: str) -> str:
    compact = re.sub(r"[\s.\-/]", "", text).upper()
    if _VAT_PREFIX.match(compact) or not country:
        return compact
    return _VAT_PREFIX_OF_COUNTRY.get(country, country) + compact  # "40303265045" from a French debtor


@functools.lru_cache(maxsize=CACHE_SIZE)
def vat_check(value: str, country: str = "") -> Checked:
    """An intra-community VAT number (``FR40303265045``; the prefix may be left out for the debtor's
    own country) or a GB, CH or NO one → its compact form with the country prefix."""
    text = value.strip()
    candidate = _vat_candidate(text, country.upper())
    prefix = candidate[:2]
    validate = _VAT_OTHERS.get(prefix) or (eu_vat.validate if prefix.lower() in eu_vat.MEMBER_STATES | {"el"} else None)
    if validate is None:
        return "", Problem(
            "vat.country",
            f"VAT number {_q(text)} does not start with an EU country code (FR, BE, DE…) or GB, CH, NO",
            f"Le numéro de TVA {_q(text)} ne commence pas par un code pays de l'UE (FR, BE, DE…) ni GB, CH, NO",
        )
    try:
        compact = validate(candidate)
    except stdnum_errors.InvalidChecksum:
        return "", Problem(
            "vat.checksum",
            f"VAT number {_q(text)} has a wrong check key (a typo?)",
            f"Le numéro de TVA {_q(text)} a une clé de contrôle fausse (faute de frappe ?)",
        )
    except stdnum_errors.ValidationError:
        return "", Problem(
            "vat.format",
            f"VAT number {_q(text)} is not laid out as {prefix} VAT numbers are",
            f"Le numéro de TVA {_q(text)} n'a pas le format des numéros {prefix}",
        )
    compact = compact.upper()
    return (compact if compact.startswith(prefix) else prefix + compact), None


def vat_siren(vat: str) -> str:
    """The SIREN inside a French VAT number (``FR`` + 2-digit key + SIREN), else ""."""
    return vat[4:] if vat.startswith("FR") and len(vat) == 13 and vat[4:].isdigit() else ""


# --------------------------------------------------------------------------------------------------------
# Postcodes (a small table of formats; other countries are accepted as written)
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Format:
    pattern: re.Pattern[str]
    canonical: Callable[[re.Match[str]], str]
    example: str
    en: str  # country name in English
    fr: str  # and in French, with its article ("belge")


def _whole(m: re.Match[str]) -> str:
    return m.group(0)


def _group1(m: re.Match[str]) -> str:
    return m.group(1)


def _two_parts(m: re.Match[str]) -> str:
    return f"{m.group(1)} {m.group(2)}"


_GB = r"(GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][ABD-HJLNP-UW-Z]{2})"

# Sources: Universal Postal Union addressing S42 country sheets and the national posts' guides.
POSTCODE_FORMATS: Mapping[str, _Format] = {
    "FR": _Format(re.compile(r"\d{5}"), _whole, "75002", "French", "français"),
    "MC": _Format(re.compile(r"980\d{2}"), _whole, "98000", "Monaco", "monégasque"),
    "BE": _Format(re.compile(r"[1-9]\d{3}"), _whole, "1000", "Belgian", "belge"),
    "LU": _Format(re.compile(r"(?:L-?)?(\d{4})"), _group1, "1009 (or L-1009)", "Luxembourg", "luxembourgeois"),
    "DE": _Format(re.compile(r"\d{5}"), _whole, "10115", "German", "allemand"),
    # Spain: the first two digits are the province, 01 to 52.
    "ES": _Format(re.compile(r"(?:0[1-9]|[1-4]\d|5[0-2])\d{3}"), _whole, "28013", "Spanish", "espagnol"),
    "IT": _Format(re.compile(r"\d{5}"), _whole, "00184", "Italian", "italien"),
    # Netherlands: four digits (no leading 0) and two letters; SA, SD and SS are never issued.
    "NL": _Format(
        re.compile(r"([1-9]\d{3}) ?((?!SA|SD|SS)[A-Z]{2})"), _two_parts, "1012 AB", "Dutch", "néerlandais"
    ),
    "GB": _Format(re.compile(_GB), _two_parts, "SW1A 1AA", "UK", "britannique"),
    "CH": _Format(re.compile(r"[1-9]\d{3}"), _whole, "8001", "Swiss", "suisse"),
    "AT": _Format(re.compile(r"[1-9]\d{3}"), _whole, "1010", "Austrian", "autrichien"),
    "PT": _Format(re.compile(r"(\d{4})-?(\d{3})"), lambda m: f"{m.group(1)}-{m.group(2)}", "1000-001", "Portuguese",
                  "portugais"),
}  # fmt: skip


@functools.lru_cache(maxsize=CACHE_SIZE)
def postcode_check(value: str, country: str) -> Checked:
    """A postcode in the debtor's country's format → its canonical writing (``sw1a1aa`` → ``SW1A 1AA``).

    Countries outside ``POSTCODE_FORMATS`` are accepted as written (stripped, spaces collapsed).
    """
    text = " ".join(value.split()).upper()
    rule = POSTCODE_FORMATS.get(country.upper())
    if rule is None:
        return text, None
    found = rule.pattern.fullmatch(text)
    if found is None:
        return "", Problem(
            "postcode.invalid",
            f"{rule.en} postcodes look like {rule.example}, got {_q(value.strip())}",
            f"Un code postal {rule.fr} s'écrit comme {rule.example}, reçu {_q(value.strip())}",
        )
    return rule.canonical(found), None
