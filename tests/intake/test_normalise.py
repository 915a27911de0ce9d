"""The cheap e-mail normalisation gives exactly what email_validator gives.

Intake speed (issue 3) must not change a single validation result: Hypothesis throws addresses
built from the characters that matter (dots, hyphens, quotes, digits, accents, IDN labels) at both.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relance.intake.normalise import _domain, email_full, email_normalise

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
    _domain.cache_clear()
    assert email_normalise(text) == email_full(text)


@given(st.sampled_from(["Jean.Dupont@Exemple.FR", "x@exemple.fr", "A.b-c+d@sous.domaine.example.com"]))
def test_email_normalise_matches_email_validator_on_common_addresses(text: str) -> None:
    assert email_normalise(text) == email_full(text)
    assert email_normalise(text) == email_full(text)  # with the domain's cached answer
