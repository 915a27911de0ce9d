"""The remittance run: pay each creditor what was collected for it, less the agency's fee (issue 5).

``remittance_run`` (weekly, by ``relance remittances run`` and the scheduler) takes, per creditor,
every movement of its payable account booked before the period's cut-off and not yet remitted
(payments, and chargebacks as negative amounts), prices each case with the creditor's fee
schedule (``ledger.fees``), and writes one remittance per creditor with its statement lines, its
fee invoice and its postings (``ledger.remittances``); then one pain.001 file pays every
remittance of the run from the trust account (FR-COL-02, PAY-10).

Idempotent: a creditor has at most one remittance per period (database constraint) and a ledger
movement is remitted at most once (``RemittanceItem.source_transaction`` is unique); running the
same period again creates nothing, unless something was left out the first time (a creditor
without a valid IBAN, since fixed). A remittance left without a file by a crash is put in the
next file.

FR-COL-14: funds are due to the creditor within one calendar month of their actual encashment
(the payment's value date) unless the mandate says otherwise (``remittance_term_days`` in the fee
schedule). ``remittance_due`` lists the money still held with its due date; the run reports what
is overdue or due within five days (the D-5 alert) and what a remittance pays late.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from relance.cases.models import Case, CaseClaim
from relance.claims.services import creditor_payable_account
from relance.core.errors import ValidationError
from relance.ledger.fees import CaseCollection, FeeSchedule
from relance.ledger.models import Account, LedgerTransaction, PayoutBatch, Posting, Remittance
from relance.ledger.remittances import (
    ItemIn,
    Movement,
    case_history,
    fee_schedule_for,
    movements_unremitted,
    payout_batch_create,
    payout_batch_mark_paid,
    remittance_create,
    trust_account,
)
from relance.payments.models import Payment
from relance.payments.sepa_ct import SepaFileError, Transfer, credit_transfer_file
from relance.payments.transfer import iban_parse
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor

ALERT_DAYS = 5  # FR-COL-14 [D]: alert at D-5
SEPA_CURRENCY = "EUR"
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=ZoneInfo("UTC"))


def _tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def period_end_for(now: datetime) -> date:
    """The weekly cut-off: Monday 00:00 (local time) of ``now``'s week; the period is the week before."""
    today = timezone.localtime(now, _tz()).date()
    return today - timedelta(days=today.weekday())


def period_cutoff(period_end: date) -> datetime:
    return datetime.combine(period_end, time.min, tzinfo=_tz())


