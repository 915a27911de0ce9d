"""``relance remittances run|due|paid``: the weekly remittance run and its FR-COL-14 deadlines.

- ``run [--period-end YYYY-MM-DD] [--creditor SLUG]``: remit what was collected before the period's
  cut-off (default: this week's Monday 00:00, Europe/Paris), write the statements, fee invoices and
  one pain.001 file per agency; print warnings. Safe to run twice: the second run creates nothing.
- ``due [--days N]``: money held for creditors and not yet remitted, with its deadline (one month
  from encashment unless the mandate says otherwise); exit code 1 when something is overdue.
- ``paid MSG_ID [--on YYYY-MM-DD]``: the bank executed a pain.001 file; post the money out of the
  trust account.
- ``file MSG_ID``: print a pain.001 file to standard output.
- ``fees SLUG [--set FILE.json]``: show a creditor's fee schedule, or replace it with a checked one.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from relance.core.errors import DomainError
from relance.core.money import Money
from relance.ledger.models import FeeSchedule, PayoutBatch
from relance.ledger.remittances import fee_schedule_set
from relance.payments.remittances import (
    ALERT_DAYS,
    payout_batch_paid,
    period_end_for,
    remittance_due,
    remittance_run,
)
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Remittances to creditors: run the weekly remittance, list deadlines, confirm payment files."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["run", "due", "paid", "file", "fees"])
        parser.add_argument("msg_id", nargs="?", help="pain.001 message id ('paid', 'file') or creditor slug ('fees')")
        parser.add_argument("--set", dest="set_file", help="fees: JSON fee schedule document to record")
        parser.add_argument("--period-end", help="cut-off date YYYY-MM-DD (run; default: this week's Monday)")
        parser.add_argument("--creditor", help="creditor slug (run: only this creditor)")
        parser.add_argument("--days", type=int, default=ALERT_DAYS, help="due: warn this many days ahead")
        parser.add_argument("--on", help="paid: execution date YYYY-MM-DD (default: today)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['what']}")(options)
        except DomainError as exc:
            where = f"{exc.fields['field']}: " if exc.fields.get("field") else ""
            raise CommandError(f"{exc.code}: {where}{exc.message}") from None

    def _run(self, options: dict[str, Any]) -> None:
        now = timezone.now()
        period_end = _date(options["period_end"]) if options["period_end"] else period_end_for(now)
        creditor = None
        if options["creditor"]:
            creditor = Creditor.objects.filter(slug=options["creditor"]).first()
            if creditor is None:
                raise CommandError(f"No creditor {options['creditor']!r}")
        reports = remittance_run(period_end=period_end, actor=Actor.system("remittances"), now=now, creditor=creditor)
        out = self.stdout.write
        for report in reports:
            for r in report.created:
                out(
                    f"  {r.creditor.display_name}: collected {Money(r.collected_minor, r.currency)}, "
                    f"commission {Money(r.commission_minor, r.currency)} + VAT {Money(r.vat_minor, r.currency)}, "
                    f"transfer {Money(r.transfer_minor, r.currency)} ({r.mode}), due by {r.due_by}"
                )
            if report.batch is not None:
                b = report.batch
                out(
                    f"  file {b.msg_id}: {b.transactions} transfers, {Money(b.control_sum_minor, b.currency)}, "
                    f"execution {b.execution_date}"
                )
            for s in report.skipped:
                out(f"  SKIPPED {s.creditor}: {s.reason} ({Money(s.amount_minor, 'EUR')})")
            for late in report.late:
                out(f"  LATE {late.creditor}: due by {late.due_by}, paid on {late.execution_date} (FR-COL-14)")
            for d in report.warnings:
                amount = Money(d.amount_minor, d.currency)
                out(f"  WARNING {d.creditor}: {amount} {d.state}, due by {d.due_by} (FR-COL-14)")
        created = sum(len(r.created) for r in reports)
        existing = sum(r.existing for r in reports)
        out(f"period ending {period_end}: {created} remittances created, {existing} already done")

    def _due(self, options: dict[str, Any]) -> None:
        today = timezone.localdate()
        overdue = False
        for agency in Agency.objects.order_by("pk"):
            for d in remittance_due(agency=agency, today=today, alert_days=options["days"]):
                overdue = overdue or d.state == "overdue"
                self.stdout.write(
                    f"{d.due_by}  {d.state:9}  {d.creditor}: {Money(d.amount_minor, d.currency)} "
                    f"(oldest encashment {d.first_encashed_on})"
                )
        if overdue:
            sys.exit(1)

    def _batch(self, options: dict[str, Any]) -> PayoutBatch:
        batch = PayoutBatch.objects.filter(msg_id=options["msg_id"] or "").first()
        if batch is None:
            raise CommandError(f"No payout file {options['msg_id']!r}")
        return batch

    def _paid(self, options: dict[str, Any]) -> None:
        on = _date(options["on"]) if options["on"] else timezone.localdate()
        batch = payout_batch_paid(batch=self._batch(options), paid_on=on, actor=Actor.system("remittances"))
        self.stdout.write(f"{batch.msg_id}: paid on {batch.paid_on}")

    def _file(self, options: dict[str, Any]) -> None:
        self.stdout.write(self._batch(options).xml, ending="")

    def _fees(self, options: dict[str, Any]) -> None:
        creditor = Creditor.objects.filter(slug=options["msg_id"] or "").first()
        if creditor is None:
            raise CommandError(f"No creditor {options['msg_id']!r}")
        if options["set_file"]:
            try:
                with open(options["set_file"], encoding="utf-8") as fh:
                    document = json.load(fh)
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read {options['set_file']}: {exc}") from None
            fee_schedule_set(creditor=creditor, document=document, actor=Actor.system("remittances"))
        row = FeeSchedule.objects.filter(creditor=creditor).first()
        self.stdout.write(json.dumps(row.document if row else None, indent=2, ensure_ascii=False))
