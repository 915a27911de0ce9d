"""Benchmark: one engine tick over ROWS active cases on PostgreSQL, 2 worker processes, against a bare UPDATE.

Run with `make bench-engine` (ROWS=1000000 by default), which starts a throwaway PostgreSQL on a free
loopback port (ENGINE_PGPORT=… to choose one).

Set-up: one claim is placed through the real services (debtor, claim, case, ledger placement), then
cloned in SQL into ROWS debtors, claims, cases, ledger accounts and balanced placements (distinct
debtors, all due now). Then, in the same run:

- **baseline**: a bare ``UPDATE cases_case SET next_action_at = …`` over the same rows;
- **engine**: ``relance engine tick --no-dispatch`` in 2 processes at once (``FOR UPDATE SKIP LOCKED``
  shares the cases): snapshot reads, the strategy decision and the contact policy, outbox actions
  (binary ``COPY``), case updates (one ``UPDATE … FROM unnest``) and the audit chain (one event per
  changed case, ``COPY``), committed per batch (``strategies.bulk``).

Prints cases decided per second, the ratio against the baseline and the workers' peak RSS; the last
line is the headline.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RELANCE = str(ROOT / ".venv" / "bin" / "relance")

SEED_ONE = """
from datetime import date, timedelta
from relance.intake.validate import ClaimData, DebtorData
from relance.intake.services import claim_place
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor
creditor = Creditor.objects.create(
    agency=Agency.objects.create(legal_name="Bench", address="1 rue de la Paix, 75002 Paris"),
    slug="bench", legal_name="Bench SAS", address="2 rue du Commerce, 75002 Paris", mode="B",
)
today = date.today()
claim_place(creditor=creditor, actor=Actor.system("bench"), data=ClaimData(
    external_ref="B-0", invoice_number="F-B-0", invoice_date=today - timedelta(days=40),
    due_date=today - timedelta(days=10), amount="120.50", currency="EUR",
    debtor=DebtorData(first_name="Jeanne", last_name="Martin", email="b0@example.fr", phone="",
                      address_line1="3 rue des Lilas", postcode="33000", city="Bordeaux"),
))
"""

# Per table: the columns that must differ in each clone (g = 1 .. ROWS-1; the template has id 1).
CLONES: list[tuple[str, dict[str, str]]] = [
    (
        "claims_debtor",
        {
            "id": "1 + g",
            "email": "'b' || g || '@example.fr'",
            "email_key": "'b' || g || '@example.fr'",
            "last_name": "t.last_name || g",
            "name_key": "t.name_key || g",
        },
    ),
    (
        "claims_claim",
        {"id": "1 + g", "debtor_id": "1 + g", "external_ref": "'B-' || g", "invoice_number": "'F-B-' || g"},
    ),
    ("cases_case", {"id": "1 + g", "debtor_id": "1 + g", "reference": "'BR' || g"}),
    ("cases_caseclaim", {"id": "1 + g", "case_id": "1 + g", "claim_id": "1 + g"}),
    ("ledger_account", {"id": "1000 + g", "key": "'claim:' || (1 + g)"}),
    ("ledger_ledgertransaction", {"id": "1 + g", "idempotency_key": "t.idempotency_key || '-' || g"}),
]


def clone_cases(conn: psycopg.Connection, rows: int) -> None:
    for table, overrides in CLONES:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                [table],
            )
        ]
        where = "t.key = 'claim:1'" if table == "ledger_account" else "t.id = 1"
        exprs = ", ".join(overrides.get(c, f"t.{c}") for c in cols)
        conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {exprs} FROM {table} t,"  # noqa: S608 - our own names
            f" generate_series(1, {rows - 1}) g WHERE {where}"
        )
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
        )
    # The placement's two postings: the claim's side goes to the clone's account, the other side stays.
    conn.execute(
        """
        INSERT INTO ledger_posting (debit, credit, currency, account_id, transaction_id)
        SELECT p.debit, p.credit, p.currency,
               CASE WHEN a.key = 'claim:1' THEN 1000 + g ELSE p.account_id END, 1 + g
        FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id, generate_series(1, %s) g
        WHERE p.transaction_id = 1
        """,
        [rows - 1],
    )
    conn.execute("SELECT setval(pg_get_serial_sequence('ledger_posting', 'id'), (SELECT max(id) FROM ledger_posting))")


def next_weekday_noon() -> datetime:
    """Noon (Paris) on the next weekday: inside every channel's contact window."""
    day = datetime.now(ZoneInfo("Europe/Paris")).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo("Europe/Paris"))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _postmaster_pid(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'").fetchone()
    return int((Path(row[0]) / "postmaster.pid").read_text().split()[0]) if row else 0


def _reaped_cpu(pid: int) -> float:
    """CPU seconds of the ended children of ``pid`` (cutime + cstime); 0 when not readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    """Wait until process ``pid`` has ended and been reaped (its ``/proc`` entry gone)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _database_copy(pg_url: str, name: str) -> str:
    """A copy of the benchmark's database (``CREATE DATABASE … TEMPLATE``), taken while nothing is connected."""
    base, _, source = pg_url.rpartition("/")
    with psycopg.connect(pg_url.rpartition("/")[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source.split("?")[0]}"')
    return f"{base}/{name}"


STAGED = {  # staging table: (the table, the tick's rows in it, the column splitting the two connections' halves)
    "floor_actions": ("comms_action", "id > %(action_after)s", "id"),
    "floor_audit": ("audit_auditevent", "seq > %(seq_after)s", "seq"),
    "floor_cases": ("cases_case", "id IN (SELECT case_id FROM comms_action WHERE id > %(action_after)s)", "id"),
}


def measure_floor(pg_url: str, floor_url: str, *, action_after: int, seq_after: int) -> float:
    """Seconds to write, server-side, exactly the rows the tick wrote, into the database as it was before it.

    The floor of any implementation of the tick with this schema: the tick's outbox actions and audit
    events (``INSERT … SELECT`` from staged copies, same values, every index, constraint and trigger) and
    its case changes (one ``UPDATE … FROM`` the staged rows), in two connections at once like the two
    workers, each in one transaction. No reads of claims, balances or events, no decision, no client
    round trip: the staging (untimed) leaves only the server's writing.
    """
    params = {"action_after": action_after, "seq_after": seq_after}
    with psycopg.connect(pg_url) as src, psycopg.connect(floor_url, autocommit=True) as dst:
        for stage, (table, where, _) in STAGED.items():
            dst.execute(f"CREATE UNLOGGED TABLE {stage} AS SELECT * FROM {table} WITH NO DATA")  # noqa: S608
            with (
                src.cursor().copy(
                    f"COPY (SELECT * FROM {table} WHERE {where % params}) TO STDOUT (FORMAT BINARY)"  # noqa: S608
                ) as out,
                dst.cursor().copy(f"COPY {stage} FROM STDIN (FORMAT BINARY)") as into,
            ):
                for block in out:
                    into.write(block)
        for stage in STAGED:
            dst.execute(f"VACUUM ANALYZE {stage}")
        columns = [
            r[0]
            for r in dst.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'cases_case' AND column_name <> 'id'"
            )
        ]

    def write_half(half: int) -> dict[str, int]:
        written: dict[str, int] = {}
        with psycopg.connect(floor_url) as conn, conn.transaction():
            for stage, (table, _, split) in STAGED.items():
                if table == "cases_case":
                    sets = ", ".join(f"{c} = s.{c}" for c in columns)
                    cursor = conn.execute(
                        f"UPDATE cases_case c SET {sets} FROM {stage} s WHERE c.id = s.id AND s.id %% 2 = %s",  # noqa: S608
                        [half],
                    )
                else:
                    cursor = conn.execute(
                        f"INSERT INTO {table} SELECT * FROM {stage} WHERE {split} %% 2 = %s",  # noqa: S608
                        [half],
                    )
                written[table] = cursor.rowcount
        return written

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        halves = list(pool.map(write_half, (0, 1)))
    seconds = time.perf_counter() - started
    print("floor rows written: " + ", ".join(f"{t} {sum(h[t] for h in halves):,}" for t in halves[0]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure the floor: the tick's own rows written server-side, with no client work",
    )
    args = parser.parse_args()
    pg_url = os.environ["PG_URL"]
    with psycopg.connect(pg_url) as conn:
        settings = conn.execute(
            "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings"
            " WHERE name IN ('shared_buffers', 'max_wal_size', 'work_mem')"
        ).fetchone()
    print(f"PostgreSQL {settings[0] if settings else '?'} (the same server for the engine and the baseline)")
    env = {**os.environ, "RELANCE_VAR_DIR": tempfile.mkdtemp(prefix="relance-bench-"), "SECRET_KEY": "bench"}
    subprocess.run([RELANCE, "migrate", "-v0"], check=True, env=env)
    subprocess.run([RELANCE, "shell", "-c", SEED_ONE], check=True, env=env)
    started = time.perf_counter()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with conn.transaction():
            clone_cases(conn, args.rows)
        conn.execute("VACUUM ANALYZE")
        print(f"set up {args.rows:,} active cases in {time.perf_counter() - started:.1f}s")
        now = next_weekday_noon()

        started = time.perf_counter()
        updated = conn.execute(
            "UPDATE cases_case SET next_action_at = next_action_at WHERE status IN ('new', 'active')"
            " AND next_action_at <= %s",
            [now],
        ).rowcount
        base_seconds = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE cases_case")
        marks = conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM comms_action),"
            " (SELECT coalesce(max(seq), 0) FROM audit_auditevent)"
        ).fetchone()
        setup_backend = conn.info.backend_pid
    # The set-up connection's backend (the cloning: tens of seconds of CPU) ends asynchronously once the
    # connection closes: wait for it, or its CPU would count as the engine's (reaped during the tick).
    _wait_gone(setup_backend)
    base_rate = updated / base_seconds
    print(f"baseline bare UPDATE of next_action_at: {updated:,} rows in {base_seconds:.2f}s = {base_rate:,.0f} rows/s")

    floor_url = ""
    if args.floor:  # the same starting state, for the floor: a copy of the database as it stands now
        floor_url = _database_copy(pg_url, "relance_floor")

    postmaster = _postmaster_pid(pg_url)
    pg_cpu_before, children_before = _reaped_cpu(postmaster), _children_cpu()
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            [RELANCE, "engine", "tick", "--no-dispatch", "--now", now.isoformat(), "--batch-size", str(args.batch)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(args.workers)
    ]
    outputs = [w.communicate()[0] for w in workers]
    seconds = time.perf_counter() - started
    if any(w.returncode for w in workers):
        raise SystemExit(f"a worker failed: {outputs}")
    decided = sum(int(m.group(1)) for out in outputs if (m := re.search(r"engine: (\d+) cases decided", out)))
    for n, out in enumerate(outputs, 1):
        print(f"worker {n}: {out.strip()}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rate = decided / seconds
    print(f"engine: {decided:,} cases decided in {seconds:.1f}s with {args.workers} workers")
    # CPU per case, the steadier figure on a shared machine: the worker processes (start-up included)
    # and PostgreSQL's processes that ended meanwhile (the workers' backends, autovacuum workers).
    workers_cpu = _children_cpu() - children_before
    pg_cpu = _reaped_cpu(postmaster) - pg_cpu_before
    print(
        f"engine CPU per case: workers {1e6 * workers_cpu / decided:.0f} us"
        f" + PostgreSQL {1e6 * pg_cpu / decided:.0f} us (ended backends)"
    )
    if args.floor and marks:
        floor_seconds = measure_floor(pg_url, floor_url, action_after=marks[0], seq_after=marks[1])
        floor_rate = decided / floor_seconds
        print(
            f"floor: the tick's own rows (actions, audit events, case updates) written server-side from staged"
            f" copies, 2 connections, no reads, no client work: {floor_seconds:.1f}s = {floor_rate:,.0f} cases/s;"
            f" best possible ratio {floor_rate / base_rate:.3f}"
        )
    print(f"engine: {rate:,.0f} cases/s; ratio {rate / base_rate:.3f} vs bare UPDATE; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
