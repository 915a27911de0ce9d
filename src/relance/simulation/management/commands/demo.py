"""``relance demo --seed N``: load the demo world (agency, 3 creditors, ~2,000 debtors, ~3,000 claims)."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from relance.simulation.behaviour import play_history
from relance.simulation.world import DEMO_PASSWORD, build_demo_world
from relance.tenancy.models import Agency


class Command(BaseCommand):
    help = "Load the reproducible demo world into the database."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--debtors", type=int, default=2000)
        parser.add_argument("--claims", type=int, default=3000)
        parser.add_argument("--if-empty", action="store_true", help="do nothing when an agency already exists")
        parser.add_argument(
            "--no-history", action="store_true", help="do not play the past 30 days (cases stay as placed)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("The demo world is for the embedded default, not for production.")
        if Agency.objects.exists():
            if options["if_empty"]:
                self.stdout.write("demo: database already has data, nothing loaded")
                return
            raise CommandError("The database already has an agency; use a fresh database (or --if-empty).")
        started = time.monotonic()
        world = build_demo_world(seed=options["seed"], debtors=options["debtors"], claims=options["claims"])
        self.stdout.write(
            f"demo: loaded {world.claims} claims for {len(world.creditors)} creditors"
            f" in {time.monotonic() - started:.1f}s"
        )
        if not options["no_history"]:
            started = time.monotonic()
            history = play_history(seed=options["seed"], today=timezone.localdate())
            if history is not None:
                self.stdout.write(f"demo: played the past {history.days} days in {time.monotonic() - started:.1f}s:")
                for line in history.lines()[1:]:
                    self.stdout.write(f"  {line}")
        self.stdout.write(f"demo logins (password {DEMO_PASSWORD!r}): agent (agency agent), maison (creditor admin)")
        self.stdout.write(f"demo API key for {world.creditors[0].slug} (shown once): {world.api_key}")
