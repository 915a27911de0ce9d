"""``relance scheduler``: enqueue the engine, dispatcher, webhook and import-recovery tasks (production).

Run exactly one scheduler; run as many ``relance db_worker`` processes as the load needs.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from relance.api.tasks import webhooks_run_task
from relance.intake.imports import import_recover
from relance.intake.models import ImportBatch
from relance.intake.tasks import import_run_task
from relance.payments.arrangement_tasks import arrangements_review_task
from relance.payments.remittances import period_end_for, remittance_run_task
from relance.payments.tasks import receipts_deliver_pending_task
from relance.strategies.tasks import engine_tick_task, outbox_dispatch_task


class Command(BaseCommand):
    help = "Enqueue engine ticks and outbox dispatches periodically for the task workers."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between enqueues")

    def handle(self, *args: Any, **options: Any) -> None:
        last_review = 0.0
        remitted_for = None
        while True:
            if time.monotonic() - last_review >= 3600:  # promises, plans, direct-debit settlement: hourly
                arrangements_review_task.enqueue()
                last_review = time.monotonic()
            # Weekly remittance run (FR-COL-14), once per week's cut-off; idempotent if repeated.
            period_end = period_end_for(timezone.now())
            if period_end != remitted_for:
                remittance_run_task.enqueue(period_end.isoformat())
                remitted_for = period_end
            engine_tick_task.enqueue()
            outbox_dispatch_task.enqueue()
            receipts_deliver_pending_task.enqueue()  # FR-COL-13: receipts whose e-mail did not go
            webhooks_run_task.enqueue()  # webhooks out: new events, due deliveries and retries
            # Interrupted imports resume; uploads enqueue their own task when they are created.
            if import_recover():
                for batch_id in ImportBatch.objects.filter(status=ImportBatch.Status.PENDING).values_list(
                    "pk", flat=True
                ):
                    import_run_task.enqueue(batch_id)
            time.sleep(options["interval"])
