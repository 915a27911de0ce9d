"""gunicorn's settings for Relance's web process (docs/operations.md, decision 0008).

    gunicorn -c python:relance.config.gunicorn relance.config.wsgi:application

Sync workers (each serves one request at a time; put a buffering proxy such as nginx in front).
How many: ``WEB_CONCURRENCY`` when set (gunicorn's own convention), else by where PostgreSQL runs:

- on another machine: ``2 × cores + 1``, gunicorn's rule of thumb — a page waits on the network for
  the database, and another worker uses the core meanwhile;
- on this machine (``DATABASE_URL``'s host is loopback or a socket directory), or SQLite:
  ``cores + 1``. The database's own processes then share the cores, a page waits little for it, and
  more workers only take turns on the same cores, each page finishing on caches the others have
  cooled. Measured on two cores (docs/benchmarks.md, Portal, seventh session): a case page cost 1.26–1.36 ms
  of worker CPU with 3 workers, 1.56–1.75 ms with 5, at the same ``/healthz`` cost.

``cores`` are the CPUs this process may run on (``os.sched_getaffinity``: a container's CPU set,
not the host's). ``RELANCE_BIND`` sets the address (default ``127.0.0.1:8000``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import ip_address
from urllib.parse import unquote, urlsplit

_LOOPBACK_NAMES = frozenset({"", "localhost", "localhost.localdomain"})


def database_is_local(database_url: str) -> bool:
    """Whether ``database_url`` names a database on this machine (SQLite, loopback, a socket directory)."""
    if not database_url or database_url.startswith("sqlite"):
        return True
    parts = urlsplit(database_url)
    host = unquote(parts.hostname or "")
    if host.startswith("/") or host in _LOOPBACK_NAMES:
        return True  # no host (libpq's default socket), a socket directory, or the local name
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False  # another machine's name


def default_workers(environ: Mapping[str, str], cores: int) -> int:
    """The number of sync workers for ``environ`` on ``cores`` CPUs (module docstring)."""
    given = environ.get("WEB_CONCURRENCY", "").strip()
    if given:
        count = int(given)
        if count < 1:
            raise ValueError(f"WEB_CONCURRENCY must be at least 1, not {given!r}")
        return count
    cores = max(cores, 1)
    return cores + 1 if database_is_local(environ.get("DATABASE_URL", "")) else 2 * cores + 1


def _cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere every CPU of the machine
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


bind = os.environ.get("RELANCE_BIND", "127.0.0.1:8000")
worker_class = "sync"
workers = default_workers(os.environ, _cores())
