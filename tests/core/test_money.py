"""Money as integer minor units plus an ISO 4217 currency (DESIGN invariant 1: never floats).

Unit tests and Hypothesis properties for the pure ``relance.core.money`` module: no database.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.core.money import Money, MoneyError, minor_digits

CURRENCIES = ["EUR", "GBP", "USD", "CHF", "SEK", "DKK", "PLN", "CZK", "NOK", "JPY"]

minor_units = st.integers(min_value=-(10**15), max_value=10**15)
currencies = st.sampled_from(CURRENCIES)


def _plain(text: str) -> str:
    """Babel's French output uses no-break spaces; compare on ordinary spaces."""
    return text.replace("\u202f", " ").replace("\u00a0", " ")


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["12.50", "12,50", "12.5", "12,5", " 12,50 ", "12.500", Decimal("12.50"), Decimal("12.5")],
)
def test_parse_reads_major_units_exactly(source: str | Decimal) -> None:
    assert Money.parse(source, "EUR") == Money(1250, "EUR")


def test_parse_accepts_french_thousand_separators() -> None:
    assert Money.parse("1 234,56", "EUR") == Money(123456, "EUR")
    assert Money.parse("1\u00a0234,56", "EUR") == Money(123456, "EUR")


def test_parse_of_an_int_is_whole_major_units() -> None:
    assert Money.parse(12, "EUR") == Money(1200, "EUR")
    assert Money.parse(12, "JPY") == Money(12, "JPY")


def test_parse_never_goes_through_float() -> None:
    # 0.1 + 0.2 is not 0.3 in binary floating point; in minor units it must be exact.
    assert Money.parse("0.10", "EUR") + Money.parse("0.20", "EUR") == Money.parse("0.30", "EUR")
    assert Money.parse("19.99", "EUR").minor == 1999


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.505", "EUR"), ("12,505", "EUR"), ("0.001", "USD"), (Decimal("1.234"), "GBP"), ("100.5", "JPY")],
)
def test_parse_refuses_more_decimals_than_the_currency_has(text: str | Decimal, currency: str) -> None:
    # 12.505 EUR is an error, not a rounding.
    with pytest.raises(MoneyError) as info:
        Money.parse(text, currency)
    assert info.value.code == "amount.too_many_decimals"
    assert currency in str(info.value)


def test_jpy_has_no_minor_unit() -> None:
    assert minor_digits("JPY") == 0
    assert minor_digits("EUR") == 2
    assert Money.parse("1500", "JPY") == Money(1500, "JPY")
    with pytest.raises(MoneyError) as info:
        Money.parse("1500,1", "JPY")
    assert info.value.code == "amount.too_many_decimals"


@pytest.mark.parametrize("text", ["", "abc", "12.50€", "1,234.50", "NaN", "Infinity", "--1"])
def test_parse_refuses_text_that_is_not_an_amount(text: str) -> None:
    with pytest.raises(MoneyError) as info:
        Money.parse(text, "EUR")
    assert info.value.code == "amount.invalid"


def test_parse_refuses_a_non_finite_decimal() -> None:
    with pytest.raises(MoneyError) as info:
        Money.parse(Decimal("Infinity"), "EUR")
    assert info.value.code == "amount.invalid"


@pytest.mark.parametrize("currency", ["XYZ", "eur", "", "BTC"])
def test_unsupported_currency_is_refused(currency: str) -> None:
    with pytest.raises(MoneyError) as info:
        Money.parse("1.00", currency)
    assert info.value.code == "currency.unsupported"
    with pytest.raises(MoneyError) as info:
        Money(100, currency)
    assert info.value.code == "currency.unsupported"


@pytest.mark.parametrize("minor", [1.5, 12.0, Decimal(12), "12", True])
def test_minor_units_must_be_a_plain_int(minor: object) -> None:
    with pytest.raises(MoneyError) as info:
        Money(minor, "EUR")  # type: ignore[arg-type]
    assert info.value.code == "amount.type"


def test_money_error_is_a_value_error() -> None:
    # Callers that only know ValueError (form cleaning, pydantic validators) still catch it.
    with pytest.raises(ValueError, match="not an amount"):
        Money.parse("abc", "EUR")


# --- arithmetic ----------------------------------------------------------------------------------


def test_add_and_subtract_in_minor_units() -> None:
    assert Money(1250, "EUR") + Money(75, "EUR") == Money(1325, "EUR")
    assert Money(1250, "EUR") - Money(1300, "EUR") == Money(-50, "EUR")
    assert -Money(1250, "EUR") == Money(-1250, "EUR")


@pytest.mark.parametrize("operation", ["add", "sub", "lt", "le"])
def test_different_currencies_do_not_combine(operation: str) -> None:
    eur, usd = Money(100, "EUR"), Money(100, "USD")
    ops = {
        "add": lambda: eur + usd,
        "sub": lambda: eur - usd,
        "lt": lambda: eur < usd,
        "le": lambda: eur <= usd,
    }
    with pytest.raises(MoneyError) as info:
        ops[operation]()
    assert info.value.code == "currency.mismatch"
    assert "EUR" in str(info.value)
    assert "USD" in str(info.value)