def add_months(day: date, months: int = 1) -> date:
    """Same day ``months`` later, or that month's last day (31 January + 1 month = 28/29 February)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_by(encashed_on: date, schedule: FeeSchedule) -> date:
    """FR-COL-14: one calendar month from actual encashment, unless the mandate agreed a term."""
    if schedule.remittance_term_days is not None:
        return encashed_on + timedelta(days=schedule.remittance_term_days)
    return add_months(encashed_on, 1)


def execution_date_for(day: date) -> date:
    """The first TARGET2 business day on or after ``day`` (no weekends, no ECB closing days)."""
    closed = holidays.financial_holidays("ECB", years=[day.year, day.year + 1])
    while day.weekday() >= 5 or day in closed:
        day += timedelta(days=1)
    return day


# --- reports ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skipped:
    creditor: str
    reason: str
    amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class DueItem:
    """Money held for a creditor, not yet remitted, with its FR-COL-14 deadline."""

    creditor_id: int
    creditor: str
    currency: str
    amount_minor: int
    first_encashed_on: date
    due_by: date
    state: str  # "overdue" | "due_soon" | "ok"


@dataclass(frozen=True, slots=True)
class LateRemittance:
    remittance_id: int
    creditor: str
    due_by: date
    execution_date: date


@dataclass
class RunReport:
    period_end: date
    created: list[Remittance] = field(default_factory=list)
    existing: int = 0
    batch: PayoutBatch | None = None
    skipped: list[Skipped] = field(default_factory=list)
    late: list[LateRemittance] = field(default_factory=list)
    due: list[DueItem] = field(default_factory=list)

    @property
    def warnings(self) -> list[DueItem]:
        return [d for d in self.due if d.state != "ok"]


# --- the run ----------------------------------------------------------------------------------------


def _payable_currencies(creditor: Creditor) -> list[str]:
    prefix = f"creditor:{creditor.pk}:payable:"
    return sorted(
        k.removeprefix(prefix) for k in Account.objects.filter(key__startswith=prefix).values_list("key", flat=True)
    )


def _local_date(moment: datetime) -> date:
    return timezone.localtime(moment, _tz()).date()


def _attribute(movements: list[Movement]) -> tuple[list[ItemIn], list[Movement]]:
    """Each movement's case (through its payment, or the payment it reverses) and encashment date."""
    ids = [m.transaction_id for m in movements]
    reverses = dict(LedgerTransaction.objects.filter(pk__in=ids).values_list("pk", "reverses_id"))
    payment_txns = set(ids) | {r for r in reverses.values() if r is not None}
    payments = {
        p.ledger_transaction_id: p
        for p in Payment.objects.filter(ledger_transaction_id__in=payment_txns).select_related("case")
    }
    items: list[ItemIn] = []
    unknown: list[Movement] = []
    by_claim = _claim_cases([m.transaction_id for m in movements if m.transaction_id not in payments])
    for m in movements:
        payment = payments.get(m.transaction_id) or payments.get(reverses.get(m.transaction_id) or -1)
        if payment is not None and payment.method == Payment.Method.CREDITOR_REPORTED:
            # The creditor already holds this money: never pay it out again (the fee on it is
            # invoiced by hand for now, see docs/payments.md).
            unknown.append(m)
            continue
        payment = payments.get(m.transaction_id)
        if payment is not None:
            # FR-COL-14 counts from the actual encashment: the value date the payment carries.
            items.append(
                ItemIn(m.transaction_id, payment.case.reference, m.amount_minor, _local_date(payment.received_at))
            )
            continue
        original = payments.get(reverses.get(m.transaction_id) or -1)
        reference = original.case.reference if original is not None else by_claim.get(m.transaction_id)
        if reference is not None:
            # A chargeback, or a credit note making part of a payment refundable to the debtor
            # (intake's ``claim.credit_note``): it lowers what is remitted for that case.
            items.append(ItemIn(m.transaction_id, reference, m.amount_minor, _local_date(m.occurred_at)))
        else:
            unknown.append(m)
    return items, unknown


def _claim_cases(transaction_ids: list[int]) -> dict[int, str]:
    """Case reference of transactions that post to a claim account (``claim:<id>``), e.g. credit notes."""
    if not transaction_ids:
        return {}
    claim_of: dict[int, int] = {}
    for txn_id, key in Posting.objects.filter(
        transaction_id__in=transaction_ids, account__key__startswith="claim:"
    ).values_list("transaction_id", "account__key"):
        suffix = key.removeprefix("claim:")
        if suffix.isdigit():
            claim_of.setdefault(txn_id, int(suffix))
    cases = dict(
        CaseClaim.objects.filter(claim_id__in=set(claim_of.values())).values_list("claim_id", "case__reference")
    )
    return {txn: cases[claim] for txn, claim in claim_of.items() if claim in cases}


def _cases(*, creditor: Creditor, items: list[ItemIn]) -> tuple[list[CaseCollection], dict[str, str]]:
    """What prices each case (placed amount, debt age, segment, history), and its creditor references."""
    collected: dict[str, int] = defaultdict(int)
    first_on: dict[str, date] = {}
    for item in items:
        collected[item.reference] += item.amount_minor
        first_on[item.reference] = min(first_on.get(item.reference, item.encashed_on), item.encashed_on)
    history = case_history(creditor=creditor, references=list(collected))
    facts: dict[str, tuple[int, date, str]] = {}
    labels: dict[str, str] = {}
    for case in Case.objects.filter(creditor=creditor, reference__in=list(collected)).prefetch_related("claims"):
        claims = sorted(case.claims.all(), key=lambda c: c.pk)
        labels[case.reference] = ", ".join(c.invoice_number or c.external_ref for c in claims)
        facts[case.reference] = (
            sum(c.original_amount_minor for c in claims),
            min(c.due_date for c in claims),
            claims[0].segment if claims else creditor.segment,
        )
    result = []
    for ref in sorted(collected):
        placed, oldest_due, segment = facts.get(ref, (0, first_on[ref], creditor.segment))
        before_collected, before_fee = history.get(ref, (0, 0))
        result.append(
            CaseCollection(
                key=ref,
                collected_minor=collected[ref],
                placed_minor=placed,
                age_days=max(0, (first_on[ref] - oldest_due).days),
                segment=segment,
                collected_before_minor=before_collected,
                fee_before_minor=before_fee,
            )
        )
    return result, labels


