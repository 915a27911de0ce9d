"""IBAN, SIREN, SIRET, VAT numbers and postcodes (intake issue, validation): accepted and refused cases.

Hypothesis builds valid identifiers from their published algorithms (Luhn for SIREN/SIRET, ISO 7064
mod 97-10 for IBANs, the French clé RIB and VAT key) and checks that one changed digit is caught.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from relance.intake.identifiers import (
    POSTCODE_FORMATS,
    iban_check,
    postcode_check,
    siren_check,
    siret_check,
    vat_check,
    vat_siren,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def luhn_complete(body: str) -> str:
    """``body`` followed by the Luhn check digit that makes it valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def mod97_check_digits(country: str, bban: str) -> str:
    rearranged = "".join(str(int(c, 36)) for c in bban + country) + "00"
    return f"{98 - int(rearranged) % 97:02d}"


def french_iban(bank: str, branch: str, account: str) -> str:
    """A French IBAN with a correct clé RIB (97 - (89·bank + 15·branch + 3·account) mod 97)."""
    key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
    bban = f"{bank}{branch}{account}{key:02d}"
    return f"FR{mod97_check_digits('FR', bban)}{bban}"


def change_one_digit(value: str, position: int, new: str) -> str:
    places = [i for i, c in enumerate(value) if c.isdigit()]
    i = places[position % len(places)]
    assume(value[i] != new)
    return value[:i] + new + value[i + 1 :]


def grouped(value: str, size: int = 3) -> str:
    return " ".join(value[i : i + size] for i in range(0, len(value), size))


# --- SIREN and SIRET ------------------------------------------------------------------------------------


@given(body=st.text(alphabet="0123456789", min_size=8, max_size=8), pos=st.integers(0, 8), digit=digits)
def test_a_luhn_valid_siren_passes_and_one_changed_digit_fails(body: str, pos: int, digit: str) -> None:
    siren = luhn_complete(body)
    assert siren_check(grouped(siren)) == (siren, None)
    _, problem = siren_check(change_one_digit(siren, pos, digit))
    assert problem is not None
    assert problem.code == "siren.checksum"


@given(
    siren_body=st.text(alphabet="0123456789", min_size=8, max_size=8),
    establishment=st.text(alphabet="0123456789", min_size=4, max_size=4),
    pos=st.integers(0, 13),
    digit=digits,
)
def test_a_luhn_valid_siret_passes_and_one_changed_digit_fails(
    siren_body: str, establishment: str, pos: int, digit: str
) -> None:
    siren = luhn_complete(siren_body)  # a SIRET is a valid SIREN, 4 digits and its own Luhn digit
    assume(siren != "356000000")  # La Poste's establishments use another rule (tested below)
    siret = luhn_complete(siren + establishment)
    assert siret_check(siret) == (siret, None)
    _, problem = siret_check(change_one_digit(siret, pos, digit))
    assert problem is not None
    assert problem.code == "siret.checksum"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("732 829 320", ("732829320", None)),
        ("732.829.320", ("732829320", None)),
        ("356000000", ("356000000", None)),  # La Poste
    ],
)
def test_siren_accepts(value: str, expected: tuple[str, None]) -> None:
    assert siren_check(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [("123456789", "siren.checksum"), ("12345678", "siren.format"), ("73282932A", "siren.format")],
)
def test_siren_refuses_with_both_languages_and_the_value(value: str, code: str) -> None:
    normalised, problem = siren_check(value)
    assert normalised == ""
    assert problem is not None
    assert problem.code == code
    assert repr(value) in problem.en
    assert repr(value) in problem.fr
    assert problem.message == f"{problem.en} / {problem.fr}"


def test_siret_accepts_la_poste_and_refuses_bad_lengths() -> None:
    assert siret_check("356 000 000 00048") == ("35600000000048", None)  # La Poste: digit sum divisible by 5
    assert siret_check("732 829 320 00074") == ("73282932000074", None)
    assert siret_check("7328293200007")[1].code == "siret.format"  # type: ignore[union-attr]


# --- VAT numbers ----------------------------------------------------------------------------------------


@given(body=st.text(alphabet="0123456789", min_size=8, max_size=8), key_digit=st.integers(0, 1), digit=digits)
def test_a_french_vat_number_built_from_a_siren_passes_and_a_changed_key_fails(
    body: str, key_digit: int, digit: str
) -> None:
    siren = luhn_complete(body)
    key = (12 + 3 * (int(siren) % 97)) % 97
    vat = f"FR{key:02d}{siren}"
    assert vat_check(vat) == (vat, None)
    assert vat_check(f"{key:02d} {grouped(siren)}", "FR") == (vat, None)  # prefix left out: the debtor's country
    assert vat_siren(vat) == siren
    bad_key = list(f"{key:02d}")
    assume(bad_key[key_digit] != digit)
    bad_key[key_digit] = digit
    _, problem = vat_check(f"FR{''.join(bad_key)}{siren}")
    assert problem is not None
    assert problem.code == "vat.checksum"


@pytest.mark.parametrize(
    ("value", "country", "compact"),
    [
        ("FR40303265045", "", "FR40303265045"),
        ("fr 40 303 265 045", "", "FR40303265045"),
        ("BE0403170701", "", "BE0403170701"),
        ("0403.170.701", "BE", "BE0403170701"),
        ("DE136695976", "", "DE136695976"),
        ("EL094259216", "", "EL094259216"),
        ("094259216", "GR", "EL094259216"),  # Greece's VAT prefix is EL
        ("GB980780684", "", "GB980780684"),
        ("CHE-107.787.577 MWST", "", "CHE107787577MWST"),
    ],
)
def test_vat_accepts(value: str, country: str, compact: str) -> None:
    assert vat_check(value, country) == (compact, None)


