"""SIGKILL the engine and the e-mail dispatcher at random moments, ≥ 50 times (issue 4, crash safety).

The real commands run as subprocesses against this test's PostgreSQL database and a real SMTP server
(aiosmtpd, in this process) that counts every message it accepted, by the action id the message
carries. A seeded random schedule kills the engine (``relance engine tick``), the dispatcher
(``relance engine dispatch --loop``) or both, each at a random moment of its life (start-up included),
and restarts them, until at least 50 kills happened and the work is done; then one uninterrupted
dispatcher settles what the last kill left. What the design guarantees (``relance.comms.mail``):

- every case was decided once (its first step, one action), and no case is left due ("stuck");
- every action ends ``sent`` — accepted by the SMTP server exactly once — or ``failed`` with a reason
  (a dispatcher killed between the hand-over and the server's reply: delivered once or not at all,
  never twice); no action is left queued, sending or handed over;
- the server never received a message twice, nor one for an action that does not exist;
- the audit chain is intact.

PostgreSQL only: the subprocesses cannot reach SQLite's in-memory test database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from django.db import connection

from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.comms.models import Action
from support import free_port, next_working_day_at

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a subprocess cannot reach SQLite's in-memory test database"
    ),
    pytest.mark.django_db(transaction=True),
]

CASES = 240
KILLS = 50
SEED = 20261125
BIN = Path(sys.executable).parent
PARIS = ZoneInfo("Europe/Paris")


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


class _Counting(Message):
    def __init__(self) -> None:
        super().__init__()
        self.received: Counter[str] = Counter()

    def handle_message(self, message: object) -> None:
        self.received[str(message["X-Relance-Action"])] += 1  # type: ignore[index]


def _env(tmp_path: Path, smtp_port: int) -> dict[str, str]:
    db = connection.settings_dict
    url = (
        f"postgres://{quote(db['USER'], safe='')}:{quote(db['PASSWORD'] or '', safe='')}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"
    )
    return {
        **os.environ,
        "DATABASE_URL": url,
        "RELANCE_VAR_DIR": str(tmp_path / "var"),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_BACKEND": "relance.comms.mail.HandoverSMTPBackend",
    }


def _start(role: str, now: datetime, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if role == "engine":
        args = ["tick", "--no-dispatch", "--batch-size", "8"]
    else:  # one dispatcher at a time here, so what a killed one left is settled at once
        args = ["dispatch", "--loop", "--limit", "6", "--recover-after", "0"]
    with log.open("ab") as err:
        return subprocess.Popen(  # noqa: S603 - our own command, arguments built here
            [str(BIN / "relance"), "engine", *args, "--now", now.isoformat()],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _work_left(now: datetime) -> bool:
    due = Case.objects.filter(status__in=("new", "active", "promised"), next_action_at__lte=now).exists()
    pending = Action.objects.filter(
        status__in=(Action.Status.QUEUED, Action.Status.SENDING, Action.Status.HANDOVER)
    ).exists()
    return due or pending


def test_sigkill_engine_and_dispatcher_50_times_every_action_delivered_once_or_failed(place, tmp_path):
    now = _weekday_noon()
    cases = [
        place(f"K-{n}", "80.00", email=f"d{n}@example.fr", last_name=f"Durand{n}", phone=f"06 12 {n:04d} 00").case
        for n in range(CASES)
    ]
    handler = _Counting()
    port = free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    env, log = _env(tmp_path, port), tmp_path / "workers.log"
    rng = random.Random(SEED)
    kills, deadline = 0, time.monotonic() + 240
    running: dict[str, subprocess.Popen[bytes]] = {}
    due_at: dict[str, float] = {}
    try:
        while time.monotonic() < deadline:
            for role in ("engine", "dispatcher"):
                proc = running.get(role)
                if proc is not None and proc.poll() is not None:  # finished on its own
                    running.pop(role)
                if role not in running and (kills < KILLS or _work_left(now)):
                    running[role] = _start(role, now, env, log)
                    due_at[role] = time.monotonic() + rng.uniform(0.3, 3.5)
            if not running:
                break
            time.sleep(0.02)
            for role, proc in list(running.items()):
                if time.monotonic() >= due_at[role] and kills < KILLS:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)
                    running.pop(role)
                    kills += 1
        for proc in running.values():
            proc.wait(timeout=60)
        # The last kill may have left a claimed batch: one uninterrupted dispatcher settles it.
        final = subprocess.run(  # noqa: S603 - our own command
            [str(BIN / "relance"), "engine", "dispatch", "--loop", "--recover-after", "0", "--now", now.isoformat()],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert final.returncode == 0, final.stderr[-2000:]
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.kill()
        server.stop()

    assert kills >= KILLS
    actions = list(Action.objects.order_by("pk").values("pk", "case_id", "status", "status_reason", "channel"))
    # Every case decided exactly once (its first step), none left due.
    assert sorted(a["case_id"] for a in actions) == sorted(c.pk for c in cases)
    assert set(Case.objects.values_list("step", flat=True)) == {1}
    assert not Case.objects.filter(status__in=("new", "active"), next_action_at__lte=now).exists()
    # Every action settled: delivered exactly once, or failed with its reason (then at most once).
    statuses = Counter(a["status"] for a in actions)
    assert set(statuses) <= {Action.Status.SENT, Action.Status.FAILED}, statuses
    received = handler.received
    assert set(received) <= {str(a["pk"]) for a in actions}  # nothing for an action that does not exist
    assert max(received.values()) == 1  # never twice
    for a in actions:
        if a["status"] == Action.Status.SENT:
            assert received[str(a["pk"])] == 1, a
        else:
            assert a["status_reason"], a
    assert statuses[Action.Status.SENT] >= CASES // 2  # the failures are the rare unknown hand-overs
    assert audit_verify()[1] is None
    print(f"kills {kills}; {dict(statuses)}; messages received {sum(received.values())}")
