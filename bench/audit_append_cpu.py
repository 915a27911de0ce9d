"""Diagnostic: the CPU of appending audit events as the engine does, per event (PostgreSQL).

``audit_record_many`` in batches of 1,000 events shaped like the engine's (one per changed case), each
batch in its own transaction (head lock, head read, one binary ``COPY``), into a fresh database migrated
by the tree on ``PYTHONPATH`` (so ``main`` and a branch compare on one server, alternating). Prints the
server backend's CPU (``/proc``, the same machine) and this process's CPU per event.

    RELANCE_TEST_PGPORT=… scripts/with-postgres.sh .venv/bin/python bench/audit_append_cpu.py --db a1
    PYTHONPATH=/tmp/main-export/src … bench/audit_append_cpu.py --db m1    # the other tree, alternately
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    base, _, _ = os.environ["PG_URL"].rpartition("/")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}"')
        conn.execute(f'CREATE DATABASE "{args.db}" OWNER relance')
    url = os.environ["DATABASE_URL"].rpartition("/")[0] + "/" + args.db
    os.environ.update(DATABASE_URL=url, RELANCE_VAR_DIR=tempfile.mkdtemp(), SECRET_KEY="bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relance.config.settings")
    subprocess.run([str(ROOT / ".venv" / "bin" / "relance"), "migrate", "-v0"], check=True)

    import django

    django.setup()
    from django.db import connection, transaction

    from relance.audit import services
    from relance.audit.services import PendingEvent, audit_record_many, audit_verify
    from relance.tenancy.actors import Actor

    actor = Actor.system("engine")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), version()")
        pid, version = cursor.fetchone()
    n = 0
    server = client = 0.0
    for _ in range(args.batches):
        events = []
        for _ in range(args.batch):
            n += 1
            data = {
                "key": "default",
                "routed": False,
                "variant": "",
                "from": "new",
                "to": "active",
                "reason": "first look",
                "channel": "email",
                "template": "first_notice",
                "step": "default:1",
                "action": n,
            }
            events.append(PendingEvent("case.status_changed", "cases.case", n, data))
        s0, c0 = backend_cpu(pid), time.process_time()
        with transaction.atomic():
            audit_record_many(actor=actor, events=events)
        server += backend_cpu(pid) - s0
        client += time.process_time() - c0
    if audit_verify()[1] is not None:
        raise SystemExit("the audit chain does not verify")
    print(f"tree: {Path(services.__file__).resolve().parents[3]}; {version.split(',')[0]}")
    print(
        f"audit append: {n:,} events in batches of {args.batch}: backend {server / n * 1e6:.2f} us"
        f" + client {client / n * 1e6:.2f} us of CPU per event"
    )


if __name__ == "__main__":
    main()
