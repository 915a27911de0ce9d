"""The memory benchmark's streaming side still runs (a bench nobody can run measures nothing).

``bench/intake_rss.py`` drives the import's own parsing and validation (``imports._checked``) over a
generated French CSV; this runs it on a few hundred rows and reads its headline. No timing is checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_streaming_memory_benchmark_runs_and_prints_its_headline(tmp_path):
    env = {**os.environ, "RELANCE_VAR_DIR": str(tmp_path), "SECRET_KEY": "bench"}
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(ROOT / "bench" / "intake_rss.py"), "--rows", "500"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "500 valid rows parsed and checked" in result.stdout
    headline = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"intake-stream: 500 rows; ratio [0-9.]+ vs RSS before; peak RSS \d+ MB", headline)
