"""``relance scheduler``: enqueue the engine, dispatcher and import-recovery tasks (production).

Run exactly one scheduler; run as many ``relance db_worker`` processes as the load needs.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from relance.intake.imports import import_recover
from relance.intake.models import ImportBatch
from relance.intake.tasks import import_run_task
from relance.payments.remittances import period_end_for, remittance_run_task
from relance.strategies.tasks import engine_tick_task, outbox_dispatch_task


class Command(BaseCommand):
    help = "Enqueue engine ticks and outbox dispatches periodically for the task workers."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between enqueues")

    def handle(self, *args: Any, **options: Any) -> None:
        remitted_for = None
        while True:
            # Weekly remittance run (FR-COL-14), once per week's cut-off; idempotent if repeated.
            period_end = period_end_for(timezone.now())
            if period_end != remitted_for:
                remittance_run_task.enqueue(period_end.isoformat())
                remitted_for = period_end
            engine_tick_task.enqueue()
            outbox_dispatch_task.enqueue()
            # Interrupted imports resume; uploads enqueue their own task when they are created.
            if import_recover():
                for batch_id in ImportBatch.objects.filter(status=ImportBatch.Status.PENDING).values_list(
                    "pk", flat=True
                ):
                    import_run_task.enqueue(batch_id)
            time.sleep(options["interval"])
