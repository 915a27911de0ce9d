"""The cheap e-mail/phone normalisation gives exactly what email_validator and phonenumbers give.

Intake speed (issue 3) must not change a single validation result: Hypothesis throws addresses
built from the characters that matter (dots, hyphens, quotes, digits, accents, IDN labels) at both.
"""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.intake.normalise import email_full, email_normalise, phone_normalise

_LOCAL_CHARS = "aZ09._-+!#'\"é @"
_DOMAIN_CHARS = "aZ09.-é"
_TLDS = ["fr", "FR", "com", "test", "local", "invalid", "1fr", "123", "c", "xn--bcher-kva", "arpa", ""]


@st.composite
def addresses(draw: st.DrawFn) -> str:
    local = draw(st.text(alphabet=_LOCAL_CHARS, max_size=12))
    labels = draw(st.lists(st.text(alphabet=_DOMAIN_CHARS, max_size=8), max_size=3))
    tld = draw(st.sampled_from(_TLDS))
    return f"{local}@{'.'.join([*labels, tld])}"


@settings(max_examples=600)
@given(addresses())
def test_email_normalise_matches_email_validator(text: str) -> None:
    email_normalise.cache_clear()
    assert email_normalise(text) == email_full(text)


@given(st.sampled_from(["Jean.Dupont@Exemple.FR", "x@exemple.fr", "A.b-c+d@sous.domaine.example.com"]))
def test_email_normalise_matches_email_validator_on_common_addresses(text: str) -> None:
    assert email_normalise(text) == email_full(text)
    assert email_normalise(text) == email_full(text)  # the cached answer too


def _reference_phone(text: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@given(st.text(alphabet="0123456789 +.-()x", max_size=18), st.sampled_from(["FR", "BE", "DE", "ZZ"]))
def test_phone_normalise_matches_phonenumbers(text: str, region: str) -> None:
    assert phone_normalise(text, region) == _reference_phone(text, region)
