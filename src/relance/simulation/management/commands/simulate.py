"""``relance simulate --days N --seed N``: play debtor behaviour day by day with the real engine."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from relance.simulation.behaviour import simulate


class Command(BaseCommand):
    help = "Simulate N days of collection on the current database (rolled back unless --commit)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--commit", action="store_true", help="keep the simulated days in the database")
        parser.add_argument(
            "--enable",
            action="append",
            default=[],
            metavar="KEY",
            help="enable strategy KEY for the run (repeat); results are printed per variant",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        report = simulate(
            days=options["days"], seed=options["seed"], commit=options["commit"], enable=tuple(options["enable"])
        )
        for line in report.lines():
            self.stdout.write(line)
        kept = "kept in the database" if options["commit"] else "rolled back (use --commit to keep)"
        self.stdout.write(f"done in {time.monotonic() - started:.1f}s; {kept}")
