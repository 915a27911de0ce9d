"""Benchmark: the debtor portal's landing and case pages under 50 concurrent clients, gunicorn + PostgreSQL.

Run with `make bench-portal`, which starts a throwaway PostgreSQL and installs Debian's `wrk` (the load
generator, in C, so that the two cores go to the server) when it is missing. The server runs with the
production settings (`RELANCE_ENV=production`, DEBUG off). Four loads, each for the
same duration (20 s) with the same connections, taking turns (``--rounds`` 4: each load runs 5 s, then
the next, four times round), so that a shared machine's changes of speed during the run weigh on every
load alike (before the sixth session each load ran its 20 s in one go, one after another):

gunicorn runs with Relance's own settings module (`-c python:relance.config.gunicorn`, as
docs/operations.md has operators run it): sync workers, `cores + 1` of them here since PostgreSQL runs on
this machine (decision 0008; before the seventh session, `2 × cores + 1`; `--workers N` sets another count).

- **baseline**: `/healthz`, a trivial Django view on the same stack (same middleware, same workers);
- **landing**: the personal link's page (`/p/<token>/`: the verification form, no personal data);
- **case page**: the verified debtor's page (`/p/<token>/dossier/`: claims and balances from the
  ledger, payments, evidence, transfer details with the RF reference and the EPC QR code), each request
  for another case, with the signed cookie its debtor's browser holds after verification;
- **QR code** (informative): the case page's EPC QR code image (`/p/<token>/dossier/transfer-qr.svg`,
  same cookie), as a browser fetches it on a first view (later views use the browser's copy).

Prints requests/s (over all of a load's turns), p50 (the median of its turns') and p99 (the highest
of its turns') latency for each, the ratio of each page against the baseline and the
peak RSS of the largest gunicorn worker. The last line is the headline (the case page, the heavier one).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
LUA = """
local targets = {}
for line in io.lines(os.getenv("BENCH_TARGETS")) do
  local path, cookie = line:match("([^\\t]+)\\t?(.*)")
  targets[#targets + 1] = {path, cookie}
end
local i = 0
function setup(thread) thread:set("offset", math.random(#targets)) end
request = function()
  i = i + 1
  local t = targets[((i + (offset or 0)) % #targets) + 1]
  local headers = {["X-Forwarded-Proto"] = "https", ["Accept-Language"] = "fr"}
  if t[2] ~= "" then headers["Cookie"] = "relance_portal=" .. t[2] end
  return wrk.format("GET", t[1], headers)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(cases: int) -> tuple[list[str], list[tuple[str, int]]]:
    """Migrate, place ``cases`` claims through the real services; return the landing pages and the case
    pages with their case ids (the debtor's verification cookie is signed just before each load)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from relance.cases.links import portal_token
    from relance.intake.services import claim_place
    from relance.tenancy.actors import Actor
    from relance.tenancy.models import Agency, Creditor

    sys.path.insert(0, str(ROOT / "tests"))
    from support import claim_data

    call_command("migrate", verbosity=0)
    agency = Agency.objects.create(
        legal_name="Recouvrement Bench SAS",
        address="1 place Test, 75001 Paris",
        trust_iban="FR7630006000011234567890189",
    )
    creditor = Creditor.objects.create(
        agency=agency, slug="bench", legal_name="Boutique Bench SAS", address="2 rue du Commerce, 75002 Paris", mode="B"
    )
    actor = Actor.system("bench")
    landing: list[str] = []
    pages: list[tuple[str, int]] = []
    for n in range(cases):
        data = claim_data(f"BENCH-{n}", f"{20 + n % 400}.50", email=f"debiteur{n}@example.fr", last_name=f"Nom{n}")
        data = replace(data, due_date=timezone.localdate() - timedelta(days=10))
        case = claim_place(creditor=creditor, data=data, actor=actor).case
        token = portal_token(case_id=case.pk, reference=case.reference)
        landing.append(f"/p/{token}/")
        pages.append((f"/p/{token}/dossier/", case.pk))
    # The statistics autovacuum gathers within about a minute of a bulk load (PostgreSQL's advice: ANALYZE
    # after loading). Without them the planner takes the just-filled tables for empty, and the case
    # page's prepared statement (a generic plan) hashes full scans of the claims and ledger transactions:
    # a cost that grows with the tables, that a database in use does not pay, and that the bench paid or
    # not depending on whether autovacuum came before the case page's load (docs/benchmarks.md, Portal,
    # fifth session). Nothing in the application changes.
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return landing, pages


def verified(pages: list[tuple[str, int]], suffix: str = "") -> str:
    """wrk's targets: each case page with the cookie its debtor's browser holds after verifying the case
    (``portal.access``), signed now: a browser's copy is never more than a minute old while it reads
    pages (each page re-issues an older one), so the pages of a load do not re-issue it."""
    from relance.portal.access import sign

    return "".join(f"{path}{suffix}\t{sign([case_id])}\n" for path, case_id in pages)


def wrk(
    url: str, targets: Path, *, seconds: int, connections: int, threads: int, sampler: CpuSampler | None = None
) -> tuple[float, float, float, int, int]:
    """Run one load; (requests/s, p50 ms, p99 ms, failed, requests)."""
    script = targets.with_suffix(".lua")
    script.write_text(LUA)
    process = subprocess.Popen(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BENCH_TARGETS": str(targets)},
    )
    if sampler is not None:
        sampler.start(wrk_pid=process.pid)
    out, _ = process.communicate()
    if sampler is not None:
        sampler.stop()
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, "wrk")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(int(n) for n in errors.groups()) if errors else 0)
    return rps, p50, p99, failed, requests


TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int | None:
    """User + system CPU of a process (all its threads), in clock ticks; ``None`` once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def _machine_ticks() -> int:
    """Busy CPU of the whole machine (user, nice, system, irq, softirq), in clock ticks."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6))


def _postmaster(port: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/postgres") and f"-p {port}".encode() in b" ".join(argv):
            return int(entry.name)
    return None


class CpuSampler:
    """CPU time per process class (gunicorn master and workers, PostgreSQL server processes, wrk) and of
    the whole machine during one load, sampled from /proc every 100 ms so that a process ending during
    the load (a backend reconnecting) still counts up to its last sample."""

    def __init__(self, server_pid: int, pg_port: str) -> None:
        self.server_pid = server_pid
        self.postmaster = _postmaster(pg_port)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _classes(self) -> dict[int, str]:
        found = {self.server_pid: "gunicorn", **dict.fromkeys(children(self.server_pid), "gunicorn")}
        if self.postmaster is not None:
            found[self.postmaster] = "postgres"
            found.update(dict.fromkeys(children(self.postmaster), "postgres"))
        if self.wrk_pid is not None:
            found[self.wrk_pid] = "wrk"
        return found

    def _sample(self) -> None:
        for pid, name in self._classes().items():
            ticks = _cpu_ticks(pid)
            if ticks is not None:
                self.first.setdefault(pid, (name, 0 if self.started else ticks))
                self.last[pid] = ticks

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def start(self, *, wrk_pid: int | None) -> None:
        self.wrk_pid = wrk_pid
        self.first: dict[int, tuple[str, int]] = {}
        self.last: dict[int, int] = {}
        self.started = False
        self._sample()
        self.started = True  # processes first seen from now on started during the load: from zero
        self.machine = _machine_ticks()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.machine = _machine_ticks() - self.machine

    def spent(self) -> dict[str, int]:
        """CPU ticks of the last load per class (``gunicorn``, ``postgres``, ``wrk``) and of the ``machine``."""
        spent: dict[str, int] = {"machine": self.machine}
        for pid, (name, first) in self.first.items():
            spent[name] = spent.get(name, 0) + self.last[pid] - first
        return spent


def per_request(spent: dict[str, int], requests: int) -> str:
    """CPU milliseconds per request of each class, the machine's, and what no class accounts for."""
    parts = [f"{name} {spent.get(name, 0) * TICK_MS / requests:.2f}" for name in ("gunicorn", "postgres", "wrk")]
    rest = spent["machine"] - sum(spent.get(name, 0) for name in ("gunicorn", "postgres", "wrk"))
    return (
        f"CPU ms per request: {'; '.join(parts)}; machine {spent['machine'] * TICK_MS / requests:.2f} "
        f"(of which other {rest * TICK_MS / requests:.2f}: kernel network, other processes)"
    )


def _combined(parts: list[tuple[float, float, float, int, int]]) -> tuple[float, float, float, int, int]:
    """One load's turns as one: requests/s over all its time, the median of the turns' p50 and the
    highest of their p99 (wrk reports percentiles per run, which do not add up), failures and requests."""
    requests = sum(part[4] for part in parts)
    seconds = sum(part[4] / part[0] for part in parts if part[0])
    p50s = sorted(part[1] for part in parts)
    return (
        requests / seconds if seconds else 0.0,
        p50s[len(p50s) // 2],
        max(part[2] for part in parts),
        sum(part[3] for part in parts),
        requests,
    )


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _wait_ready(url: str, *, seconds: float = 120) -> None:
    """Until the workers answer (the master accepts connections before the workers have loaded Django)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if match := re.search(r"VmHWM:\s+(\d+) kB", status):
            peak = max(peak, int(match.group(1)))
    return peak / 1024


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def _database_port() -> str:
    return os.environ["DATABASE_URL"].rpartition(":")[2].partition("/")[0]


def _superuser() -> Any:
    import psycopg

    return psycopg.connect(os.environ["PG_URL"], autocommit=True)


def _statements_reset() -> bool:
    """Empty pg_stat_statements; ``False`` when it is not loaded (``--cpu`` with
    ``RELANCE_PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements"``)."""
    import psycopg

    if "PG_URL" not in os.environ:
        return False
    try:
        with _superuser() as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            db.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error:  # not loaded: the report leaves it out
        return False
    return True


def _statements_add(found: dict[str, list[float]]) -> None:
    """Add PostgreSQL's own figures of the slice just run (calls, planning + execution ms) to ``found``."""
    with _superuser() as db:
        rows = db.execute(
            "SELECT calls, total_plan_time + total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
            "FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'"
        ).fetchall()
    for calls, ms, query in rows:
        totals = found.setdefault(query, [0.0, 0.0])
        totals[0] += calls
        totals[1] += ms


def _statements_report(found: dict[str, list[float]], requests: int) -> str:
    """PostgreSQL's own time per request for the statements of a load (planning and execution)."""
    rows = sorted(found.items(), key=lambda item: -item[1][1])[:6]
    return "\n".join(
        f"pg {ms / requests:.3f} ms/request, {calls / requests:.2f} calls/request: {query}"
        for query, (calls, ms) in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--workers",
        type=int,
        help="gunicorn sync workers (default: Relance's gunicorn settings, relance.config.gunicorn: cores + 1 here,"
        " as PostgreSQL runs on this machine)",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="also print the CPU time per request of gunicorn, PostgreSQL, wrk and the machine (from /proc), "
        "and PostgreSQL's own time per statement when pg_stat_statements is loaded",
    )
    parser.add_argument("--loads", default="healthz,landing,case,qr", help="which loads to run (comma-separated)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="the loads take turns this many times, each for --seconds / --rounds (1: each load once, in a row)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench-portal needs wrk (Debian package 'wrk'); `make bench-portal` installs it")
    os.environ.update(
        RELANCE_ENV="production",
        SECRET_KEY="bench-only-not-secret",
        ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="relance.config.settings",
        RELANCE_VAR_DIR=tempfile.mkdtemp(prefix="relance-bench-"),
    )
    landing, pages = prepare(args.cases)
    folder = Path(tempfile.mkdtemp(prefix="relance-wrk-"))
    (folder / "healthz.txt").write_text("/healthz\n")
    (folder / "landing.txt").write_text("".join(f"{p}\n" for p in landing))

    port = free_port()
    if args.workers:
        workers, how = args.workers, "--workers"
    else:  # the count gunicorn takes from Relance's settings module, in this environment (decision 0008)
        from relance.config import gunicorn as gunicorn_settings  # after the environment is set

        workers, how = gunicorn_settings.workers, "relance.config.gunicorn: PostgreSQL on this machine, cores + 1"
        if not gunicorn_settings.database_is_local(os.environ["DATABASE_URL"]) or os.environ.get("WEB_CONCURRENCY"):
            how = "relance.config.gunicorn"
    server = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "relance.config.wsgi:application",
            "--config=python:relance.config.gunicorn",  # what docs/operations.md has operators run
            *([f"--workers={args.workers}"] if args.workers else []),
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
        ],
        env=os.environ.copy(),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url + "/healthz")
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", url + "/healthz"], check=True, capture_output=True)  # warm-up
        names = args.loads.split(",")
        slices: dict[str, list[tuple[float, float, float, int, int]]] = {name: [] for name in names}
        spent: dict[str, dict[str, int]] = {name: {} for name in names}
        statements: dict[str, dict[str, list[float]]] = {name: {} for name in names}
        sampler = CpuSampler(server.pid, _database_port()) if args.cpu else None
        # The loads take turns (baseline, landing, case page, …, then again): a machine that slows down
        # or speeds up during the run (a shared host) weighs on every load alike, not on one of them.
        for _round in range(args.rounds):
            for name in names:
                if name == "case":
                    (folder / "case.txt").write_text(verified(pages))
                elif name == "qr":
                    (folder / "qr.txt").write_text(verified(pages, "transfer-qr.svg"))
                counted = _statements_reset() if args.cpu else False
                slices[name].append(
                    wrk(
                        url,
                        folder / f"{name}.txt",
                        seconds=max(1, round(args.seconds / args.rounds)),
                        connections=args.connections,
                        threads=2,
                        sampler=sampler,
                    )
                )
                if sampler is not None:
                    for key, ticks in sampler.spent().items():
                        spent[name][key] = spent[name].get(key, 0) + ticks
                    if counted:
                        _statements_add(statements[name])
        results = {name: _combined(parts) for name, parts in slices.items()}
        cpu: dict[str, str] = {}
        if sampler is not None:
            for name in names:
                requests = results[name][4]
                cpu[name] = per_request(spent[name], requests)
                if statements[name]:
                    cpu[name] += "\n" + _statements_report(statements[name], requests)
        rss = peak_rss_mb(children(server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    base = results.get("healthz", (1.0,))[0]
    print(
        f"workers: {workers} gunicorn sync workers ({how}); {args.connections} connections; {args.seconds} s each "
        f"in {args.rounds} turns; {args.cases} cases"
    )
    loads = (
        ("healthz", "trivial view /healthz"),
        ("landing", "landing page"),
        ("case", "case page"),
        ("qr", "QR code image (informative)"),
    )
    for name, label in loads:
        if name not in results:
            continue
        rps, p50, p99, bad, _ = results[name]
        print(f"{label}: {rps:,.0f} req/s; p50 {p50:.1f} ms; p99 {p99:.1f} ms; ratio {rps / base:.3f}; failed {bad}")
        if name in cpu:
            print("    " + cpu[name].replace("\n", "\n    "))
    rps = results.get("case", (0.0,))[0]
    print(f"portal: {rps:,.0f} req/s; ratio {rps / base:.2f} vs trivial Django view; peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
