"""Benchmark: import a realistic French-format CSV into PostgreSQL, against a raw COPY of the same file.

Run with `make bench-intake` (ROWS=1000000 by default), which starts a throwaway PostgreSQL.
Prints rows/s of the full import (parsing, validation, debtor matching, cases, ledger placement and
audit, committed in chunks) and of a bare `COPY` of the same file into a table of text columns,
measured in the same run, and the import process's peak RSS. The last line is the headline.

With ``--floor`` it also measures what the data model alone costs the server: every row the import
wrote (debtors, claims, cases, ledger, audit, …) is copied out, then copied back into a freshly migrated
database with all its indexes, constraints and triggers — ``COPY`` per table in foreign-key order, no
Python at all. That time bounds any implementation of the import with this schema from below, so
``rows / floor`` against the ``COPY`` baseline is the best ratio the data model allows.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_claims import HEADER, generate

ROOT = Path(__file__).resolve().parent.parent
RELANCE = str(ROOT / ".venv" / "bin" / "relance")


def copy_baseline(pg_url: str, path: Path) -> float:
    columns = ", ".join(f'"{name}" text' for name in HEADER.strip().split(";"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute(f"CREATE UNLOGGED TABLE bench_raw ({columns})")
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY bench_raw FROM STDIN WITH (FORMAT csv, DELIMITER ';', HEADER true, ENCODING 'WIN1252')"
            ) as copy,
            path.open("rb") as src,
        ):
            while block := src.read(1 << 20):
                copy.write(block)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw")
    return elapsed


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        ]
        count = sql.SQL("SELECT count(*) FROM {}")
        return {name: conn.execute(count.format(sql.Identifier(name))).fetchone()[0] for name in names}  # type: ignore[index]


def fk_order(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """The tables with each one after those it references (self-references ignored)."""
    edges = conn.execute(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c WHERE c.contype = 'f'"
    ).fetchall()
    needs = {name: {ref.strip('"') for src, ref in edges if src.strip('"') == name} for name in tables}
    ordered: list[str] = []
    while needs:
        ready = sorted(name for name, refs in needs.items() if not (refs & needs.keys()) - {name})
        if not ready:
            raise RuntimeError(f"foreign-key cycle among {sorted(needs)}")
        ordered += ready
        for name in ready:
            del needs[name]
    return ordered


def copy_out(conn: psycopg.Connection, table: str, path: Path, *, skip: int, take: int | None) -> Path:
    """The table's rows in key order (its first column), ``skip`` first ones left out, at most ``take``."""
    query = sql.SQL("COPY (SELECT * FROM {} ORDER BY 1 OFFSET {} {}) TO STDOUT (FORMAT binary)").format(
        sql.Identifier(table),
        sql.Literal(skip),
        sql.SQL("") if take is None else sql.SQL("LIMIT {}").format(sql.Literal(take)),
    )
    with conn.cursor() as cur, cur.copy(query) as copy, path.open("wb") as out:
        for block in copy:
            out.write(block)
    return path


def copy_in(conn: psycopg.Connection, table: str, path: Path) -> None:
    statement = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.Identifier(table))
    with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy, path.open("rb") as src:
        while block := src.read(1 << 20):
            copy.write(block)


def data_model_floor(pg_url: str, before: dict[str, int], folder: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds to COPY the import's rows back into a fresh schema, and how many rows that was.

    Rows that were there before the import (the creditor, …) are copied first, untimed, unless the
    fresh migration already made them."""
    after = table_counts(pg_url)
    floor_env = {**env, "DATABASE_URL": env["DATABASE_URL"].rsplit("/", 1)[0] + "/relance_floor"}
    floor_url = pg_url.rsplit("/", 1)[0] + "/relance_floor"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE relance_floor OWNER relance")
    relance("migrate", "-v0", env=floor_env)
    fresh = table_counts(floor_url)
    earlier = [name for name, count in before.items() if count and not fresh.get(name)]
    written = [name for name, count in after.items() if count > before.get(name, 0)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        old = {name: copy_out(conn, name, folder / f"{name}.old", skip=0, take=before[name]) for name in earlier}
        new = {
            name: copy_out(conn, name, folder / f"{name}.new", skip=before.get(name, 0), take=None) for name in written
        }
    with psycopg.connect(floor_url, autocommit=True) as conn:
        for name in fk_order(conn, earlier):
            copy_in(conn, name, old[name])
        order = fk_order(conn, written)
        took: dict[str, float] = {}
        for name in order:
            started = time.perf_counter()
            copy_in(conn, name, new[name])
            took[name] = time.perf_counter() - started
    rows = sum(after[name] - before.get(name, 0) for name in written)
    print(
        "floor per table (rows, seconds): "
        + ", ".join(f"{name} {after[name] - before.get(name, 0):,} {took[name]:.2f}s" for name in order)
    )
    return sum(took.values()), rows


def relance(*args: str, env: dict[str, str]) -> None:
    subprocess.run([RELANCE, *args], check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--floor", action="store_true", help="also measure the data model's floor (see above)")
    args = parser.parse_args()
    pg_url, db_url = os.environ["PG_URL"], os.environ["DATABASE_URL"]
    env = {**os.environ, "RELANCE_VAR_DIR": tempfile.mkdtemp(prefix="relance-bench-"), "SECRET_KEY": "bench"}

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} rows ({size_mb:,.0f} MB, French Excel CSV) in {took:.1f}s")

        copy_seconds = copy_baseline(pg_url, path)
        copy_rate = args.rows / copy_seconds
        print(f"baseline COPY into a bare table: {copy_seconds:.2f}s = {copy_rate:,.0f} rows/s")

        relance("migrate", "-v0", env=env)
        relance(
            "shell",
            "-c",
            "from relance.tenancy.models import Agency, Creditor; "
            "Creditor.objects.create(agency=Agency.objects.create(legal_name='Bench'), "
            "slug='bench', legal_name='Bench SAS')",
            env=env,
        )
        counts = table_counts(pg_url) if args.floor else {}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            [RELANCE, "import", str(path), "--creditor", "bench", "--chunk", str(args.chunk)],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        import_seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = after.ru_maxrss / 1024
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        print(result.stdout.strip())
        rate = args.rows / import_seconds
        print(f"import: {import_seconds:.1f}s = {rate:,.0f} rows/s (database {db_url.rsplit('@', 1)[-1]})")
        # The machine may be shared: the Python processes' CPU time says what the import itself costs.
        print(f"import processes' CPU time (parent + parse worker): {cpu:.1f}s; load average {os.getloadavg()[0]:.1f}")
        if args.floor:
            floor_seconds, floor_rows = data_model_floor(pg_url, counts, Path(tmp), env)
            best = args.rows / floor_seconds
            print(
                f"data-model floor: {floor_rows:,} rows in {floor_seconds:.1f}s by COPY into the real schema "
                f"= {best:,.0f} claims/s at most; best possible ratio {best / copy_rate:.3f} vs COPY"
            )
        print(f"intake: {rate:,.0f} rows/s; ratio {rate / copy_rate:.3f} vs COPY; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
