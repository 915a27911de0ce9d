"""``relance engine tick|dispatch|work``: the engine and the outbox dispatcher as worker processes.

- ``tick``: decide every due case once (and, unless ``--no-dispatch``, send what was decided);
- ``dispatch``: settle what a crashed dispatcher left, then send queued actions (``--loop`` to keep going);
- ``work``: both, forever (``--interval``): what a worker machine runs (docs/operations.md).

Any number of these may run at once on PostgreSQL (``FOR UPDATE SKIP LOCKED`` for cases and actions;
e-mails under a lease, see ``comms.mail``); SIGKILL at any moment loses nothing and duplicates nothing.
``--now`` replays a given instant (tests, simulations); by default it is the wall clock.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.utils import timezone

from relance.comms.services import outbox_dispatch, outbox_recover
from relance.strategies.engine import engine_tick


class Command(BaseCommand):
    help = "Run the strategy engine (tick), the outbox dispatcher (dispatch) or both in a loop (work)."
    # Django's system checks validate the project's configuration, not the work: ≈ 0.8 s of CPU at each
    # start of a worker process (a tick run by cron or by several workers pays it every time). They run
    # where configuration changes — ``relance check --deploy`` and ``relance migrate`` at each deployment
    # (docs/operations.md) — as for Django's ``shell``.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["tick", "dispatch", "work"])
        parser.add_argument("--no-dispatch", action="store_true", help="tick: decide only; leave actions queued")
        parser.add_argument("--now", help="ISO instant to act at (default: the wall clock)")
        parser.add_argument("--batch-size", type=int, help="cases per engine transaction")
        parser.add_argument("--limit", type=int, default=500, help="actions claimed per dispatch batch")
        parser.add_argument("--loop", action="store_true", help="dispatch: keep going until the queue is empty")
        parser.add_argument("--interval", type=float, default=10.0, help="work: seconds between rounds")
        parser.add_argument(
            "--recover-after",
            type=float,
            default=float(settings.RELANCE_OUTBOX_LEASE_SECONDS),
            help="seconds after which a silent dispatcher's claimed actions are settled",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fixed = self._now(options["now"])
        stale = timedelta(seconds=options["recover_after"])
        if options["what"] == "tick":
            now = fixed or timezone.now()
            self.stdout.write(f"engine: {engine_tick(now=now, batch_size=options['batch_size'])}")
            if not options["no_dispatch"]:
                self._dispatch(now, stale, options["limit"], loop=True)
            return
        if options["what"] == "dispatch":
            self._dispatch(fixed or timezone.now(), stale, options["limit"], loop=options["loop"])
            return
        while True:
            close_old_connections()
            now = fixed or timezone.now()
            report = engine_tick(now=now, batch_size=options["batch_size"])
            if report.cases:
                self.stdout.write(f"engine: {report}")
            self._dispatch(now, stale, options["limit"], loop=True)
            self.stdout.flush()
            time.sleep(options["interval"])

    def _dispatch(self, now: datetime, stale: timedelta, limit: int, *, loop: bool) -> None:
        settled = outbox_recover(now=now, stale_after=stale)
        if settled:
            self.stdout.write(f"recovered: {settled} actions left by a stopped dispatcher")
        while True:
            sent = outbox_dispatch(now=now, limit=limit)
            total = sum(sent.sent.values()) + sent.blocked + sent.deferred + sent.failed
            if total:
                self.stdout.write(
                    f"dispatch: sent {dict(sent.sent) or 0}, blocked {sent.blocked},"
                    f" deferred {sent.deferred}, failed {sent.failed}"
                )
            if not loop or not total:
                return

    @staticmethod
    def _now(raw: str | None) -> datetime | None:
        if not raw:
            return None
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise CommandError(f"--now: not an ISO date-time: {raw!r}") from exc
        if timezone.is_naive(value):
            raise CommandError("--now needs a timezone offset, e.g. 2026-11-26T12:00:00+01:00")
        return value