@pytest.mark.parametrize(
    ("value", "country", "code"),
    [
        ("FR41303265045", "", "vat.checksum"),
        ("FR4030326504", "", "vat.format"),
        ("US123456789", "", "vat.country"),
        ("303265045", "", "vat.country"),  # no prefix and no country to take it from
        ("DE136695977", "", "vat.checksum"),
    ],
)
def test_vat_refuses(value: str, country: str, code: str) -> None:
    normalised, problem = vat_check(value, country)
    assert normalised == ""
    assert problem is not None
    assert problem.code == code
    assert repr(value) in problem.en


def test_vat_siren_only_for_french_numbers() -> None:
    assert vat_siren("FR40303265045") == "303265045"
    assert vat_siren("BE0403170701") == ""
    assert vat_siren("") == ""


# --- IBAN -----------------------------------------------------------------------------------------------


@given(
    bank=st.text(alphabet="0123456789", min_size=5, max_size=5),
    branch=st.text(alphabet="0123456789", min_size=5, max_size=5),
    account=st.text(alphabet="0123456789", min_size=11, max_size=11),
    pos=st.integers(0, 26),
    digit=digits,
)
def test_a_valid_french_iban_passes_and_one_changed_digit_fails(
    bank: str, branch: str, account: str, pos: int, digit: str
) -> None:
    iban = french_iban(bank, branch, account)
    assert iban_check(iban) == (iban, None)
    assert iban_check(grouped(iban, 4).lower()) == (iban, None)  # as printed on a RIB, in any case
    _, problem = iban_check(change_one_digit(iban, pos, digit))
    assert problem is not None
    assert problem.code == "iban.checksum"


@given(bban=st.text(alphabet="0123456789", min_size=18, max_size=18), pos=st.integers(0, 19), digit=digits)
def test_a_valid_german_iban_passes_and_one_changed_digit_fails(bban: str, pos: int, digit: str) -> None:
    iban = f"DE{mod97_check_digits('DE', bban)}{bban}"
    assert iban_check(iban) == (iban, None)
    _, problem = iban_check(change_one_digit(iban, pos, digit))
    assert problem is not None
    assert problem.code == "iban.checksum"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("FR7630006000011234567890188", "iban.checksum"),
        ("FR763000600001123456789018", "iban.length"),
        ("XX7630006000011234567890189", "iban.country"),
        ("pas un iban", "iban.structure"),
    ],
)
def test_iban_refuses(value: str, code: str) -> None:
    normalised, problem = iban_check(value)
    assert normalised == ""
    assert problem is not None
    assert problem.code == code
    assert repr(value) in problem.en
    assert repr(value) in problem.fr


# --- postcodes ------------------------------------------------------------------------------------------

POSTCODES_OK = [
    ("FR", "75002", "75002"),
    ("FR", "97400", "97400"),
    ("FR", " 33 000 ", None),  # spaces inside a French postcode are not a postcode
    ("MC", "98000", "98000"),
    ("BE", "1000", "1000"),
    ("LU", "L-1009", "1009"),
    ("LU", "1009", "1009"),
    ("DE", "10115", "10115"),
    ("ES", "28013", "28013"),
    ("ES", "01001", "01001"),
    ("IT", "00184", "00184"),
    ("NL", "1012ab", "1012 AB"),
    ("NL", "1012 AB", "1012 AB"),
    ("GB", "sw1a1aa", "SW1A 1AA"),
    ("GB", "EC1A 1BB", "EC1A 1BB"),
    ("GB", "M1 1AA", "M1 1AA"),
    ("CH", "8001", "8001"),
    ("AT", "1010", "1010"),
    ("PT", "1000001", "1000-001"),
    ("US", "90210", "90210"),  # no rule for this country: kept as written
]


@pytest.mark.parametrize(("country", "value", "canonical"), POSTCODES_OK)
def test_postcode_formats(country: str, value: str, canonical: str | None) -> None:
    normalised, problem = postcode_check(value, country)
    if canonical is None:
        assert problem is not None
    else:
        assert (normalised, problem) == (canonical, None)


@pytest.mark.parametrize(
    ("country", "value"),
    [
        ("FR", "7500"),
        ("FR", "750021"),
        ("FR", "F-75002"),
        ("BE", "0100"),
        ("BE", "10000"),
        ("LU", "L-10090"),
        ("DE", "1011"),
        ("ES", "53001"),  # no province 53
        ("IT", "0018"),
        ("NL", "0123 AB"),
        ("NL", "1012 SA"),  # never issued
        ("GB", "12345"),
        ("GB", "SW1A"),
        ("CH", "80010"),
    ],
)
def test_postcode_refused_names_the_country_format_and_value(country: str, value: str) -> None:
    normalised, problem = postcode_check(value, country)
    assert normalised == ""
    assert problem is not None
    assert problem.code == "postcode.invalid"
    assert POSTCODE_FORMATS[country].example in problem.en
    assert repr(value) in problem.en
    assert repr(value) in problem.fr


def test_the_issue_s_countries_all_have_a_postcode_rule() -> None:
    assert {"FR", "BE", "LU", "DE", "ES", "IT", "NL", "GB", "CH"} <= set(POSTCODE_FORMATS)
