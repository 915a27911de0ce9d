"""Pure rules of plans, promises and hardship budgets, with Hypothesis properties."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from relance.payments.schedule import (
    Budget,
    PlanPolicy,
    add_months,
    affordable_plan,
    max_months_for,
    plan_schedule,
    plan_violations,
    promise_violations,
)

POLICY = PlanPolicy(max_months=6, min_instalment_minor=2000, first_due_within_days=30)
TODAY = date(2026, 11, 25)

policies = st.builds(
    PlanPolicy,
    max_months=st.integers(1, 36),
    min_instalment_minor=st.integers(1, 50_000),
    first_due_within_days=st.integers(1, 60),
    allowance_per_dependant_minor=st.integers(0, 100_000),
    hardship_share_percent=st.integers(1, 100),
)
budgets = st.builds(
    Budget,
    income_minor=st.integers(0, 1_000_000),
    fixed_charges_minor=st.integers(0, 1_000_000),
    dependants=st.integers(0, 10),
)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31))


def test_a_worked_example_carries_the_leftover_cents_first():
    plan = plan_schedule(total_minor=10_000, months=3, first_due=date(2026, 1, 31))
    assert [i.amount_minor for i in plan] == [3334, 3333, 3333]
    assert [i.due for i in plan] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]
    assert [i.number for i in plan] == [1, 2, 3]


def test_policy_checks_name_the_field_and_the_rule():
    codes = {
        (v.field, v.code)
        for v in plan_violations(
            total_minor=10_000, months=12, first_due=TODAY + timedelta(days=45), today=TODAY, policy=POLICY
        )
    }
    assert codes == {
        ("months", "plan.months_too_many"),
        ("months", "plan.instalment_too_small"),
        ("first_due", "plan.first_due_window"),
    }
    assert not plan_violations(
        total_minor=10_000, months=5, first_due=TODAY + timedelta(days=1), today=TODAY, policy=POLICY
    )
    assert plan_violations(total_minor=10_000, months=5, first_due=TODAY, today=TODAY, policy=POLICY)


def test_promises_must_be_within_the_horizon_and_the_minimum_share():
    policy = PlanPolicy(promise_within_days=15, promise_min_percent=50)
    ok = promise_violations(
        outstanding_minor=10_000, amount_minor=5_000, on=TODAY + timedelta(days=15), today=TODAY, policy=policy
    )
    assert ok == []
    small = promise_violations(
        outstanding_minor=10_000, amount_minor=4_999, on=TODAY + timedelta(days=3), today=TODAY, policy=policy
    )
    assert [v.code for v in small] == ["promise.amount_too_small"]
    late = promise_violations(
        outstanding_minor=10_000, amount_minor=10_000, on=TODAY + timedelta(days=16), today=TODAY, policy=policy
    )
    assert [(v.field, v.code) for v in late] == [("on", "promise.date_window")]
    assert [
        v.code
        for v in promise_violations(
            outstanding_minor=10_000, amount_minor=10_001, on=TODAY + timedelta(days=1), today=TODAY, policy=policy
        )
    ] == ["promise.amount_range"]


@given(total=st.integers(1, 10**9), months=st.integers(1, 120), first=days)
def test_instalments_always_sum_exactly_to_the_balance(total, months, first):
    plan = plan_schedule(total_minor=total, months=months, first_due=first)
    assert sum(i.amount_minor for i in plan) == total
    assert all(i.amount_minor > 0 for i in plan)
    assert max(i.amount_minor for i in plan) - min(i.amount_minor for i in plan) <= 1
    assert all(a.due < b.due for a, b in itertools.pairwise(plan))


@given(total=st.integers(1, 10**8), policy=policies, first=days)
def test_the_longest_plan_allowed_respects_the_minimum_and_the_max_months(total, policy, first):
    months = max_months_for(total, policy)
    plan = plan_schedule(total_minor=total, months=months, first_due=first)
    assert 1 <= months <= policy.max_months
    assert all(i.amount_minor >= min(policy.min_instalment_minor, total) for i in plan)
    assert plan[-1].due <= add_months(first, policy.max_months - 1)


@given(total=st.integers(1, 10**8), budget=budgets, policy=policies, first=days)
def test_the_affordable_plan_is_always_within_policy(total, budget, policy, first):
    proposal = affordable_plan(total_minor=total, budget=budget, first_due=first, policy=policy)
    plan = proposal.instalments
    assert sum(i.amount_minor for i in plan) == total
    assert all(i.amount_minor >= min(policy.min_instalment_minor, total) for i in plan)
    assert len(plan) == proposal.months <= policy.max_months
    assert plan[-1].due <= add_months(first, policy.max_months - 1)
    # Not vulnerable means the budget carries every instalment; vulnerable means it cannot.
    assert proposal.vulnerable == (max(i.amount_minor for i in plan) > proposal.capacity_minor)


def test_a_budget_with_nothing_left_is_flagged_vulnerable():
    proposal = affordable_plan(
        total_minor=30_000, budget=Budget(120_000, 100_000, 1), first_due=TODAY, policy=PlanPolicy()
    )
    assert proposal.capacity_minor == 0
    assert proposal.vulnerable
    assert proposal.months == 12


def test_a_comfortable_budget_gets_the_shortest_plan_it_can_carry():
    # 2,000 − 1,200 − 1 × 300 = 500 left; half of it, 250 EUR a month: 600 EUR in 3 months.
    proposal = affordable_plan(
        total_minor=60_000, budget=Budget(200_000, 120_000, 1), first_due=TODAY, policy=PlanPolicy()
    )
    assert proposal.capacity_minor == 25_000
    assert proposal.months == 3
    assert not proposal.vulnerable
