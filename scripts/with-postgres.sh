#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh COMMAND...
# Starts a throwaway PostgreSQL cluster on loopback (installing Debian's postgresql when missing),
# exports PG_URL (superuser "postgres") and DATABASE_URL (role "relance", may create databases), runs
# COMMAND, then stops the cluster and deletes it. Port: $RELANCE_TEST_PGPORT (default 54329).
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "with-postgres: installing PostgreSQL from Debian packages" >&2
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi
PGPORT=${RELANCE_TEST_PGPORT:-54329}
PGDIR=$(mktemp -d /tmp/relance-pg.XXXXXX)
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
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
  -o "-h 127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off ${RELANCE_PG_OPTIONS:-}" \
  start >/dev/null || { echo "with-postgres: PostgreSQL did not start on port $PGPORT (in use?):" >&2; cat "$PGDIR/log" >&2; exit 1; }
"$pg_bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -q -c "CREATE ROLE relance LOGIN PASSWORD 'relance' CREATEDB" >/dev/null
"$pg_bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -q -c "CREATE DATABASE relance OWNER relance" >/dev/null
export PG_URL="postgres://postgres@127.0.0.1:$PGPORT/relance"
export DATABASE_URL="postgres://relance:relance@127.0.0.1:$PGPORT/relance"
"$@"
