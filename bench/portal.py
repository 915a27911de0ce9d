"""Benchmark: the debtor portal's landing and case pages under 50 concurrent clients, gunicorn + PostgreSQL.

Run with `make bench-portal`, which starts a throwaway PostgreSQL and installs Debian's `wrk` (the load
generator, in C, so that the two cores go to the server) when it is missing. The server runs with the
production settings (`RELANCE_ENV=production`, DEBUG off, database sessions). Three loads, each for the
same duration with the same connections, one after another:

- **baseline**: `/healthz`, a trivial Django view on the same stack (same middleware, same workers);
- **landing**: the personal link's page (`/p/<token>/`: the verification form, no personal data);
- **case page**: the verified debtor's page (`/p/<token>/dossier/`: claims and balances from the
  ledger, payments, evidence, transfer details with the RF reference and the EPC QR code), each request
  for another case, with its own verified session;
- **QR code** (informative): the case page's EPC QR code image (`/p/<token>/dossier/transfer-qr.svg`,
  same session), as a browser fetches it on a first view (later views use the browser's copy).

Prints requests/s, p50 and p99 latency for each, the ratio of each page against the baseline and the
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
import time
import urllib.request
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

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
  if t[2] ~= "" then headers["Cookie"] = "sessionid=" .. t[2] end
  return wrk.format("GET", t[1], headers)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(cases: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Migrate, place ``cases`` claims through the real services; return landing and case targets."""
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore
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
    pages: list[tuple[str, str]] = []
    for n in range(cases):
        data = claim_data(f"BENCH-{n}", f"{20 + n % 400}.50", email=f"debiteur{n}@example.fr", last_name=f"Nom{n}")
        data = replace(data, due_date=timezone.localdate() - timedelta(days=10))
        case = claim_place(creditor=creditor, data=data, actor=actor).case
        token = portal_token(case_id=case.pk, reference=case.reference)
        session = SessionStore()
        session["portal_cases"] = [case.pk]  # what the verification step stores (portal/views.py)
        session.set_expiry(3600)
        session.create()
        landing.append(f"/p/{token}/")
        pages.append((f"/p/{token}/dossier/", session.session_key or ""))
    return landing, pages


def wrk(url: str, targets: Path, *, seconds: int, connections: int, threads: int) -> tuple[float, float, float, int]:
    script = targets.with_suffix(".lua")
    script.write_text(LUA)
    out = subprocess.run(
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
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_TARGETS": str(targets)},
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(int(n) for n in errors.groups()) if errors else 0)
    return rps, p50, p99, failed


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
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
    (folder / "case.txt").write_text("".join(f"{p}\t{s}\n" for p, s in pages))
    (folder / "qr.txt").write_text("".join(f"{p}transfer-qr.svg\t{s}\n" for p, s in pages))

    port = free_port()
    server = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "relance.config.wsgi:application",
            f"--workers={args.workers}",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
        ],
        env=os.environ.copy(),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url + "/healthz")
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", url + "/healthz"], check=True, capture_output=True)  # warm-up
        results = {}
        for name in ("healthz", "landing", "case", "qr"):
            results[name] = wrk(
                url, folder / f"{name}.txt", seconds=args.seconds, connections=args.connections, threads=2
            )
        rss = peak_rss_mb(children(server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    base = results["healthz"][0]
    print(
        f"workers: {args.workers} gunicorn sync workers; {args.connections} connections; {args.seconds} s each; "
        f"{args.cases} cases"
    )
    loads = (
        ("healthz", "trivial view /healthz"),
        ("landing", "landing page"),
        ("case", "case page"),
        ("qr", "QR code image (informative)"),
    )
    for name, label in loads:
        rps, p50, p99, bad = results[name]
        print(f"{label}: {rps:,.0f} req/s; p50 {p50:.1f} ms; p99 {p99:.1f} ms; ratio {rps / base:.2f}; failed {bad}")
    rps = results["case"][0]
    print(f"portal: {rps:,.0f} req/s; ratio {rps / base:.2f} vs trivial Django view; peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
