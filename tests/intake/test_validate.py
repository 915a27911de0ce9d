"""validate_claim (pure): the identifier, postcode, date and mandate rules, accepted and refused cases.

Every refusal is a FieldError naming the field, with a stable code and "English / français".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from relance.intake.parse import FIELDS
from relance.intake.validate import REQUIRABLE, ClaimData, DebtorData, validate_claim
from relance.tenancy.models import REQUIRABLE_FIELDS
from support import claim_data

TODAY = date(2026, 11, 25)
SIREN = "732829320"
SIRET = "73282932000074"
VAT = "FR44732829320"
IBAN = "FR7630006000011234567890189"


def claim(**debtor: str) -> ClaimData:
    data = claim_data("V-1", **debtor)
    return replace(data, invoice_date=TODAY - timedelta(days=40), due_date=TODAY - timedelta(days=10))


def company(**fields: str) -> ClaimData:
    return claim(kind="company", company_name="Bureau Plus SARL", **fields)


def codes(data: ClaimData, **kwargs: object) -> list[tuple[str, str]]:
    clean, errors = validate_claim(data, today=TODAY, **kwargs)  # type: ignore[arg-type]
    assert (clean is None) == bool(errors)
    for e in errors:
        assert " / " in e.message, e  # English / français
    return [(e.field, e.code) for e in errors]


def clean_debtor(data: ClaimData, **kwargs: object) -> DebtorData:
    clean, errors = validate_claim(data, today=TODAY, **kwargs)  # type: ignore[arg-type]
    assert errors == []
    assert clean is not None
    return clean.data.debtor


# --- identifiers ----------------------------------------------------------------------------------------


def test_identifiers_are_normalised_and_the_siren_taken_from_the_siret() -> None:
    debtor = clean_debtor(
        company(siret="732 829 320 00074", vat_number="fr 44 732829320", iban="fr76 3000 6000 0112 3456 7890 189")
    )
    assert (debtor.siren, debtor.siret, debtor.vat_number, debtor.iban) == (SIREN, SIRET, VAT, IBAN)


def test_the_siren_is_taken_from_a_french_vat_number() -> None:
    assert clean_debtor(company(vat_number=VAT)).siren == SIREN


def test_a_company_without_identifiers_is_fine_unless_the_mandate_requires_them() -> None:
    assert codes(company()) == []
    assert codes(company(), required=["debtor.siren"]) == [("debtor.siren", "mandate.required")]
    assert codes(company(siret=SIRET), required=["debtor.siret"]) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"siren": "123456789"}, [("debtor.siren", "siren.checksum")]),
        ({"siren": "12345"}, [("debtor.siren", "siren.format")]),
        ({"siret": "73282932000075"}, [("debtor.siret", "siret.checksum")]),
        ({"siret": "7328293200007"}, [("debtor.siret", "siret.format")]),
        ({"siren": "552100554", "siret": SIRET}, [("debtor.siret", "siret.siren_mismatch")]),
        ({"siren": "552100554", "vat_number": VAT}, [("debtor.vat_number", "vat.siren_mismatch")]),
        ({"vat_number": "FR45732829320"}, [("debtor.vat_number", "vat.checksum")]),
        ({"vat_number": "US12"}, [("debtor.vat_number", "vat.country")]),
        ({"iban": "FR7630006000011234567890188"}, [("debtor.iban", "iban.checksum")]),
        ({"iban": "FR76300060000112345678901"}, [("debtor.iban", "iban.length")]),
    ],
)
def test_identifier_refusals(fields: dict[str, str], expected: list[tuple[str, str]]) -> None:
    assert codes(company(**fields)) == expected


def test_a_refusal_quotes_the_value_in_both_languages() -> None:
    _, [error] = validate_claim(company(iban="FR7630006000011234567890188"), today=TODAY)
    en, fr = error.message.split(" / ")
    assert "'FR7630006000011234567890188'" in en
    assert "'FR7630006000011234567890188'" in fr


def test_a_person_may_carry_an_iban() -> None:
    assert clean_debtor(claim(iban=IBAN)).iban == IBAN
    assert codes(claim(iban="DE8937040044053201300")) == [("debtor.iban", "iban.length")]


# --- postcodes per country ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "postcode", "stored"),
    [("FR", "33000", "33000"), ("BE", "1000", "1000"), ("NL", "1012ab", "1012 AB"), ("GB", "sw1a 1aa", "SW1A 1AA"),
     ("LU", "L-1009", "1009"), ("CH", "8001", "8001"), ("US", "90210", "90210")],
)  # fmt: skip
def test_postcode_accepted_per_country_and_stored_canonical(country: str, postcode: str, stored: str) -> None:
    debtor = clean_debtor(claim(country=country, postcode=postcode, phone=""))
    assert debtor.postcode == stored


@pytest.mark.parametrize(
    ("country", "postcode"),
    [("FR", "3300"), ("BE", "10000"), ("DE", "1011"), ("ES", "53001"), ("IT", "ABCDE"), ("NL", "1012"),
     ("GB", "12345"), ("CH", "08001"), ("LU", "L-100")],
)  # fmt: skip
def test_postcode_refused_per_country(country: str, postcode: str) -> None:
    assert codes(claim(country=country, postcode=postcode, phone="")) == [("debtor.postcode", "postcode.invalid")]


def test_postcode_is_still_required() -> None:
    assert codes(claim(postcode="")) == [("debtor.postcode", "required")]


# --- dates ----------------------------------------------------------------------------------------------


def test_a_due_date_more_than_a_year_ahead_is_a_typo() -> None:
    data = replace(claim(), due_date=TODAY + timedelta(days=367))
    assert codes(data) == [("due_date", "date.too_far")]
    assert codes(replace(claim(), due_date=TODAY + timedelta(days=300))) == []  # pre-due reminders (mode A)


def test_date_rules_still_hold() -> None:
    assert codes(replace(claim(), due_date=TODAY - timedelta(days=41))) == [("due_date", "due_date.before_invoice")]
    assert codes(replace(claim(), invoice_date=TODAY + timedelta(days=1), due_date=TODAY + timedelta(days=2))) == [
        ("invoice_date", "date.future")
    ]
    assert codes(replace(claim(), invoice_date=date(2010, 1, 1), due_date=date(2010, 2, 1))) == [
        ("invoice_date", "date.too_old")
    ]


# --- required fields per the creditor's mandate ---------------------------------------------------------


def test_the_mandate_s_required_fields_are_checked_when_empty() -> None:
    data = claim(phone="", email="")
    required = ["debtor.phone", "debtor.email", "description"]
    assert codes(data, required=required) == [
        ("debtor.phone", "mandate.required"),
        ("debtor.email", "mandate.required"),
        ("description", "mandate.required"),
    ]
    _, errors = validate_claim(data, today=TODAY, required=["debtor.phone"])
    assert errors[0].message == (
        "The creditor's mandate requires the phone number, and it is empty / "
        "Le mandat du créancier exige le numéro de téléphone, qui est vide"
    )


def test_company_identifiers_are_not_required_of_people_nor_first_names_of_companies() -> None:
    assert codes(claim(), required=["debtor.siren", "debtor.siret", "debtor.vat_number"]) == []
    assert codes(company(first_name=""), required=["debtor.first_name"]) == []
    assert codes(claim(first_name=""), required=["debtor.first_name"]) == [("debtor.first_name", "mandate.required")]


def test_a_field_given_satisfies_the_mandate() -> None:
    given = company(siren=SIREN, siret=SIRET, vat_number=VAT, iban=IBAN)
    assert codes(given, required=list(REQUIRABLE)) == [("description", "mandate.required")]


def test_requirable_fields_are_the_same_in_the_mandate_and_in_intake() -> None:
    assert [name for name, _label in REQUIRABLE_FIELDS] == list(REQUIRABLE)
    assert set(REQUIRABLE) <= set(FIELDS)


def test_a_siren_requirement_is_met_by_a_siret_or_french_vat_and_not_asked_abroad() -> None:
    assert codes(company(siret=SIRET), required=["debtor.siren"]) == []
    assert codes(company(vat_number=VAT), required=["debtor.siren"]) == []
    belgian = company(country="BE", postcode="1000", phone="+32 2 555 12 12")
    assert codes(belgian, required=["debtor.siren", "debtor.siret"]) == []
    assert codes(belgian, required=["debtor.vat_number"]) == [("debtor.vat_number", "mandate.required")]
    assert clean_debtor(replace(belgian, debtor=replace(belgian.debtor, vat_number="0403.170.701"))).vat_number == (
        "BE0403170701"
    )
