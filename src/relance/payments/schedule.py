"""Instalment plans, promises and hardship budgets: the pure rules (no Django import, no clock read).

- ``PlanPolicy``: what a creditor accepts without a human (max months, minimum instalment, window
  for the first due date, promise horizon and minimum share, hardship allowances).
- ``plan_schedule``: a balance split into monthly instalments that **sum exactly** to it, the first
  ones carrying the leftover cents, so every instalment is at least the minimum whenever the
  number of months respects ``max_months_for``.
- ``plan_violations`` / ``promise_violations``: the policy rules a request breaks (empty: accepted
  automatically; otherwise a plan goes to an agent as a proposal, a promise is refused).
- ``affordable_plan``: from a short budget (income, fixed charges, dependants) the plan a debtor can
  afford, always inside the policy; ``vulnerable`` when even that is beyond the budget (a human looks).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """A creditor's arrangement policy; amounts in minor units of the case's currency."""

    max_months: int = 12
    min_instalment_minor: int = 2000
    first_due_within_days: int = 30
    promise_within_days: int = 30
    promise_min_percent: int = 100
    grace_days: int = 5
    # Hardship: a living allowance per dependant, and the share of what is left a plan may take.
    allowance_per_dependant_minor: int = 30000
    hardship_share_percent: int = 50


@dataclass(frozen=True, slots=True)
class Instalment:
    number: int  # 1-based
    due: date
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Violation:
    field: str  # the form field it is about
    code: str  # stable: plan.months_too_many, plan.instalment_too_small, plan.first_due_window, …


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def max_months_for(total_minor: int, policy: PlanPolicy) -> int:
    """The longest plan the policy allows for this balance: never an instalment under the minimum."""
    if total_minor <= 0:
        return 1
    return max(1, min(policy.max_months, total_minor // max(1, policy.min_instalment_minor)))


def plan_schedule(*, total_minor: int, months: int, first_due: date) -> list[Instalment]:
    """``months`` monthly instalments summing exactly to ``total_minor``; leftover cents go first."""
    if total_minor <= 0:
        raise ValueError("nothing to schedule")
    if months < 1:
        raise ValueError("a plan has at least one instalment")
    base, extra = divmod(total_minor, months)
    return [
        Instalment(number=i + 1, due=add_months(first_due, i), amount_minor=base + (1 if i < extra else 0))
        for i in range(months)
        if base + (1 if i < extra else 0) > 0
    ]


def first_due_window(today: date, policy: PlanPolicy) -> tuple[date, date]:
    """Earliest and latest first due date the policy accepts (from tomorrow)."""
    return today + timedelta(days=1), today + timedelta(days=policy.first_due_within_days)


def plan_violations(
    *, total_minor: int, months: int, first_due: date, today: date, policy: PlanPolicy
) -> list[Violation]:
    """The policy rules this plan breaks; none means it is accepted automatically."""
    found: list[Violation] = []
    if months > policy.max_months:
        found.append(Violation("months", "plan.months_too_many"))
    if months > 1 and total_minor // months < policy.min_instalment_minor:
        found.append(Violation("months", "plan.instalment_too_small"))
    earliest, latest = first_due_window(today, policy)
    if not earliest <= first_due <= latest:
        found.append(Violation("first_due", "plan.first_due_window"))
    return found


def promise_violations(
    *, outstanding_minor: int, amount_minor: int, on: date, today: date, policy: PlanPolicy
) -> list[Violation]:
    """A promise is to pay at least ``promise_min_percent`` % of the balance within the horizon."""
    found: list[Violation] = []
    if amount_minor <= 0 or amount_minor > outstanding_minor:
        found.append(Violation("amount", "promise.amount_range"))
    elif amount_minor * 100 < outstanding_minor * policy.promise_min_percent:
        found.append(Violation("amount", "promise.amount_too_small"))
    if not today < on <= today + timedelta(days=policy.promise_within_days):
        found.append(Violation("on", "promise.date_window"))
    return found


@dataclass(frozen=True, slots=True)
class Budget:
    income_minor: int  # monthly net income of the household
    fixed_charges_minor: int  # rent, loans, energy, insurance … per month
    dependants: int


@dataclass(frozen=True, slots=True)
class AffordablePlan:
    capacity_minor: int  # what the budget leaves for this debt each month
    months: int
    instalments: list[Instalment]
    vulnerable: bool  # even the longest plan the policy allows is beyond the budget: a human looks


def monthly_capacity(budget: Budget, policy: PlanPolicy) -> int:
    """What a month leaves for this debt: a share of income less charges and dependants' allowance."""
    left = budget.income_minor - budget.fixed_charges_minor - budget.dependants * policy.allowance_per_dependant_minor
    return max(0, left * policy.hardship_share_percent // 100)


def affordable_plan(*, total_minor: int, budget: Budget, first_due: date, policy: PlanPolicy) -> AffordablePlan:
    """The shortest plan within policy whose instalments the budget can carry (else the longest one)."""
    capacity = monthly_capacity(budget, policy)
    longest = max_months_for(total_minor, policy)
    months = longest if capacity <= 0 else min(longest, max(1, -(-total_minor // capacity)))
    instalments = plan_schedule(total_minor=total_minor, months=months, first_due=first_due)
    vulnerable = max(i.amount_minor for i in instalments) > capacity
    return AffordablePlan(capacity_minor=capacity, months=months, instalments=instalments, vulnerable=vulnerable)
