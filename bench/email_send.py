"""Benchmark (``make bench-email``; not named email.py, which would shadow the standard library's
``email`` package): ROWS e-mails rendered and sent to a local SMTP sink, against a raw smtplib loop.

ROWS=100000 by default; the make target starts a throwaway PostgreSQL.

Set-up (not timed): ROWS active cases (cloned as in bench/engine.py), one engine tick queues one
e-mail action each. An aiosmtpd sink (``aiosmtpd.handlers.Sink``: accepts and drops) runs in its own
process on loopback. Then, in the same run:

- **dispatcher**: ``relance engine dispatch --loop`` in two processes sharing the queue (``SKIP
  LOCKED``; two dispatchers per machine is the production setting of docs/operations.md,
  ``--workers`` changes it): claim, contact-policy check, render (subject, text and HTML from the
  templates, amounts from the ledger, wording checks), SMTP through one kept-open connection per
  process with the hand-over record of each message (``comms.mail``), content stored on the
  action, audit events;
- **baseline**: one process, one smtplib connection, ``sendmail`` of the same messages pre-rendered
  (built from the subjects and bodies the dispatcher stored), nothing else.

The last line is the headline: messages/s, the ratio, and the dispatcher's peak RSS (largest process).
``--profile FILE`` runs the first dispatcher under cProfile.
"""

from __future__ import annotations

import argparse
import email.policy
import os
import resource
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import RELANCE, SEED_ONE, clone_cases, next_weekday_noon


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int) -> None:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the SMTP sink did not start")


@contextmanager
def smtp_sink(port: int) -> Iterator[None]:
    """An aiosmtpd sink (accepts and drops) on loopback ``port`` in its own process, while the block runs."""
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
        yield
    finally:
        sink.terminate()
        sink.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=500, help="actions per dispatch batch")
    parser.add_argument(
        "--workers", type=int, default=2, help="dispatcher processes sharing the queue (docs/operations.md: 2)"
    )
    parser.add_argument("--profile", metavar="FILE", help="run the dispatcher under cProfile, stats to FILE")
    args = parser.parse_args()
    pg_url = os.environ["PG_URL"]
    port = _free_port()
    env = {
        **os.environ,
        "RELANCE_VAR_DIR": tempfile.mkdtemp(prefix="relance-bench-"),
        "SECRET_KEY": "bench",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
    }
    with smtp_sink(port):
        subprocess.run([RELANCE, "migrate", "-v0"], check=True, env=env)
        subprocess.run([RELANCE, "shell", "-c", SEED_ONE], check=True, env=env, stdout=subprocess.DEVNULL)
        now = next_weekday_noon()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            with conn.transaction():
                clone_cases(conn, args.rows)
            conn.execute("VACUUM ANALYZE")
        subprocess.run(
            [RELANCE, "engine", "tick", "--no-dispatch", "--now", now.isoformat(), "--batch-size", "1000"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        with psycopg.connect(pg_url, autocommit=True) as conn:
            queued = conn.execute("SELECT count(*) FROM comms_action WHERE status = 'queued'").fetchone()
            conn.execute("VACUUM ANALYZE comms_action")
        print(f"set up {args.rows:,} cases, {queued[0] if queued else 0:,} e-mails queued")

        profile = [sys.executable, "-m", "cProfile", "-o", args.profile] if args.profile else []
        setup_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        setup_cpu = setup_usage.ru_utime + setup_usage.ru_stime
        dispatch = [RELANCE, "engine", "dispatch", "--loop", "--now", now.isoformat(), "--limit", str(args.limit)]
        started = time.perf_counter()
        workers = [
            subprocess.Popen([*(profile if n == 0 else []), *dispatch], env=env, stdout=subprocess.DEVNULL)
            for n in range(args.workers)
        ]
        if any(worker.wait() for worker in workers):
            raise SystemExit("a dispatcher failed")
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = usage.ru_maxrss / 1024
        with psycopg.connect(pg_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT to_address, subject, body_text, body_html, provider_message_id FROM comms_action"
                " WHERE status = 'sent' ORDER BY id"
            ).fetchall()
        sent = len(rows)
        rate = sent / seconds
        print(f"dispatcher: {sent:,} e-mails rendered and sent in {seconds:.1f}s = {rate:,.0f} messages/s")
        cpu = usage.ru_utime + usage.ru_stime - setup_cpu
        print(
            f"dispatcher CPU (all workers, start-up included): {cpu:.1f}s = {cpu / max(sent, 1) * 1e3:.2f} ms/message"
        )

        messages = []
        for to, subject, text, html, mid in rows:
            msg = EmailMessage()
            msg["Subject"], msg["From"], msg["To"], msg["Message-ID"] = subject, "relance@localhost", to, mid
            msg.set_content(text, cte="quoted-printable")
            msg.add_alternative(html, subtype="html", cte="quoted-printable")
            messages.append((to, msg.as_bytes(policy=email.policy.SMTP)))
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for to, data in messages:
                smtp.sendmail("relance@localhost", [to], data)
        base_seconds = time.perf_counter() - started
        base_rate = len(messages) / base_seconds
        n = len(messages)
        print(f"baseline raw smtplib loop (pre-rendered): {n:,} in {base_seconds:.1f}s = {base_rate:,.0f}/s")
        print(f"email: {rate:,.0f} messages/s; ratio {rate / base_rate:.3f} vs raw smtplib; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