def _remit_creditor(
    *, creditor: Creditor, currency: str, period_end: date, now: datetime, actor: Actor, report: RunReport
) -> None:
    with transaction.atomic():
        # One run at a time per creditor: the second waits, then finds the remittance and stops.
        creditor = Creditor.objects.select_for_update().select_related("agency").get(pk=creditor.pk)
        if Remittance.objects.filter(creditor=creditor, period_end=period_end, currency=currency).exists():
            report.existing += 1
            return
        payable = creditor_payable_account(creditor, currency)
        movements = movements_unremitted(account_key=payable, until=period_cutoff(period_end))
        if not movements:
            return
        items, unknown = _attribute(movements)
        for m in unknown:
            report.skipped.append(
                Skipped(
                    creditor.display_name,
                    f"ledger transaction {m.transaction_id} ({m.code}) is not money collected on the trust "
                    "account (paid to the creditor directly, or posted by hand): not remitted, check it",
                    m.amount_minor,
                )
            )
        total = sum(i.amount_minor for i in items)
        if not items:
            return
        if currency != SEPA_CURRENCY:
            report.skipped.append(
                Skipped(creditor.display_name, f"{currency}: only euro remittances are paid by SEPA", total)
            )
            return
        if total <= 0:
            report.skipped.append(Skipped(creditor.display_name, "chargebacks exceed collections: carried over", total))
            return
        iban = iban_parse(creditor.remittance_iban)
        if iban is None:
            report.skipped.append(Skipped(creditor.display_name, "no valid remittance IBAN on the creditor", total))
            return
        schedule = fee_schedule_for(creditor)
        first = min(i.encashed_on for i in items)
        cases, labels = _cases(creditor=creditor, items=items)
        remittance = remittance_create(
            creditor=creditor,
            period_end=period_end,
            currency=currency,
            items=items,
            cases=cases,
            labels=labels,
            schedule=schedule,
            payable_account=payable,
            due_by=due_by(first, schedule),
            payee_iban=iban.compact,
            issued_on=_local_date(now),
            occurred_at=now,
            actor=actor,
        )
        report.created.append(remittance)


def _batch(*, agency: Agency, period_end: date, now: datetime) -> PayoutBatch | None:
    """One pain.001 for every ordered remittance of the agency that no file pays yet."""
    with transaction.atomic():
        Agency.objects.select_for_update().get(pk=agency.pk)
        pending = list(
            Remittance.objects.filter(
                agency=agency, status=Remittance.Status.ORDERED, batch__isnull=True, currency=SEPA_CURRENCY
            ).order_by("creditor_id", "pk")
        )
        if not pending:
            return None
        n = PayoutBatch.objects.filter(agency=agency, period_end=period_end).count() + 1
        msg_id = f"RLC{agency.pk}-{period_end:%Y%m%d}-{n}"
        execution = execution_date_for(_local_date(now))
        trust = iban_parse(agency.trust_iban)
        if trust is None:  # checked by the run before anything was written
            raise ValidationError("The agency's trust account IBAN is missing or invalid.", field="trust_iban")
        try:
            built = credit_transfer_file(
                msg_id=msg_id,
                created_at=timezone.localtime(now, _tz()),
                debtor_name=agency.legal_name,
                debtor_iban=trust.compact,
                execution_date=execution,
                transfers=[
                    Transfer(
                        name=r.payee_name,
                        iban=r.payee_iban,
                        amount_minor=r.transfer_minor,
                        end_to_end_id=r.end_to_end_id,
                        remittance_info=f"Reversement {r.end_to_end_id} periode au {r.period_end:%d/%m/%Y}",
                    )
                    for r in pending
                ],
            )
        except SepaFileError as exc:
            raise ValidationError(str(exc), field=exc.field) from None
        return payout_batch_create(
            agency=agency,
            period_end=period_end,
            remittances=pending,
            msg_id=msg_id,
            execution_date=execution,
            xml=built.xml.decode("utf-8"),
        )


