"""Success-fee computation (ledger.fees, pure): worked examples and Hypothesis properties.

Issue 5: remittance = collected − commission, to the cent, for any fee schedule; the commission of
a case never exceeds what was collected on it; rounding half up to the cent; exact sums.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relance.ledger.fees import (
    CaseCollection,
    FeeRule,
    FeeSchedule,
    FeeScheduleError,
    case_fee,
    percent_of,
    remittance_compute,
    schedule_parse,
)

TIERED = {
    "default_rate": "15",
    "minimum_fee": "5.00",
    "vat_rate": "20",
    "mode": "net",
    "rules": [
        {"segment": "b2b", "rate": "10"},
        {"max_age_days": 90, "max_amount": "100.00", "rate": "20"},
        {"max_age_days": 90, "rate": "12.5"},
        {"min_age_days": 365, "rate": "30"},
    ],
}


def _case(key="RL-1", collected=10000, *, placed=10000, age=30, segment="b2c", before=0, fee_before=0):
    return CaseCollection(key, collected, placed, age, segment, before, fee_before)


def test_rules_match_in_order_by_segment_age_and_amount():
    s = schedule_parse(TIERED)
    assert s.rate_for(segment="b2b", age_days=500, placed_minor=1) == Decimal("10")
    assert s.rate_for(segment="b2c", age_days=10, placed_minor=9999) == Decimal("20")
    assert s.rate_for(segment="b2c", age_days=10, placed_minor=10000) == Decimal("12.5")  # max is exclusive
    assert s.rate_for(segment="b2c", age_days=90, placed_minor=5000) == Decimal("15")  # default
    assert s.rate_for(segment="b2c", age_days=400, placed_minor=5000) == Decimal("30")


def test_worked_example_net_mode():
    s = schedule_parse(TIERED)
    figures = remittance_compute(
        [
            _case("RL-A", 12050, placed=12050, age=40),  # 12.5 % of 120.50 = 15.0625 → 15.06
            _case("RL-B", 3000, placed=8000, age=40),  # 20 % of 30.00 = 6.00
            _case("RL-C", 1000, placed=1000, age=40),  # 20 % = 2.00 < minimum 5.00 → 5.00
        ],
        s,
    )
    assert [line.fee_minor for line in figures.lines] == [1506, 600, 500]
    assert figures.lines[2].minimum_applied
    assert figures.collected_minor == 16050
    assert figures.commission_minor == 2606
    assert figures.vat_minor == 521  # 20 % of 26.06 = 5.212 → 5.21
    assert figures.deducted_minor == 3127
    assert figures.transfer_minor == 16050 - 3127
    assert figures.receivable_minor == 0


def test_gross_mode_transfers_everything_and_invoices_the_fee():
    s = schedule_parse({**TIERED, "mode": "gross"})
    figures = remittance_compute([_case("RL-A", 10000, age=200)], s)
    assert figures.transfer_minor == 10000
    assert figures.deducted_minor == 0
    assert figures.receivable_minor == figures.commission_ttc_minor == 1800


def test_minimum_fee_above_collected_charges_what_was_collected_not_more():
    s = schedule_parse(TIERED)
    fee = case_fee(_case(collected=300, age=10, placed=300), s)
    assert fee.fee_minor == 300  # minimum 5.00, but only 3.00 collected
    # Net mode: the VAT on that fee cannot come out of 3.00 — the rest is invoiced.
    figures = remittance_compute([_case(collected=300, age=10, placed=300)], s)
    assert figures.deducted_minor == 300
    assert figures.transfer_minor == 0
    assert figures.receivable_minor == 60


def test_minimum_fee_is_cumulative_per_case():
    s = schedule_parse(TIERED)
    first = case_fee(_case(collected=1000, age=10, placed=5000), s)  # 20 % = 2.00 → floor 5.00
    assert first.fee_minor == 500
    second = case_fee(_case(collected=1000, age=10, placed=5000, before=1000, fee_before=500), s)
    assert second.fee_minor == 200  # floor already reached: the rate alone
    assert not second.minimum_applied


def test_chargeback_carries_no_commission():
    s = schedule_parse(TIERED)
    fee = case_fee(_case(collected=-5000), s)
    assert fee.fee_minor == 0


def test_rounding_is_half_up_to_the_cent():
    assert percent_of(5, Decimal("10")) == 1  # 0.5 cent → 1
    assert percent_of(15, Decimal("10")) == 2  # 1.5 → 2 (half up, not half even)
    assert percent_of(14, Decimal("10")) == 1


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, "default_rate"),
        ({"default_rate": "101"}, "default_rate"),
        ({"default_rate": "abc"}, "default_rate"),
        ({"default_rate": 12.5}, "default_rate"),  # a float is refused: write "12.5"
        ({"default_rate": "12.3456"}, "default_rate"),
        ({"default_rate": "10", "vat_rate": "5.555"}, "vat_rate"),
        ({"default_rate": "10", "mode": "half"}, "mode"),
        ({"default_rate": "10", "minimum_fee": "5.001"}, "minimum_fee"),
        ({"default_rate": "10", "rules": [{"rate": "5", "segment": "b2g"}]}, "rules[0].segment"),
        (
            {"default_rate": "10", "rules": [{"rate": "5", "min_age_days": 10, "max_age_days": 5}]},
            "rules[0].max_age_days",
        ),
        ({"default_rate": "10", "rules": [{"rate": "5", "colour": "red"}]}, "rules[0].colour"),
        ({"default_rate": "10", "rules": [{}]}, "rules[0].rate"),
        ({"default_rate": "10", "remittance_term_days": -1}, "remittance_term_days"),
        ({"default_rate": "10", "tiers": []}, "tiers"),
    ],
)
def test_bad_documents_name_the_faulty_field(document, field):
    with pytest.raises(FeeScheduleError) as err:
        schedule_parse(document)
    assert err.value.field == field


# --- properties -----------------------------------------------------------------------------------

rates = st.decimals(min_value=0, max_value=100, places=3, allow_nan=False, allow_infinity=False)
schedules = st.builds(
    FeeSchedule,
    default_rate=rates,
    rules=st.lists(
        st.builds(
            FeeRule,
            rate=rates,
            segment=st.sampled_from([None, "b2c", "b2b"]),
            min_age_days=st.integers(0, 400),
            max_age_days=st.none() | st.integers(401, 2000),
            min_amount_minor=st.integers(0, 10**6),
            max_amount_minor=st.none() | st.integers(10**6 + 1, 10**9),
        ),
        max_size=5,
    ).map(tuple),
    minimum_fee_minor=st.integers(0, 10**5),
    vat_rate=st.sampled_from([Decimal("20"), Decimal("10"), Decimal("5.5"), Decimal("0")]),
    mode=st.sampled_from(["net", "gross"]),
)
cases = st.lists(
    st.builds(
        CaseCollection,
        key=st.uuids().map(str),
        collected_minor=st.integers(-(10**7), 10**9),
        placed_minor=st.integers(1, 10**9),
        age_days=st.integers(0, 3000),
        segment=st.sampled_from(["b2c", "b2b"]),
        collected_before_minor=st.integers(0, 10**7),
        fee_before_minor=st.integers(0, 10**5),
    ),
    min_size=1,
    max_size=30,
)


@given(schedules, cases)
def test_remittance_is_collected_minus_commission_to_the_cent(schedule, items):
    f = remittance_compute(items, schedule)
    assert f.collected_minor == sum(i.collected_minor for i in items)
    assert f.commission_minor == sum(line.fee_minor for line in f.lines)
    assert f.transfer_minor == f.collected_minor - f.deducted_minor
    assert f.deducted_minor + f.receivable_minor == f.commission_minor + f.vat_minor
    assert f.receivable_minor >= 0
    assert f.vat_minor == percent_of(f.commission_minor, schedule.vat_rate)
    if schedule.mode == "net":
        assert 0 <= f.deducted_minor <= max(f.collected_minor, 0)
    else:
        assert f.deducted_minor == 0
        assert f.transfer_minor == f.collected_minor


@given(schedules, cases)
def test_case_commission_never_negative_never_above_collected(schedule, items):
    for item, line in zip(items, remittance_compute(items, schedule).lines, strict=True):
        assert 0 <= line.fee_minor <= max(item.collected_minor, 0)
        assert isinstance(line.fee_minor, int)
        if item.collected_minor > 0 and not line.minimum_applied:
            exact = Decimal(item.collected_minor) * line.rate / 100
            assert abs(Decimal(line.fee_minor) - exact) <= Decimal("0.5")  # rounded to the cent


@given(schedules, st.integers(1, 10**8), st.integers(1, 10**8))
def test_minimum_fee_floor_holds_cumulatively(schedule, first, second):
    a = case_fee(CaseCollection("k", first, 10**6, 10, "b2c"), schedule)
    b = case_fee(CaseCollection("k", second, 10**6, 10, "b2c", first, a.fee_minor), schedule)
    total = a.fee_minor + b.fee_minor
    assert total >= min(schedule.minimum_fee_minor, first + second)
    assert total <= first + second
