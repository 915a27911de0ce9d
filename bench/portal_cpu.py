"""The portal pages' CPU per request, measured in one warm process (a diagnostic, not a goal benchmark).

``make bench-portal``'s figures move with the machine's load; this is the steadier measure used in
docs/benchmarks.md (Portal, fifth session) to compare two versions of the code on the same database.
Run it under a throwaway PostgreSQL:

    RELANCE_TEST_PGPORT=54392 scripts/with-postgres.sh .venv/bin/python bench/portal_cpu.py

Set-up as ``bench/portal.py`` (``--cases`` claims placed through the real services, production
settings: ``RELANCE_ENV=production``, DEBUG off). Then, for ``/healthz``, the landing page and the case
page (each request for another case, the case page with the debtor's signed verification cookie): one
warm-up batch, then ``--reps`` batches of ``--requests`` requests through Django's ``WSGIHandler`` in
this process (middleware, view, the page's one prepared read, rendering, response); prints the lowest
CPU time (``time.process_time``) per request of the batches, and the mean CPU time per request of the
PostgreSQL server process serving this connection (from ``/proc``). ``--profile case`` (or ``landing``) adds
a cProfile of that page.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--requests", type=int, default=200, help="requests per batch")
    parser.add_argument("--reps", type=int, default=10, help="batches per page (the lowest counts)")
    parser.add_argument("--profile", choices=["healthz", "landing", "case"], help="cProfile that page after")
    args = parser.parse_args()

    os.environ.update(
        RELANCE_ENV="production",
        SECRET_KEY="bench-only-not-secret",
        ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="relance.config.settings",
        RELANCE_VAR_DIR=tempfile.mkdtemp(),
    )
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("run under scripts/with-postgres.sh (DATABASE_URL of a throwaway PostgreSQL)")
    import portal

    landing, pages = portal.prepare(args.cases)
    from django.core.handlers.wsgi import WSGIHandler

    from relance.portal.access import sign

    handler = WSGIHandler()
    cookies = [sign([case_id]) for _path, case_id in pages]

    def environ(path: str, cookie: str = "") -> dict[str, object]:
        env: dict[str, object] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_X_FORWARDED_PROTO": "https",
            "HTTP_ACCEPT_LANGUAGE": "fr",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
        }
        if cookie:
            env["HTTP_COOKIE"] = "relance_portal=" + cookie
        return env

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"unexpected {status}")

    def request_for(kind: str) -> Callable[[int], dict[str, object]]:
        if kind == "healthz":
            return lambda i: environ("/healthz")
        if kind == "landing":
            return lambda i: environ(landing[i % len(landing)])
        return lambda i: environ(pages[i % len(pages)][0], cookies[i % len(pages)])

    def run(kind: str, n: int) -> None:
        make = request_for(kind)
        for i in range(n):
            response = handler(make(i), start_response)
            b"".join(response)
            response.close()

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = f"/proc/{cursor.fetchone()[0]}/stat"  # the server process of this process's connection
    tick = os.sysconf("SC_CLK_TCK")

    def server_cpu() -> float:
        fields = Path(backend).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime, seconds

    best: dict[str, float] = {}
    for kind in ("healthz", "landing", "case"):
        run(kind, args.requests)  # warm-up: templates compiled, statements prepared, caches filled
        lowest = float("inf")
        server = 0.0
        for _ in range(args.reps):
            started, server_started = time.process_time(), server_cpu()
            run(kind, args.requests)
            lowest = min(lowest, (time.process_time() - started) / args.requests)
            server += server_cpu() - server_started
        best[kind] = lowest * 1000
        print(
            f"{kind}: {best[kind]:.3f} ms CPU per request (lowest of {args.reps} x {args.requests}); "
            f"PostgreSQL {server * 1000 / (args.reps * args.requests):.3f} ms (mean)"
        )
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        run(args.profile, 2000)
        profile.disable()
        stats = pstats.Stats(profile)
        if os.environ.get("PORTAL_CPU_PSTATS"):
            stats.dump_stats(os.environ["PORTAL_CPU_PSTATS"])
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(50)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"portal-cpu: {best['case']:.3f} ms CPU per case page (landing {best['landing']:.3f}); "
        f"ratio {best['healthz'] / best['case']:.2f} vs /healthz in-process; peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
