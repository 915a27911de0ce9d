"""``relance scheduler``: enqueue the engine, dispatcher, webhook and import-recovery tasks (production).

Run exactly one scheduler; run as many ``relance db_worker`` processes as the load needs.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from relance.api.tasks import webhooks_run_task
from relance.intake.imports import import_recover
from relance.intake.models import ImportBatch
from relance.intake.tasks import import_run_task
from relance.payments.tasks import receipts_deliver_pending_task
from relance.strategies.tasks import engine_tick_task, outbox_dispatch_task


class Command(BaseCommand):
    help = "Enqueue engine ticks and outbox dispatches periodically for the task workers."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between enqueues")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
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
