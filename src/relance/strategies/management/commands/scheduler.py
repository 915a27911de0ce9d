"""``relance scheduler``: enqueue the engine and dispatcher tasks every few seconds (production).

Run exactly one scheduler; run as many ``relance db_worker`` processes as the load needs.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from relance.strategies.tasks import engine_tick_task, outbox_dispatch_task


class Command(BaseCommand):
    help = "Enqueue engine ticks and outbox dispatches periodically for the task workers."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between enqueues")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            engine_tick_task.enqueue()
            outbox_dispatch_task.enqueue()
            time.sleep(options["interval"])
