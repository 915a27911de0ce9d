"""gunicorn's settings module: the worker count by where the database runs (decision 0008)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from relance.config.gunicorn import database_is_local, default_workers


@pytest.mark.parametrize(
    "url",
    [
        "",
        "sqlite:////var/lib/relance/relance.sqlite3",
        "postgres://relance:pw@127.0.0.1:5432/relance",
        "postgres://relance:pw@127.0.0.2/relance",
        "postgres://relance:pw@localhost/relance",
        "postgresql://relance:pw@[::1]:5432/relance",
        "postgres:///relance",  # libpq's default socket
        "postgres://relance@%2Fvar%2Frun%2Fpostgresql/relance",  # a socket directory
    ],
)
def test_local_databases(url: str) -> None:
    assert database_is_local(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://relance:pw@db.internal:5432/relance",
        "postgres://relance:pw@10.0.0.12/relance",
        "postgresql://relance:pw@[2001:db8::5]/relance",
    ],
)
def test_remote_databases(url: str) -> None:
    assert not database_is_local(url)


def test_workers_by_database_place() -> None:
    assert default_workers({"DATABASE_URL": "postgres://u:p@127.0.0.1/relance"}, 2) == 3
    assert default_workers({"DATABASE_URL": "postgres://u:p@db.internal/relance"}, 2) == 5
    assert default_workers({}, 4) == 5  # SQLite, the embedded default
    assert default_workers({"DATABASE_URL": "postgres://u:p@db.internal/relance"}, 0) == 3  # at least one core


def test_web_concurrency_wins() -> None:
    env = {"DATABASE_URL": "postgres://u:p@db.internal/relance", "WEB_CONCURRENCY": " 7 "}
    assert default_workers(env, 2) == 7
    with pytest.raises(ValueError, match="WEB_CONCURRENCY"):
        default_workers({"WEB_CONCURRENCY": "0"}, 2)


def test_gunicorn_reads_the_module() -> None:
    """gunicorn itself loads the settings (``-c python:…``) and gets the worker count from them."""
    code = (
        "from gunicorn.app.wsgiapp import WSGIApplication as A;"
        "import sys; sys.argv = ['gunicorn', '-c', 'python:relance.config.gunicorn',"
        " 'relance.config.wsgi:application'];"
        "a = A(); print(a.cfg.workers, a.cfg.worker_class_str, a.cfg.bind)"
    )
    env = {"DATABASE_URL": "postgres://u:p@db.internal/relance", "WEB_CONCURRENCY": "4", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert out.split() == ["4", "sync", "['127.0.0.1:8000']"]
