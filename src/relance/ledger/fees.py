"""Success fees: a creditor's fee schedule and the figures of one remittance (pure).

No Django import, no clock, no I/O. Amounts are integer minor units; rates are ``Decimal`` percents.

The fee schedule (R124-3 3°: the agency's remuneration is set in the mandate and borne by the
creditor, FR-COL-04) is a small document: rules matched in order, each giving a percentage for the
cases it fits (B2C/B2B, age of the debt, placed amount), a default percentage, a minimum fee per
case, the VAT rate (France: 20 % standard rate, CGI art. 278) and the remittance mode.

Rounding rule (documented in docs/payments.md): the commission of each case is ``collected × rate``
rounded **half up to the cent** (``ROUND_HALF_UP``); the invoice total before tax (HT) is the exact
sum of the case commissions; VAT is computed once on that total, half up to the cent (one VAT line
per rate, CGI art. 242 nonies A); TTC = HT + VAT. Every total is an exact sum of integers, so
``transfer + deducted == collected`` and ``deducted + receivable == TTC`` hold to the cent.

Invariants (Hypothesis tests in tests/ledger/test_fees.py):
- a case's commission is never negative and never exceeds what was collected on it in the run;
- the minimum fee per case is a floor on the *cumulative* commission of a case, capped by what was
  collected on it overall: a case that paid 3 € against a 5 € minimum is charged 3 €, never 5 €;
- a negative collection (a chargeback after an earlier remittance) carries no commission: the
  commission already invoiced is not refunded automatically (the agency issues a credit note);
- net mode deducts the commission with VAT from the transfer, at most what was collected; if the
  fee is larger (minimum fees), the rest is invoiced (``receivable_minor``), never taken from
  another creditor's money. Gross mode transfers everything collected and invoices the whole fee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MODES = ("net", "gross")
SEGMENTS = ("b2c", "b2b")
DEFAULT_VAT_RATE = Decimal("20")  # France, standard rate (CGI art. 278)
MAX_RATE = Decimal("100")


class FeeScheduleError(ValueError):
    """A fee schedule document that cannot be used; ``field`` names the faulty entry."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


@dataclass(frozen=True, slots=True)
class FeeRule:
    """Percentage for cases that match every condition given (``None`` = any)."""

    rate: Decimal
    segment: str | None = None
    min_age_days: int = 0  # inclusive
    max_age_days: int | None = None  # exclusive
    min_amount_minor: int = 0  # inclusive, on the case's placed amount
    max_amount_minor: int | None = None  # exclusive

    def matches(self, *, segment: str, age_days: int, placed_minor: int) -> bool:
        if self.segment is not None and self.segment != segment:
            return False
        if age_days < self.min_age_days or (self.max_age_days is not None and age_days >= self.max_age_days):
            return False
        return placed_minor >= self.min_amount_minor and (
            self.max_amount_minor is None or placed_minor < self.max_amount_minor
        )


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """A creditor's fee terms, read from its document by ``schedule_parse``."""

    default_rate: Decimal
    rules: tuple[FeeRule, ...] = ()
    minimum_fee_minor: int = 0
    vat_rate: Decimal = DEFAULT_VAT_RATE
    mode: str = "net"
    # FR-COL-14: remit within one calendar month of encashment unless the mandate agrees otherwise.
    remittance_term_days: int | None = None

    def rate_for(self, *, segment: str, age_days: int, placed_minor: int) -> Decimal:
        for rule in self.rules:
            if rule.matches(segment=segment, age_days=age_days, placed_minor=placed_minor):
                return rule.rate
        return self.default_rate


@dataclass(frozen=True, slots=True)
class CaseCollection:
    """What was collected on one case in one remittance, with what prices it."""

    key: str  # the case reference
    collected_minor: int  # in this remittance; negative after a chargeback
    placed_minor: int  # the case's placed amount (tiers by amount)
    age_days: int  # days from the oldest due date to the encashment (tiers by age)
    segment: str  # "b2c" | "b2b"
    collected_before_minor: int = 0  # in earlier remittances
    fee_before_minor: int = 0  # commission already charged in earlier remittances


@dataclass(frozen=True, slots=True)
class CaseFee:
    key: str
    collected_minor: int
    rate: Decimal
    fee_minor: int  # commission before tax (HT)
    minimum_applied: bool


@dataclass(frozen=True, slots=True)
class RemittanceFigures:
    """The money of one remittance; every total is an exact integer sum."""

    mode: str
    vat_rate: Decimal
    lines: tuple[CaseFee, ...] = field(default_factory=tuple)
    collected_minor: int = 0
    commission_minor: int = 0  # HT
    vat_minor: int = 0
    deducted_minor: int = 0  # commission TTC kept from the collected money (net mode)
    transfer_minor: int = 0  # what the pain.001 pays the creditor
    receivable_minor: int = 0  # commission TTC the creditor still has to pay on the invoice

    @property
    def commission_ttc_minor(self) -> int:
        return self.commission_minor + self.vat_minor


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_of(amount_minor: int, rate: Decimal) -> int:
    """``rate`` percent of ``amount_minor``, half up to the minor unit."""
    return round_half_up(Decimal(amount_minor) * rate / 100)


def case_fee(item: CaseCollection, schedule: FeeSchedule) -> CaseFee:
    """The commission (HT) on one case for one remittance (see the module docstring)."""
    rate = schedule.rate_for(segment=item.segment, age_days=item.age_days, placed_minor=item.placed_minor)
    if item.collected_minor <= 0:
        return CaseFee(item.key, item.collected_minor, rate, 0, minimum_applied=False)
    by_rate = percent_of(item.collected_minor, rate)
    floor = min(schedule.minimum_fee_minor, item.collected_before_minor + item.collected_minor) - item.fee_before_minor
    fee = max(by_rate, floor)
    fee = max(0, min(fee, item.collected_minor))
    return CaseFee(item.key, item.collected_minor, rate, fee, minimum_applied=fee > by_rate)


