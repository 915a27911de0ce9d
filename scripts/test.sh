#!/usr/bin/env bash
# Runs the whole test suite on SQLite and on PostgreSQL, with the real parts the tests need:
# a throwaway PostgreSQL cluster on loopback (installed from Debian packages when missing) and
# Debian's Chromium for the browser tests. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then as_root apt-get update -q >/dev/null; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# --- Chromium (browser tests) ---------------------------------------------------------------
if ! command -v chromium >/dev/null; then
  echo "test.sh: installing Debian's chromium"
  apt_install chromium
fi
export RELANCE_CHROMIUM=${RELANCE_CHROMIUM:-$(command -v chromium)}

# --- PostgreSQL: a private cluster on loopback ----------------------------------------------
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "test.sh: installing PostgreSQL from Debian packages"
  apt_install postgresql
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi
PGPORT=${RELANCE_TEST_PGPORT:-54329}
PGDIR=$(mktemp -d /tmp/relance-pg.XXXXXX)
run_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
  chown postgres "$PGDIR"
fi
cleanup() {
  run_pg "$pg_bin/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT
run_pg "$pg_bin/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
run_pg "$pg_bin/pg_ctl" -D "$PGDIR/data" -w -l "$PGDIR/log" \
  -o "-h 127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
"$pg_bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -q -c \
  "CREATE ROLE relance LOGIN PASSWORD 'relance' CREATEDB" >/dev/null

export RELANCE_VAR_DIR=$(mktemp -d /tmp/relance-var.XXXXXX)
export SECRET_KEY=test-only-not-secret
status=0
echo "=== tests on SQLite ==="
DATABASE_URL="sqlite:///$RELANCE_VAR_DIR/test.sqlite3" RELANCE_TEST_DB=sqlite \
  "$BIN/pytest" "$@" || status=$?
echo "=== tests on PostgreSQL ==="
DATABASE_URL="postgres://relance:relance@127.0.0.1:$PGPORT/relance" RELANCE_TEST_DB=postgresql \
  "$BIN/pytest" "$@" || status=$?
rm -rf "$RELANCE_VAR_DIR"
exit $status