def test_money_does_not_combine_with_a_bare_number() -> None:
    with pytest.raises(TypeError):
        Money(100, "EUR") + 1  # type: ignore[operator]


def test_comparisons_within_one_currency() -> None:
    assert Money(99, "EUR") < Money(100, "EUR")
    assert not Money(100, "EUR") < Money(100, "EUR")
    assert Money(100, "EUR") <= Money(100, "EUR")
    assert Money.zero("EUR").is_zero()
    assert not Money(1, "EUR").is_zero()


def test_money_is_immutable() -> None:
    amount = Money(100, "EUR")
    with pytest.raises(AttributeError):
        amount.minor = 200  # type: ignore[misc]


# --- percent -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "rate", "expected"),
    [
        (5, "10", 0),  # 0.5 -> 0 (half to even)
        (15, "10", 2),  # 1.5 -> 2
        (25, "10", 2),  # 2.5 -> 2
        (35, "10", 4),  # 3.5 -> 4
        (-25, "10", -2),  # -2.5 -> -2
        (10000, "3.5", 350),
        (12345, "10", 1234),  # 1234.5 -> 1234
        (12355, "10", 1236),  # 1235.5 -> 1236
        (1001, "33.3333", 334),  # 333.66... -> 334 (not a tie)
    ],
)
def test_percent_rounds_half_to_even(minor: int, rate: str, expected: int) -> None:
    assert Money(minor, "EUR").percent(Decimal(rate)) == Money(expected, "EUR")


def test_percent_keeps_the_currency() -> None:
    assert Money(1000, "JPY").percent(Decimal("7.5")) == Money(75, "JPY")


# --- formatting ----------------------------------------------------------------------------------


def test_format_french_and_british() -> None:
    amount = Money(1250, "EUR")
    assert _plain(amount.format("fr_FR")) == "12,50 €"
    assert amount.format("en_GB") == "€12.50"
    assert _plain(amount.format()) == "12,50 €"  # French is the default reader


def test_format_groups_thousands_by_locale() -> None:
    amount = Money(123456789, "EUR")
    assert _plain(amount.format("fr_FR")) == "1 234 567,89 €"
    assert amount.format("en_GB") == "€1,234,567.89"


def test_format_negative_and_other_currencies() -> None:
    assert _plain(Money(-1250, "EUR").format("fr_FR")) == "-12,50 €"
    assert Money(-1250, "EUR").format("en_GB") == "-€12.50"
    assert Money(1250, "GBP").format("en_GB") == "£12.50"
    # JPY has no minor unit: 1250 minor units are 1,250 yen, never 12.50.
    assert "1,250" in Money(1250, "JPY").format("en_GB")
    assert "." not in Money(1250, "JPY").format("en_GB")


def test_str_shows_the_exact_decimal_and_currency() -> None:
    assert str(Money(1250, "EUR")) == "12.50 EUR"
    assert str(Money(1250, "JPY")) == "1250 JPY"


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=200)
@given(minor=minor_units, currency=currencies)
def test_property_parse_of_to_decimal_round_trips(minor: int, currency: str) -> None:
    amount = Money(minor, currency)
    assert Money.parse(amount.to_decimal(), currency) == amount
    text = str(amount.to_decimal())
    assert Money.parse(text, currency) == amount
    assert Money.parse(text.replace(".", ","), currency) == amount


@settings(max_examples=200)
@given(a=minor_units, b=minor_units, currency=currencies)
def test_property_add_and_sub_are_inverse(a: int, b: int, currency: str) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y) - y == x
    assert (x - y) + y == x
    assert x + y == y + x
    assert x - x == Money.zero(currency)
    assert x + -y == x - y


@settings(max_examples=200)
@given(minor=minor_units, currency=currencies, extra=st.integers(min_value=1, max_value=9))
def test_property_one_decimal_too_many_is_always_refused(minor: int, currency: str, extra: int) -> None:
    # Append one non-zero digit beyond the currency's minor unit: never silently rounded.
    digits = minor_digits(currency)
    value = Decimal(minor).scaleb(-digits) + Decimal(extra).scaleb(-(digits + 1)) * (1 if minor >= 0 else -1)
    with pytest.raises(MoneyError) as info:
        Money.parse(value, currency)
    assert info.value.code == "amount.too_many_decimals"


@settings(max_examples=200)
@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    rate=st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False),
)
def test_property_percent_is_within_half_a_minor_unit(minor: int, rate: Decimal) -> None:
    exact = Decimal(minor) * rate / 100
    result = Money(minor, "EUR").percent(rate).minor
    assert abs(Decimal(result) - exact) <= Decimal("0.5")
    if abs(Decimal(result) - exact) == Decimal("0.5"):
        assert result % 2 == 0  # ties go to the even neighbour
