"""Pure balance check of ledger lines (DESIGN invariant 1: every ledger transaction balances).

The same rule the PostgreSQL deferred trigger enforces at commit; this validator also runs on SQLite.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.core.errors import UnbalancedTransactionError, ValidationError
from relance.ledger.balance import Line, check_balanced


def test_payment_balances() -> None:
    # A payment of 120.50 EUR: cash in, the debtor's receivable down.
    check_balanced([Line.dr("bank", 12050, "EUR"), Line.cr("debtor:1", 12050, "EUR")])


def test_split_posting_balances() -> None:
    # A remittance: the payment is split between the creditor and the agency's commission.
    check_balanced(
        [
            Line.dr("clearing", 10000, "EUR"),
            Line.cr("creditor:7", 8500, "EUR"),
            Line.cr("commission", 1500, "EUR"),
        ]
    )


def test_generator_input_is_accepted() -> None:
    check_balanced(line for line in [Line.dr("a", 1, "EUR"), Line.cr("b", 1, "EUR")])


def test_unbalanced_raises_naming_the_currency_and_difference() -> None:
    with pytest.raises(UnbalancedTransactionError) as info:
        check_balanced([Line.dr("bank", 12050, "EUR"), Line.cr("debtor:1", 12000, "EUR")])
    assert info.value.fields["difference"] == {"EUR": 50}
    assert "EUR +50" in str(info.value)
    assert info.value.code == "ledger.unbalanced"


def test_unbalanced_on_the_credit_side_is_negative() -> None:
    with pytest.raises(UnbalancedTransactionError) as info:
        check_balanced([Line.dr("bank", 100, "EUR"), Line.cr("debtor:1", 130, "EUR")])
    assert info.value.fields["difference"] == {"EUR": -30}
    assert "EUR -30" in str(info.value)


def test_unbalanced_is_a_validation_error() -> None:
    # The API renders it as 422 like any other invalid input.
    with pytest.raises(ValidationError):
        check_balanced([Line.dr("a", 2, "EUR"), Line.cr("b", 1, "EUR")])


def test_a_single_line_is_refused() -> None:
    with pytest.raises(UnbalancedTransactionError, match="at least two"):
        check_balanced([Line.dr("bank", 100, "EUR")])


def test_no_lines_are_refused() -> None:
    with pytest.raises(UnbalancedTransactionError):
        check_balanced([])


@pytest.mark.parametrize(
    "bad",
    [
        Line("x", "EUR", debit=100, credit=100),  # both sides
        Line("x", "EUR", debit=100, credit=1),  # both sides, different amounts
        Line("x", "EUR", debit=0, credit=0),  # zero
        Line("x", "EUR", debit=-100),  # negative debit
        Line("x", "EUR", credit=-100),  # negative credit
        Line("x", "EUR", debit=-100, credit=100),  # negative debit passing as a credit
    ],
    ids=["both", "both-uneven", "zero", "neg-debit", "neg-credit", "neg-and-pos"],
)
def test_a_line_needs_exactly_one_positive_side(bad: Line) -> None:
    # A negative credit would let a debit hide as a credit; the ledger keeps separate positive columns.
    with pytest.raises(ValidationError, match="exactly one positive side") as info:
        check_balanced([bad, Line.dr("y", 100, "EUR"), Line.cr("z", 100, "EUR")])
    assert not isinstance(info.value, UnbalancedTransactionError)
    assert info.value.fields["account"] == "x"


@pytest.mark.parametrize("amount", [1.5, 100.0, True])
def test_amounts_must_be_integer_minor_units(amount: object) -> None:
    with pytest.raises(ValidationError, match="integers"):
        check_balanced([Line.dr("a", amount, "EUR"), Line.cr("b", 100, "EUR")])  # type: ignore[arg-type]


def test_multi_currency_balances_per_currency() -> None:
    check_balanced(
        [
            Line.dr("bank:eur", 1000, "EUR"),
            Line.cr("debtor:1", 1000, "EUR"),
            Line.dr("bank:usd", 700, "USD"),
            Line.cr("debtor:2", 700, "USD"),
        ]
    )


def test_multi_currency_does_not_net_across_currencies() -> None:
    # 1000 EUR in and 1000 USD out is not balanced, whatever the totals look like.
    with pytest.raises(UnbalancedTransactionError) as info:
        check_balanced([Line.dr("bank", 1000, "EUR"), Line.cr("debtor:1", 1000, "USD")])
    assert info.value.fields["difference"] == {"EUR": 1000, "USD": -1000}


def test_multi_currency_names_only_the_currency_that_is_off() -> None:
    with pytest.raises(UnbalancedTransactionError) as info:
        check_balanced(
            [
                Line.dr("bank:eur", 1000, "EUR"),
                Line.cr("debtor:1", 1000, "EUR"),
                Line.dr("bank:usd", 700, "USD"),
                Line.cr("debtor:2", 650, "USD"),
            ]
        )
    assert info.value.fields["difference"] == {"USD": 50}
    assert "EUR" not in str(info.value)


# --- properties ----------------------------------------------------------------------------------


@st.composite
def balanced_lines(draw: st.DrawFn) -> list[Line]:
    """A balanced transaction: per currency, debits split one total and credits split it another way."""
    lines: list[Line] = []
    for currency in draw(st.lists(st.sampled_from(["EUR", "USD", "GBP", "JPY"]), min_size=1, max_size=3, unique=True)):
        total = draw(st.integers(min_value=1, max_value=10**9))
        for side in ("dr", "cr"):
            parts = draw(st.integers(min_value=1, max_value=min(5, total)))
            cuts = sorted(
                draw(st.lists(st.integers(1, total - 1), min_size=parts - 1, max_size=parts - 1, unique=True))
                if total > 1
                else []
            )
            bounds = [0, *cuts, total]
            for n, (low, high) in enumerate(pairwise(bounds)):
                lines.append(getattr(Line, side)(f"{side}:{currency}:{n}", high - low, currency))
    return draw(st.permutations(lines))


@settings(max_examples=200)
@given(lines=balanced_lines())
def test_property_any_balanced_set_passes(lines: list[Line]) -> None:
    check_balanced(lines)


@settings(max_examples=200)
@given(lines=balanced_lines(), data=st.data())
def test_property_perturbing_one_amount_fails(lines: list[Line], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(lines) - 1))
    line = lines[index]
    amount = line.debit or line.credit
    delta = data.draw(st.integers(-(amount - 1), 10**6).filter(lambda d: d != 0))
    if line.debit:
        changed = Line.dr(line.account, line.debit + delta, line.currency)
        expected = delta
    else:
        changed = Line.cr(line.account, line.credit + delta, line.currency)
        expected = -delta
    perturbed = [*lines[:index], changed, *lines[index + 1 :]]
    with pytest.raises(UnbalancedTransactionError) as info:
        check_balanced(perturbed)
    assert info.value.fields["difference"] == {line.currency: expected}
