"""Benchmark: import a realistic French-format CSV into PostgreSQL, against a raw COPY of the same file.

Run with `make bench-intake` (ROWS=1000000 by default), which starts a throwaway PostgreSQL.
Prints rows/s of the full import (parsing, validation, debtor matching, cases, ledger placement and
audit, committed in chunks) and of a bare `COPY` of the same file into a table of text columns,
measured in the same run, and the import process's peak RSS. The last line is the headline.
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


def relance(*args: str, env: dict[str, str]) -> None:
    subprocess.run([RELANCE, *args], check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=2000)
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
        print(f"intake: {rate:,.0f} rows/s; ratio {rate / copy_rate:.3f} vs COPY; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
