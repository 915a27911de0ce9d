"""The e-mail dispatcher's CPU per message, measured in one warm process (not a goal benchmark).

``make bench-email``'s figures move with the machine's load; this is the steadier measure used in
docs/benchmarks.md (E-mail, fourth session) to compare two versions of the code on the same database
and load. Run it under a throwaway PostgreSQL:

    RELANCE_TEST_PGPORT=54384 scripts/with-postgres.sh .venv/bin/python bench/email_cpu.py --rows 6000

Set-up as ``bench/email_send.py`` (ROWS cloned cases, one engine tick queues one e-mail each, an
aiosmtpd sink on loopback). Then, REPS times: every e-mail back to ``queued``, one warm-up batch, then
``--messages`` e-mails through ``outbox_dispatch`` (claim, policy check, render, SMTP with the hand-over
record, audit) in this process; prints its CPU time (``time.process_time``) per message.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from email_send import _free_port, smtp_sink
from engine import RELANCE, SEED_ONE, clone_cases, next_weekday_noon

_RESET_COLUMNS = (
    "status, lease, sent_at, attempts, subject, body_text, body_html, to_address, content_hash,"
    " provider_message_id, status_reason, updated_at, scheduled_at"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--messages", type=int, default=2500, help="messages timed per repetition")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    pg_url = os.environ["PG_URL"]
    port = _free_port()
    os.environ.update(
        RELANCE_VAR_DIR=tempfile.mkdtemp(prefix="relance-bench-"),
        SECRET_KEY="bench",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        DJANGO_SETTINGS_MODULE="relance.config.settings",
    )
    with smtp_sink(port):
        subprocess.run([RELANCE, "migrate", "-v0"], check=True)
        subprocess.run([RELANCE, "shell", "-c", SEED_ONE], check=True, stdout=subprocess.DEVNULL)
        now = next_weekday_noon()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            with conn.transaction():
                clone_cases(conn, args.rows)
            conn.execute("VACUUM ANALYZE")
        tick = [RELANCE, "engine", "tick", "--no-dispatch", "--now", now.isoformat(), "--batch-size", "1000"]
        subprocess.run(tick, check=True, stdout=subprocess.DEVNULL)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_queued AS SELECT * FROM comms_action")
            conn.execute("ALTER TABLE bench_queued OWNER TO relance")
            conn.execute("VACUUM ANALYZE")

        import django

        django.setup()
        from django.db import connection

        from relance.comms.services import outbox_dispatch

        for _ in range(args.reps):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE comms_action a SET ({_RESET_COLUMNS}) ="  # noqa: S608 - our own column names
                    f" (SELECT {_RESET_COLUMNS} FROM bench_queued q WHERE q.id = a.id)"
                )
            outbox_dispatch(now=now)  # warm-up batch
            done = 0
            started = time.process_time()
            while done < args.messages:
                report = outbox_dispatch(now=now)
                count = sum(report.sent.values()) + report.blocked + report.deferred + report.failed
                if not count:
                    break
                done += count
            cpu = time.process_time() - started
            print(f"dispatcher CPU in one warm process: {done:,} messages, {cpu / max(done, 1) * 1e3:.3f} ms/message")


if __name__ == "__main__":
    main()
