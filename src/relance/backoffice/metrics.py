"""Portfolio figures for the dashboards: reads only, aggregated in SQL, scoped by creditor.

Every figure is a :class:`Table` (title, columns, rows) so that one value feeds the chart, the HTML table
read by screen readers, and the CSV/XLSX exports. Amounts are in euros (the portfolio currency); cases in
other currencies are left out of money figures and say so in ``Table.note``.

Definitions (docs/dashboards.md):

- *recovery rate by placement month* (liquidation curve): collected ÷ placed, cumulated by months since
  placement, for each placement month (cohort);
- *ageing*: outstanding by days past the claim's due date, from the ledger (invariant 1);
- *DSO* (collection days sales outstanding): outstanding ÷ amount placed in the last 90 days × 90;
- *channel conversion*: a contact converts when its case receives a payment within 7 days of it;
- *promises kept*: promises whose date has passed that were kept ÷ those kept or broken;
- *cost per euro recovered*: contacts × the channel's unit cost (settings ``CHANNEL_UNIT_COST_MINOR``)
  ÷ collected, over the whole period.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, QuerySet, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from relance.cases.models import Case, CaseClaim
from relance.comms.models import Action
from relance.ledger.models import Posting
from relance.payments.models import Dispute, Payment, Promise
from relance.tenancy.models import Creditor

CURRENCY = "EUR"
CONVERSION_WINDOW = dt.timedelta(days=7)
AGEING_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 30), (31, 60), (61, 90), (91, 180), (181, None))
LIQUIDATION_MONTHS = 12
CONTACTED = (Action.Status.SENT, Action.Status.DELIVERED, Action.Status.BOUNCED)


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[object]]
    unit: str = ""
    note: str = ""
    kind: str = "bar"  # how to chart it: "line" (one series per row) or "bar" (first column = labels)
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which cases a figure covers: one creditor's, or the whole agency's."""

    agency_id: int
    creditor_id: int | None = None

    def cases(self) -> QuerySet[Case]:
        qs = Case.objects.filter(creditor__agency_id=self.agency_id, currency=CURRENCY)
        return qs if self.creditor_id is None else qs.filter(creditor_id=self.creditor_id)


def _euros(minor: int) -> Decimal:
    return (Decimal(minor) / 100).quantize(Decimal("0.01"))


def _ratio(numerator: int, denominator: int, *, percent: bool = True) -> Decimal | None:
    if denominator == 0:
        return None
    value = Decimal(numerator) / Decimal(denominator) * (100 if percent else 1)
    return value.quantize(Decimal("0.1") if percent else Decimal("0.001"), rounding=ROUND_HALF_UP)


