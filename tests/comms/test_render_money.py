"""Amounts in messages: ``render.money_text`` writes what ``Money.format`` writes (issue 4, speed).

``money_text`` reads each (currency, locale)'s shape once from babel's own output and then formats
integer minor units itself; these tests hold it to babel's text for every supported currency in both
message languages, negative amounts and zero included.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.comms.render import money_text
from relance.core.money import Money, MoneyError

CURRENCIES = ["EUR", "GBP", "USD", "CHF", "SEK", "DKK", "PLN", "CZK", "NOK", "JPY"]


@settings(max_examples=400, deadline=None)
@given(
    minor=st.one_of(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=-1000, max_value=1000)),
    currency=st.sampled_from(CURRENCIES),
    locale=st.sampled_from(["fr_FR", "en_GB"]),
)
def test_money_text_is_money_format(minor: int, currency: str, locale: str):
    assert money_text(minor, currency, locale) == Money(minor, currency).format(locale)


def test_edges_and_an_unsupported_currency():
    for minor in (0, 1, 9, 10, 99, 100, 999, 1000, 99999, 100000, 123456789, -1, -100, -123456789):
        for currency in CURRENCIES:
            for locale in ("fr_FR", "en_GB"):
                assert money_text(minor, currency, locale) == Money(minor, currency).format(locale)
    with pytest.raises(MoneyError):
        money_text(100, "XYZ", "fr_FR")
