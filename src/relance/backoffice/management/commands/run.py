"""``relance run``: the embedded default in one process.

Serves the web UI and API (waitress, static files by WhiteNoise) and runs the engine and the
outbox dispatcher in a background thread every few seconds. Prints the demo logins and one debtor
portal link.
"""

from __future__ import annotations

import logging
import threading
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from relance.api.webhooks import webhooks_run
from relance.cases.links import portal_url
from relance.cases.models import Case
from relance.comms.services import outbox_dispatch, outbox_recover
from relance.intake.imports import import_recover, import_run_pending
from relance.strategies.engine import engine_tick
from relance.tenancy.models import User

log = logging.getLogger("relance.run")


def engine_loop(stop: threading.Event, interval: float) -> None:
    """Decide and send, forever, until ``stop`` is set. Errors are logged, never fatal."""
    while not stop.is_set():
        try:
            close_old_connections()
            import_recover()
            while import_run_pending() is not None:
                pass
            report = engine_tick()
            outbox_recover()
            sent = outbox_dispatch()
            webhooks_run()
            if report.cases or sum(sent.sent.values()):
                log.info("engine: %s; sent %s", report, dict(sent.sent))
        except Exception:
            log.exception("engine loop iteration failed")
        finally:
            close_old_connections()
        stop.wait(interval)


class Command(BaseCommand):
    help = "Serve the web UI and API and run the engine in-process (embedded default)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between engine ticks")
        parser.add_argument("--no-engine", action="store_true", help="serve only; run workers elsewhere")
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args: Any, **options: Any) -> None:
        from waitress import serve  # noqa: PLC0415 - only this command needs the server

        from relance.config.wsgi import application  # noqa: PLC0415

        base = f"http://{options['host']}:{options['port']}"
        self._banner(base)
        stop = threading.Event()
        if not options["no_engine"]:
            threading.Thread(target=engine_loop, args=(stop, options["interval"]), name="engine", daemon=True).start()
        try:
            serve(application, host=options["host"], port=options["port"], threads=options["threads"])
        finally:
            stop.set()

    def _banner(self, base: str) -> None:
        out = self.stdout.write
        out("")
        out(f"Relance is running on {base}/  (API: {base}/api/v1/docs, OpenAPI: {base}/api/v1/openapi.json)")
        out(f"Database: {settings.DATABASES['default']['NAME']}; e-mails: outbox page and {settings.EMAIL_FILE_PATH}")
        agent = User.objects.filter(role=User.Role.AGENT).order_by("pk").first()
        creditor_user = User.objects.filter(role=User.Role.CREDITOR_ADMIN).order_by("pk").first()
        if agent and creditor_user:
            out(f"Back office: {base}/bo/  — demo logins (password 'relance-demo'):")
            out(f"  agent:    {agent.username}  (staff set up two-factor authentication at first log-in: any TOTP app)")
            out(f"  creditor: {creditor_user.username} ({creditor_user.creditor})")
        if settings.PRODUCTION:
            return
        case = Case.objects.filter(status__in=["new", "active"]).select_related("debtor").order_by("pk").first()
        if case is not None:
            link = portal_url(case_id=case.pk, reference=case.reference).replace(settings.PUBLIC_BASE_URL, base)
            out(f"Debtor portal link for case {case.reference}: {link}")
            out(f"  (verify with postcode {case.debtor.postcode})")
        out("")
