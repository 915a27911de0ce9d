#!/usr/bin/env bash
# Runs the whole test suite on SQLite and on PostgreSQL, with the real parts the tests need:
# a throwaway PostgreSQL cluster on loopback (scripts/with-postgres.sh; installed from Debian packages
# when missing) and Debian's Chromium for the browser tests. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# --- Chromium (browser tests) ---------------------------------------------------------------
if ! command -v chromium >/dev/null; then
  echo "test.sh: installing Debian's chromium"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
export RELANCE_CHROMIUM=${RELANCE_CHROMIUM:-$(command -v chromium)}

# --- Pango and fonts (WeasyPrint renders the letters; fonts come from Debian, never downloaded) ---
if ! dpkg -s libpangoft2-1.0-0 >/dev/null 2>&1 || ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
  echo "test.sh: installing Debian's Pango and DejaVu fonts"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null
fi

export RELANCE_VAR_DIR=$(mktemp -d /tmp/relance-var.XXXXXX)
export SECRET_KEY=test-only-not-secret
trap 'rm -rf "$RELANCE_VAR_DIR"' EXIT
status=0
echo "=== tests on SQLite ==="
DATABASE_URL="sqlite:///$RELANCE_VAR_DIR/test.sqlite3" RELANCE_TEST_DB=sqlite "$BIN/pytest" "$@" || status=$?
echo "=== tests on PostgreSQL ==="
RELANCE_TEST_DB=postgresql scripts/with-postgres.sh "$BIN/pytest" "$@" || status=$?
exit $status
