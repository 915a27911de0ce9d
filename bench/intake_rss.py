"""Memory check of the streaming side of an import at 5,000,000 rows, without a database.

`make bench-intake-rss` (ROWS=5000000 by default). Runs what grows with the file on the import's
parsing side — reading, parsing, validation and the in-file duplicate-reference check — over a
generated French CSV, and prints the peak RSS at every fifth of the file. The database side works chunk by
chunk (a chunk's rows, then commit) and does not grow with the file; `make bench-intake` measures
the whole import's RSS at 1,000,000 rows. The last line is the headline.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_claims import generate


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relance.config.settings")
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("RELANCE_VAR_DIR", tempfile.mkdtemp(prefix="relance-bench-"))
    import django

    django.setup()
    from relance.intake import imports
    from relance.intake.models import ImportBatch
    from relance.tenancy.models import Creditor

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:,.0f} MB) in {time.perf_counter() - started:.0f}s")
        baseline = peak_mb()
        # Not saved: the streaming side reads the creditor's mandate requirements, nothing else.
        batch = ImportBatch(filename="claims.csv", mapping={}, creditor=Creditor(slug="bench", legal_name="Bench SAS"))
        started = time.perf_counter()
        valid = 0
        step = max(args.rows // 5, 1)
        with path.open("rb") as raw:
            for n, row in enumerate(imports._checked(batch, raw, date(2026, 11, 25)), start=1):
                valid += row.clean is not None
                if n % step == 0:
                    print(f"{n:>10,} rows: peak RSS {peak_mb():.0f} MB")
        took = time.perf_counter() - started
        print(f"{valid:,} valid rows parsed and checked in {took:.0f}s ({args.rows / took:,.0f} rows/s)")
        ratio = peak_mb() / baseline
        print(f"intake-stream: {args.rows:,} rows; ratio {ratio:.2f} vs RSS before; peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