def remittance_compute(items: Sequence[CaseCollection], schedule: FeeSchedule) -> RemittanceFigures:
    """Commission per case, VAT on the total, and what is transferred, deducted and invoiced."""
    lines = tuple(case_fee(item, schedule) for item in items)
    collected = sum(line.collected_minor for line in lines)
    commission = sum(line.fee_minor for line in lines)
    vat = percent_of(commission, schedule.vat_rate)
    ttc = commission + vat
    deducted = min(max(collected, 0), ttc) if schedule.mode == "net" else 0
    return RemittanceFigures(
        mode=schedule.mode,
        vat_rate=schedule.vat_rate,
        lines=lines,
        collected_minor=collected,
        commission_minor=commission,
        vat_minor=vat,
        deducted_minor=deducted,
        transfer_minor=collected - deducted,
        receivable_minor=ttc - deducted,
    )


# --- the document -------------------------------------------------------------------------------

DEFAULT_DOCUMENT: dict[str, Any] = {"default_rate": "15", "minimum_fee": "0", "vat_rate": "20", "mode": "net"}


def _rate(value: object, path: str, *, places: int = 3) -> Decimal:
    """A percentage 0–100 with at most ``places`` decimals (what the statement stores and prints)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FeeScheduleError(path, 'must be a percentage written as a string, such as "12.5"')
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise FeeScheduleError(path, "must be a percentage such as 12.5") from None
    if not rate.is_finite() or rate < 0 or rate > MAX_RATE:
        raise FeeScheduleError(path, "must be a percentage between 0 and 100")
    exponent = rate.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise FeeScheduleError(path, f"must have at most {places} decimals")
    return rate


def _amount(value: object, path: str) -> int:
    """A decimal amount in major units with at most two decimals ("5", "5.00"), as minor units."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise FeeScheduleError(path, "must be an amount such as 5.00") from None
    scaled = amount.scaleb(2) if amount.is_finite() else amount
    if not amount.is_finite() or amount < 0 or scaled != scaled.to_integral_value():
        raise FeeScheduleError(path, "must be a positive amount with at most two decimals")
    return int(scaled)


def _days(value: object, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 36_500:
        raise FeeScheduleError(path, "must be a whole number of days (0 or more)")
    return value


_RULE_KEYS = {"rate", "segment", "min_age_days", "max_age_days", "min_amount", "max_amount"}
_DOC_KEYS = {"default_rate", "rules", "minimum_fee", "vat_rate", "mode", "remittance_term_days"}


def schedule_parse(document: Mapping[str, Any]) -> FeeSchedule:
    """Read and check a fee schedule document; ``FeeScheduleError`` names the faulty field."""
    if not isinstance(document, Mapping):
        raise FeeScheduleError("$", "must be an object")
    unknown = set(document) - _DOC_KEYS
    if unknown:
        raise FeeScheduleError(sorted(unknown)[0], "unknown field")
    if "default_rate" not in document:
        raise FeeScheduleError("default_rate", "is required")
    mode = document.get("mode", "net")
    if mode not in MODES:
        raise FeeScheduleError("mode", "must be 'net' or 'gross'")
    term = document.get("remittance_term_days")
    rules_doc = document.get("rules", [])
    if not isinstance(rules_doc, list):
        raise FeeScheduleError("rules", "must be a list")
    rules = []
    for i, rule in enumerate(rules_doc):
        path = f"rules[{i}]"
        if not isinstance(rule, Mapping):
            raise FeeScheduleError(path, "must be an object")
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            raise FeeScheduleError(f"{path}.{sorted(unknown)[0]}", "unknown field")
        if "rate" not in rule:
            raise FeeScheduleError(f"{path}.rate", "is required")
        segment = rule.get("segment")
        if segment is not None and segment not in SEGMENTS:
            raise FeeScheduleError(f"{path}.segment", "must be 'b2c' or 'b2b'")
        max_age = rule.get("max_age_days")
        max_amount = rule.get("max_amount")
        parsed = FeeRule(
            rate=_rate(rule["rate"], f"{path}.rate"),
            segment=segment,
            min_age_days=_days(rule.get("min_age_days", 0), f"{path}.min_age_days"),
            max_age_days=None if max_age is None else _days(max_age, f"{path}.max_age_days"),
            min_amount_minor=_amount(rule.get("min_amount", "0"), f"{path}.min_amount"),
            max_amount_minor=None if max_amount is None else _amount(max_amount, f"{path}.max_amount"),
        )
        if parsed.max_age_days is not None and parsed.max_age_days <= parsed.min_age_days:
            raise FeeScheduleError(f"{path}.max_age_days", "must be greater than min_age_days")
        if parsed.max_amount_minor is not None and parsed.max_amount_minor <= parsed.min_amount_minor:
            raise FeeScheduleError(f"{path}.max_amount", "must be greater than min_amount")
        rules.append(parsed)
    return FeeSchedule(
        default_rate=_rate(document["default_rate"], "default_rate"),
        rules=tuple(rules),
        minimum_fee_minor=_amount(document.get("minimum_fee", "0"), "minimum_fee"),
        vat_rate=_rate(document.get("vat_rate", str(DEFAULT_VAT_RATE)), "vat_rate", places=2),
        mode=mode,
        remittance_term_days=None if term is None else _days(term, "remittance_term_days"),
    )
