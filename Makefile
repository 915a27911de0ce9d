# Relance — the two commands: `make run` (embedded demo) and `make test` (whole suite, SQLite + PostgreSQL).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SEED ?= 42

.PHONY: run test install install-dev lint typecheck check simulate messages bench-intake bench-intake-rss bench-portal clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: create the venv, install, migrate SQLite, load the demo world, serve on :8000 with the engine
run: install
	$(BIN)/relance migrate --noinput -v0
	$(BIN)/relance demo --seed $(SEED) --if-empty
	$(BIN)/relance run

## make test: install what tests need (Python deps, PostgreSQL, Chromium), run everything on both databases
test: install-dev
	bash scripts/test.sh

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy

check: lint typecheck

simulate: install
	$(BIN)/relance simulate --days 30 --seed $(SEED)

## make bench-intake: 1,000,000-row French CSV into a throwaway PostgreSQL, against raw COPY, and the
## data model's floor (the import's rows copied back into a fresh schema) (ROWS=…)
ROWS ?= 1000000
BENCH_PGPORT ?= 54341
bench-intake: install-dev
	RELANCE_TEST_PGPORT=$(BENCH_PGPORT) scripts/with-postgres.sh $(BIN)/python bench/intake.py --rows $(ROWS) --floor

## make bench-intake-rss: peak RSS of the streaming side (parse, validate, duplicates) at 5,000,000 rows
RSS_ROWS ?= 5000000
bench-intake-rss: install-dev
	$(BIN)/python bench/intake_rss.py --rows $(RSS_ROWS)

## make bench-portal: portal pages under 50 concurrent clients (gunicorn + PostgreSQL, wrk) against /healthz
bench-portal: install-dev
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; else sudo apt-get install -y -q wrk; fi; }
	RELANCE_TEST_PGPORT=54342 scripts/with-postgres.sh $(BIN)/python bench/portal.py

## make messages: refresh the French catalogue after changing UI text (needs GNU gettext; .mo is committed)
messages: install-dev
	mkdir -p src/relance/locale/fr/LC_MESSAGES
	cd src/relance && ../../$(BIN)/relance makemessages -l fr --no-location --ignore 'simulation/*'
	cd src/relance && ../../$(BIN)/relance compilemessages -l fr

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench-engine bench-email

## make bench-engine: one engine tick over 1,000,000 active cases, 2 worker processes, against a bare UPDATE (ROWS=…)
# A fixed port failed when another cluster (a test run, another bench) already listened on it: by
# default the kernel picks a free loopback port at run time; ENGINE_PGPORT=… forces one.
ENGINE_PGPORT ?= $(shell $(PYTHON) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Its throwaway PostgreSQL gets production-like memory settings (docs/operations.md, "PostgreSQL
# settings"), the same server for the engine and the baseline; ENGINE_PG_OPTIONS=… changes them.
ENGINE_PG_OPTIONS ?= -c shared_buffers=2GB -c max_wal_size=4GB
ENGINE_ARGS ?= --floor
bench-engine: install-dev
	RELANCE_PG_OPTIONS="$(ENGINE_PG_OPTIONS)" RELANCE_TEST_PGPORT=$(ENGINE_PGPORT) scripts/with-postgres.sh $(BIN)/python bench/engine.py --rows $(ROWS) $(ENGINE_ARGS)

## make bench-email: 100,000 e-mails rendered and sent to a local SMTP sink, against raw smtplib (ROWS=…)
EMAIL_ROWS := $(if $(filter command line environment,$(origin ROWS)),$(ROWS),100000)
bench-email: install-dev
	RELANCE_TEST_PGPORT=54345 scripts/with-postgres.sh $(BIN)/python bench/email_send.py --rows $(EMAIL_ROWS)
