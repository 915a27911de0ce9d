"""``relance engine tick``: decide every due case now, then send what was decided."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from relance.comms.services import outbox_dispatch, outbox_recover
from relance.strategies.engine import engine_tick


class Command(BaseCommand):
    help = "Run the strategy engine once (tick) and dispatch the outbox."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["tick"], help="tick: decide due cases and send")
        parser.add_argument("--no-dispatch", action="store_true", help="decide only; leave actions queued")

    def handle(self, *args: Any, **options: Any) -> None:
        report = engine_tick()
        self.stdout.write(f"engine: {report}")
        if not options["no_dispatch"]:
            outbox_recover()
            sent = outbox_dispatch(limit=100_000)
            self.stdout.write(
                f"dispatch: sent {dict(sent.sent) or 0}, blocked {sent.blocked},"
                f" deferred {sent.deferred}, failed {sent.failed}"
            )