def _months_between(start: dt.date, end: dt.date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def _month(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value.replace(day=1)


def _placed_by_case(scope: Scope) -> QuerySet[CaseClaim]:
    return CaseClaim.objects.filter(case__in=scope.cases())


def liquidation(scope: Scope, *, today: dt.date) -> Table:
    """Cumulated recovery rate (%) by months since placement, one row per placement month."""
    placed: dict[dt.date, int] = defaultdict(int)
    for row in (
        _placed_by_case(scope)
        .annotate(cohort=TruncMonth("case__placed_at"))
        .values("cohort")
        .annotate(total=Sum("claim__original_amount_minor"))
    ):
        placed[_month(row["cohort"])] += row["total"] or 0
    collected: dict[dt.date, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        Payment.objects.filter(case__in=scope.cases())
        .annotate(cohort=TruncMonth("case__placed_at"), paid=TruncMonth("received_at"))
        .values("cohort", "paid")
        .annotate(total=Sum("amount_minor"))
    ):
        cohort = _month(row["cohort"])
        collected[cohort][max(0, _months_between(cohort, _month(row["paid"])))] += row["total"] or 0
    columns = [_("Placement month")] + [_("M+%(n)d") % {"n": m} for m in range(LIQUIDATION_MONTHS)]
    rows: list[list[object]] = []
    for cohort in sorted(placed):
        age = _months_between(cohort, _month(today))
        running = 0
        values: list[object] = [cohort.strftime("%Y-%m")]
        for m in range(LIQUIDATION_MONTHS):
            running += collected[cohort].get(m, 0)
            values.append(_ratio(running, placed[cohort]) if m <= age else None)
        rows.append(values)
    return Table("liquidation", _("Recovery rate by placement month"), columns, rows, unit="%", kind="line")


def collected_per_week(scope: Scope, *, today: dt.date, weeks: int = 26) -> Table:
    start = today - dt.timedelta(weeks=weeks)
    rows = (
        Payment.objects.filter(case__in=scope.cases(), received_at__date__gt=start)
        .annotate(week=TruncWeek("received_at"))
        .values("week")
        .annotate(total=Sum("amount_minor"), n=Count("pk"))
        .order_by("week")
    )
    by_week = {_monday(r["week"]): (r["total"] or 0, r["n"]) for r in rows}
    first = _monday(start + dt.timedelta(days=7))
    table_rows: list[list[object]] = []
    week = first
    while week <= today:
        total, n = by_week.get(week, (0, 0))
        table_rows.append([week.isoformat(), _euros(total), n])
        week += dt.timedelta(weeks=1)
    return Table(
        "collected",
        _("Amounts collected per week"),
        [_("Week of"), _("Collected (EUR)"), _("Payments")],
        table_rows,
        unit="EUR",
    )


def _monday(value: dt.date | dt.datetime) -> dt.date:
    day = timezone.localtime(value).date() if isinstance(value, dt.datetime) and timezone.is_aware(value) else value
    if isinstance(day, dt.datetime):
        day = day.date()
    return day - dt.timedelta(days=day.weekday())


def _outstanding_by_claim(scope: Scope) -> dict[int, tuple[int, dt.date]]:
    """Outstanding (minor units) and due date of every open claim in scope, from the ledger balances."""
    links = _placed_by_case(scope).values_list("claim_id", "claim__due_date")
    due = dict(links)
    if not due:
        return {}
    balances: dict[int, int] = defaultdict(int)
    postings = (
        Posting.objects.filter(account__key__startswith="claim:", account__currency=CURRENCY)
        .values("account__key")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    )
    for row in postings.iterator(chunk_size=5000):
        claim_id = int(row["account__key"].removeprefix("claim:"))
        if claim_id in due:
            balances[claim_id] = (row["d"] or 0) - (row["c"] or 0)
    return {claim_id: (amount, due[claim_id]) for claim_id, amount in balances.items() if amount > 0}


def ageing(scope: Scope, *, today: dt.date) -> Table:
    totals = [0] * len(AGEING_BUCKETS)
    counts = [0] * len(AGEING_BUCKETS)
    for amount, due in _outstanding_by_claim(scope).values():
        days = max(0, (today - due).days)
        for i, (low, high) in enumerate(AGEING_BUCKETS):
            if days >= low and (high is None or days <= high):
                totals[i] += amount
                counts[i] += 1
                break
    rows: list[list[object]] = []
    for (low, high), total, n in zip(AGEING_BUCKETS, totals, counts, strict=True):
        label = (
            _("%(low)d–%(high)d days") % {"low": low, "high": high}
            if high
            else _("over %(low)d days") % {"low": low - 1}
        )
        rows.append([label, _euros(total), n])
    return Table(
        "ageing",
        _("Outstanding by days past due"),
        [_("Days past due"), _("Outstanding (EUR)"), _("Claims")],
        rows,
        unit="EUR",
    )


def channels(scope: Scope) -> Table:
    """Contacts by channel, how many converted (a payment within 7 days) and what they cost."""
    paid_after = Payment.objects.filter(
        case_id=OuterRef("case_id"),
        received_at__gte=OuterRef("sent_at"),
        received_at__lte=OuterRef("sent_at") + CONVERSION_WINDOW,
    )
    rows_qs = (
        Action.objects.filter(case__in=scope.cases(), status__in=CONTACTED, sent_at__isnull=False)
        .annotate(converted=Exists(paid_after))
        .values("channel", "converted")
        .annotate(n=Count("pk"))
    )
    sent: dict[str, int] = defaultdict(int)
    converted: dict[str, int] = defaultdict(int)
    for row in rows_qs:
        sent[row["channel"]] += row["n"]
        if row["converted"]:
            converted[row["channel"]] += row["n"]
    costs = unit_costs()
    rows: list[list[object]] = []
    for channel, label in Action.Channel.choices:
        n = sent.get(channel, 0)
        rows.append(
            [str(label), n, converted.get(channel, 0), _ratio(converted.get(channel, 0), n), _euros(n * costs[channel])]
        )
    return Table(
        "channels",
        _("Contacts by channel and what they converted"),
        [_("Channel"), _("Contacts"), _("Converted"), _("Conversion (%)"), _("Cost (EUR)")],
        rows,
    )


def unit_costs() -> dict[str, int]:
    configured: dict[str, int] = getattr(settings, "CHANNEL_UNIT_COST_MINOR", {})
    return {channel: int(configured.get(channel, 0)) for channel in Action.Channel.values}


@dataclass(frozen=True, slots=True)
class Kpis:
    placed_minor: int
    collected_minor: int
    outstanding_minor: int
    recovery_rate: Decimal | None
    dso_days: Decimal | None
    dispute_rate: Decimal | None
    cost_per_euro: Decimal | None
    cases: int
    promise_kept_rate: Decimal | None = None


def kpis(scope: Scope, *, today: dt.date) -> Kpis:
    cases = scope.cases()
    placed = _placed_by_case(scope).aggregate(t=Sum("claim__original_amount_minor"))["t"] or 0
    collected = Payment.objects.filter(case__in=cases).aggregate(t=Sum("amount_minor"))["t"] or 0
    outstanding = sum(amount for amount, _due in _outstanding_by_claim(scope).values())
    since = today - dt.timedelta(days=90)
    placed_recently = (
        _placed_by_case(scope)
        .filter(case__placed_at__date__gt=since)
        .aggregate(t=Sum("claim__original_amount_minor"))["t"]
        or 0
    )
    n_cases = cases.count()
    disputed = Dispute.objects.filter(case__in=cases).values("case_id").distinct().count()
    promises = dict(
        Promise.objects.filter(case__in=cases, status__in=(Promise.Status.KEPT, Promise.Status.BROKEN))
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    kept = promises.get(Promise.Status.KEPT, 0)
    contacts = dict(
        Action.objects.filter(case__in=cases, status__in=CONTACTED)
        .values("channel")
        .annotate(n=Count("pk"))
        .values_list("channel", "n")
    )
    costs = unit_costs()
    cost = sum(n * costs.get(channel, 0) for channel, n in contacts.items())
    return Kpis(
        placed_minor=placed,
        collected_minor=collected,
        outstanding_minor=outstanding,
        recovery_rate=_ratio(collected, placed),
        dso_days=(
            (Decimal(outstanding) / Decimal(placed_recently) * 90).quantize(Decimal("0.1")) if placed_recently else None
        ),
        dispute_rate=_ratio(disputed, n_cases),
        cost_per_euro=_ratio(cost, collected, percent=False) if collected else None,
        cases=n_cases,
        promise_kept_rate=_ratio(kept, kept + promises.get(Promise.Status.BROKEN, 0)),
    )


PEER_FIGURES = ("recovery_rate", "dso_days", "dispute_rate", "cost_per_euro", "promise_kept_rate")


def peer_quartiles(*, agency_id: int, creditor_id: int, today: dt.date) -> Table | None:
    """The creditor's headline figures beside the quartiles of all the agency's creditors.

    Shown only when at least ``settings.DASHBOARD_PEER_MINIMUM`` creditors have the figure, so that no
    quartile can be traced back to one other creditor; no other creditor is ever named.
    """
    minimum = int(getattr(settings, "DASHBOARD_PEER_MINIMUM", 5))
    creditor_ids = list(Creditor.objects.filter(agency_id=agency_id).values_list("pk", flat=True))
    if len(creditor_ids) < minimum:
        return None
    figures = {cid: kpis(Scope(agency_id, cid), today=today) for cid in creditor_ids}
    labels = {
        "recovery_rate": _("Recovery rate (%)"),
        "dso_days": _("DSO (days)"),
        "dispute_rate": _("Dispute rate (%)"),
        "cost_per_euro": _("Cost per euro recovered"),
        "promise_kept_rate": _("Promises kept (%)"),
    }
    rows: list[list[object]] = []
    for name in PEER_FIGURES:
        values = sorted(v for f in figures.values() if (v := getattr(f, name)) is not None)
        if len(values) < minimum:
            continue
        q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
        rows.append(
            [labels[name], getattr(figures[creditor_id], name)]
            + [Decimal(q).quantize(Decimal("0.01")) for q in (q1, q2, q3)]
        )
    if not rows:
        return None
    return Table(
        "peers",
        _("You and your peers"),
        [_("Figure"), _("You"), _("Lower quartile"), _("Median"), _("Upper quartile")],
        rows,
        note=_("Quartiles over %(n)d creditors of the agency; no creditor is named.") % {"n": len(creditor_ids)},
    )


def disputes(scope: Scope) -> Table:
    """Disputes by reason, and how the creditors answered them."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in Dispute.objects.filter(case__in=scope.cases()).values("reason", "status").annotate(n=Count("pk")):
        counts[row["reason"]][row["status"]] += row["n"]
    total = sum(sum(by_status.values()) for by_status in counts.values())
    rows: list[list[object]] = []
    for reason, label in Dispute.Reason.choices:
        by_status = counts.get(reason, {})
        n = sum(by_status.values())
        rows.append(
            [
                str(label),
                n,
                _ratio(n, total),
                by_status.get(Dispute.Status.OPEN, 0),
                by_status.get(Dispute.Status.UPHELD, 0),
                by_status.get(Dispute.Status.REJECTED, 0),
            ]
        )
    return Table(
        "disputes",
        _("Disputes by reason"),
        [_("Reason"), _("Disputes"), _("Share (%)"), _("Waiting"), _("Upheld"), _("Rejected")],
        rows,
    )


TABLES = ("liquidation", "collected", "ageing", "channels", "disputes")


def table(name: str, scope: Scope, *, today: dt.date) -> Table:
    if name == "liquidation":
        return liquidation(scope, today=today)
    if name == "collected":
        return collected_per_week(scope, today=today)
    if name == "ageing":
        return ageing(scope, today=today)
    if name == "channels":
        return channels(scope)
    if name == "disputes":
        return disputes(scope)
    raise KeyError(name)