def remittance_run(
    *, period_end: date, actor: Actor, now: datetime | None = None, creditor: Creditor | None = None
) -> list[RunReport]:
    """Remit every creditor (or one) for the period ending ``period_end``; one report per agency."""
    now = now or timezone.now()
    if period_end > _local_date(now):
        raise ValidationError("The period has not ended yet.", field="period_end")
    agencies = Agency.objects.filter(pk=creditor.agency_id) if creditor else Agency.objects.all()
    reports = []
    for agency in agencies.order_by("pk"):
        report = RunReport(period_end=period_end)
        creditors = Creditor.objects.filter(agency=agency).order_by("pk")
        if creditor is not None:
            creditors = creditors.filter(pk=creditor.pk)
        if iban_parse(agency.trust_iban) is None:
            if any(_payable_currencies(c) for c in creditors):
                report.skipped.append(
                    Skipped(agency.legal_name, "the agency's trust account IBAN is missing or invalid")
                )
            report.due = remittance_due(agency=agency, today=_local_date(now))
            reports.append(report)
            continue
        for c in creditors:
            for currency in _payable_currencies(c):
                _remit_creditor(
                    creditor=c, currency=currency, period_end=period_end, now=now, actor=actor, report=report
                )
        report.batch = _batch(agency=agency, period_end=period_end, now=now)
        if report.batch is not None:
            for r in report.batch.remittances.select_related("creditor"):
                if r.due_by < report.batch.execution_date:
                    report.late.append(
                        LateRemittance(r.pk, r.creditor.display_name, r.due_by, report.batch.execution_date)
                    )
        report.due = remittance_due(agency=agency, today=_local_date(now))
        reports.append(report)
    return reports


def remittance_due(*, agency: Agency, today: date, alert_days: int = ALERT_DAYS) -> list[DueItem]:
    """Money held for each creditor and not yet remitted, with the FR-COL-14 deadline, soonest first.

    ``overdue``: the deadline has passed; ``due_soon``: it falls within ``alert_days``. Movements
    are grouped per creditor and currency; the deadline is that of the oldest encashment.
    """
    result = []
    for creditor in Creditor.objects.filter(agency=agency).order_by("pk"):
        schedule = fee_schedule_for(creditor)
        for currency in _payable_currencies(creditor):
            movements = movements_unremitted(
                account_key=creditor_payable_account(creditor, currency), until=_END_OF_TIME
            )
            items, _ = _attribute(movements)
            if not items:
                continue
            amount = sum(i.amount_minor for i in items)
            first = min(i.encashed_on for i in items)
            deadline = due_by(first, schedule)
            state = (
                "overdue"
                if deadline < today
                else "due_soon"
                if deadline <= today + timedelta(days=alert_days)
                else "ok"
            )
            result.append(DueItem(creditor.pk, creditor.display_name, currency, amount, first, deadline, state))
    return sorted(result, key=lambda d: (d.due_by, d.creditor_id))


def payout_batch_paid(*, batch: PayoutBatch, paid_on: date, actor: Actor) -> PayoutBatch:
    """The bank executed the pain.001: the money leaves the trust account (``remittance.paid``)."""
    return payout_batch_mark_paid(
        batch=batch, paid_on=paid_on, actor=actor, trust_account=trust_account(batch.agency_id, batch.currency)
    )


@task()
def remittance_run_task(period_end: str) -> dict[str, int]:
    """Task shell for the scheduler's weekly run (idempotent: enqueuing it twice is harmless)."""
    reports = remittance_run(period_end=date.fromisoformat(period_end), actor=Actor.system("remittances"))
    return {
        "created": sum(len(r.created) for r in reports),
        "skipped": sum(len(r.skipped) for r in reports),
        "late": sum(len(r.late) for r in reports),
        "warnings": sum(len(r.warnings) for r in reports),
    }
