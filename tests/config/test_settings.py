"""Settings come from the environment; production refuses unsafe defaults (issue 2, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
)


def run_with(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "RELANCE_ENV"}}
    return subprocess.run(  # noqa: S603 - our own interpreter and a constant program
        [sys.executable, "-c", PROBE],
        env={**clean, "DJANGO_SETTINGS_MODULE": "relance.config.settings", "RELANCE_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key(tmp_path) -> None:
    result = run_with({"RELANCE_ENV": "production", "DATABASE_URL": "postgres://x@127.0.0.1/x"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_a_database_url(tmp_path) -> None:
    result = run_with({"RELANCE_ENV": "production", "SECRET_KEY": "s" * 50}, tmp_path)
    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr


def test_the_embedded_default_is_sqlite_with_a_private_generated_key(tmp_path) -> None:
    result = run_with({}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"
    key_file = tmp_path / "secret_key"
    assert len(key_file.read_text()) >= 50
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
