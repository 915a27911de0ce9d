"""Allocation of a payment over ordered buckets (pure).

The caller orders buckets by the jurisdiction's rule (C. civ. 1343-1: interest before principal;
1342-10: the oldest due first). Overpayment is returned as a remainder, never silently kept.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.ledger.allocate import Allocation, allocate

BUCKETS = [("interest", 300), ("fees", 4000), ("principal", 12050)]


def test_full_payment_fills_every_bucket_in_order() -> None:
    allocations, remainder = allocate(16350, BUCKETS)
    assert allocations == [Allocation("interest", 300), Allocation("fees", 4000), Allocation("principal", 12050)]
    assert remainder == 0


def test_partial_payment_goes_to_interest_first() -> None:
    # C. civ. 1343-1: a partial payment goes first to interest, then to the principal.
    allocations, remainder = allocate(1000, BUCKETS)
    assert allocations == [Allocation("interest", 300), Allocation("fees", 700)]
    assert remainder == 0


def test_partial_payment_smaller_than_the_first_bucket() -> None:
    allocations, remainder = allocate(120, BUCKETS)
    assert allocations == [Allocation("interest", 120)]
    assert remainder == 0


def test_overpayment_returns_the_excess_as_remainder() -> None:
    allocations, remainder = allocate(20000, BUCKETS)
    assert [a.amount for a in allocations] == [300, 4000, 12050]
    assert remainder == 20000 - 16350


def test_zero_payment_allocates_nothing() -> None:
    assert allocate(0, BUCKETS) == ([], 0)


def test_no_buckets_leaves_everything_as_remainder() -> None:
    assert allocate(500, []) == ([], 500)


def test_closed_and_credit_buckets_are_skipped() -> None:
    allocations, remainder = allocate(500, [("old", 0), ("credit_note", -200), ("new", 400)])
    assert allocations == [Allocation("new", 400)]
    assert remainder == 100


@pytest.mark.parametrize("amount", [-1, -16350])
def test_negative_amount_is_refused(amount: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        allocate(amount, BUCKETS)


# --- properties ----------------------------------------------------------------------------------

bucket_lists = st.lists(st.integers(min_value=-1000, max_value=10**6), max_size=8).map(
    lambda opens: [(f"b{i}", open_amount) for i, open_amount in enumerate(opens)]
)


def _filled(buckets: list[tuple[str, int]], allocations: list[Allocation]) -> list[int]:
    """Amount put into each bucket, by position (keys are unique in the generated buckets)."""
    by_key = {a.key: a.amount for a in allocations}
    return [by_key.get(key, 0) for key, _ in buckets]


@settings(max_examples=200)
@given(amount=st.integers(min_value=0, max_value=3 * 10**6), buckets=bucket_lists)
def test_property_allocation_conserves_money(amount: int, buckets: list[tuple[str, int]]) -> None:
    allocations, remainder = allocate(amount, buckets)
    assert sum(a.amount for a in allocations) + remainder == amount
    assert remainder >= 0
    assert all(a.amount > 0 for a in allocations)
    assert len({a.key for a in allocations}) == len(allocations)


@settings(max_examples=200)
@given(amount=st.integers(min_value=0, max_value=3 * 10**6), buckets=bucket_lists)
def test_property_no_bucket_is_over_filled(amount: int, buckets: list[tuple[str, int]]) -> None:
    allocations, _ = allocate(amount, buckets)
    for (_, open_amount), filled in zip(buckets, _filled(buckets, allocations), strict=True):
        assert 0 <= filled <= max(open_amount, 0)


@settings(max_examples=200)
@given(amount=st.integers(min_value=0, max_value=3 * 10**6), buckets=bucket_lists)
def test_property_order_is_respected(amount: int, buckets: list[tuple[str, int]]) -> None:
    allocations, _ = allocate(amount, buckets)
    filled = _filled(buckets, allocations)
    # Allocations are listed in bucket order.
    keys = [key for key, _ in buckets]
    assert [a.key for a in allocations] == sorted((a.key for a in allocations), key=keys.index)
    # A later bucket gets money only if every earlier one is full.
    for later, amount_in in enumerate(filled):
        if amount_in > 0:
            for earlier in range(later):
                assert filled[earlier] == max(buckets[earlier][1], 0)


@settings(max_examples=200)
@given(amount=st.integers(min_value=0, max_value=3 * 10**6), buckets=bucket_lists)
def test_property_remainder_only_when_all_buckets_are_full(amount: int, buckets: list[tuple[str, int]]) -> None:
    allocations, remainder = allocate(amount, buckets)
    total_open = sum(max(open_amount, 0) for _, open_amount in buckets)
    if remainder > 0:
        assert _filled(buckets, allocations) == [max(open_amount, 0) for _, open_amount in buckets]
    assert remainder == max(amount - total_open, 0)


@settings(max_examples=100)
@given(amount=st.integers(max_value=-1), buckets=bucket_lists)
def test_property_any_negative_amount_is_refused(amount: int, buckets: list[tuple[str, int]]) -> None:
    with pytest.raises(ValueError, match="negative"):
        allocate(amount, buckets)
