"""Money as integer minor units plus an ISO 4217 currency (invariant 1: never floats).

Pure module: no Django import. ``Decimal`` appears only at the edges (parsing and formatting).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision

# ISO 4217 minor units for the currencies we accept; babel knows the rest of the table.
_SUPPORTED = frozenset({"EUR", "GBP", "USD", "CHF", "SEK", "DKK", "PLN", "CZK", "NOK", "JPY"})


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def minor_digits(currency: str) -> int:
    """Number of decimals of a currency's minor unit (EUR 2, JPY 0)."""
    if currency not in _SUPPORTED:
        raise MoneyError("currency.unsupported", f"Unsupported currency {currency!r}.")
    return _precision(currency)


@functools.cache  # babel looks it up in its locale data on each call: once per currency
def _precision(currency: str) -> int:
    return int(get_currency_precision(currency))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of one ISO 4217 currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError("amount.type", "Money.minor must be an int (minor units).")
        minor_digits(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str | int | Decimal, currency: str) -> Money:
        """Read a decimal amount in major units ("12.50", "12,50", Decimal) exactly.

        Refuses more decimals than the currency has (12.505 EUR is an error, not a rounding).
        """
        digits = minor_digits(currency)
        if isinstance(text, int):
            value = Decimal(text)
        elif isinstance(text, Decimal):
            value = text
        else:
            cleaned = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
            try:
                value = Decimal(cleaned)
            except InvalidOperation:
                raise MoneyError("amount.invalid", f"{text!r} is not an amount.") from None
        if not value.is_finite():
            raise MoneyError("amount.invalid", f"{text!r} is not an amount.")
        scaled = value.scaleb(digits)
        if scaled != scaled.to_integral_value():
            raise MoneyError(
                "amount.too_many_decimals",
                f"{text} has more than {digits} decimals for {currency}.",
            )
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-minor_digits(self.currency))

    def format(self, locale: str = "fr_FR") -> str:
        """Human text in the reader's locale: ``12,50 €`` in French, ``€12.50`` in English."""
        return str(format_currency(self.to_decimal(), self.currency, locale=locale))

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError("currency.mismatch", f"Cannot combine {self.currency} with {other.currency}.")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.minor <= other.minor

    def is_zero(self) -> bool:
        return self.minor == 0

    def percent(self, rate: Decimal) -> Money:
        """``rate`` percent of this amount, rounded half-even to the minor unit."""
        value = (Decimal(self.minor) * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return Money(int(value), self.currency)

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"
