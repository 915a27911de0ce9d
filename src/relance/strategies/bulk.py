"""PostgreSQL bulk writes of the engine's batches, in PostgreSQL's binary forms.

The same rows as the ORM path (``bulk_create`` of the outbox, ``bulk_update`` of the cases), written
with fewer round trips and no per-row SQL building: outbox actions get their ids from the table's
sequence first (the audit events name them), then go through one binary ``COPY``; case changes go
through one ``UPDATE … FROM unnest(…)`` of binary array parameters. Both run in the caller's
transaction (invariant 3), so a failure rolls back with the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Protocol

import psycopg
from django.db import connection
from psycopg.postgres import types as pg_types
from psycopg.pq import Format

from relance.cases.models import Case
from relance.comms.models import Action
from relance.core.sql import int_array

_TIMESTAMPTZ = pg_types["timestamptz"].oid
_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(_TIMESTAMPTZ, Format.TEXT)  # compiled with psycopg[binary]


def utc_cursor() -> psycopg.Cursor[Any]:
    """A server-side-binding cursor on Django's connection (same transaction) reading ``timestamptz`` fast.

    Django's PostgreSQL backend reads every ``timestamptz`` with a loader written in Python (a subclass
    of psycopg's pure-Python loader that sets the connection's time zone on each value): ≈ 3.5 µs per
    value, 7 µs per case for the two a batch row holds. The session's time zone is UTC (Django sets it
    when ``USE_TZ``), so psycopg's own compiled loader returns the very same values (aware, in
    ``datetime.timezone.utc``); it is used only when the session is UTC, otherwise Django's stays.
    The engine's fixed statements are prepared on it (``prepare=True``: parsed and planned once per
    connection, then only bound and run; the settings' ``prepare_threshold`` lets psycopg do it, and a
    transaction-pooling proxy needs PgBouncer 1.21+ ``max_prepared_statements``: docs/operations.md).
    """
    raw = connection.connection
    cursor = psycopg.Cursor(raw)
    if raw.info.timezone is UTC and _TIMESTAMPTZ_LOADER is not None:
        cursor.adapters.register_loader(_TIMESTAMPTZ, _TIMESTAMPTZ_LOADER)
    return cursor


class CaseFields(Protocol):
    """The engine's fields of a case (``CASE_FIELDS``): a ``Case``, or the engine's lighter batch row."""

    id: int
    status: str
    step: int
    step_at: datetime | None
    event_seq: int
    next_action_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    strategy_key: str
    strategy_version: int
    variant: str


# (case_id, debtor_id, channel, template, step_key, scheduled_at)
ActionRow = tuple[int, int, str, str, str, datetime]

# The columns the engine sets, in the order of each row: the id, the times, then an ``ActionRow``.
_ACTION_GIVEN: tuple[str, ...] = ("id", "created_at", "updated_at", "case_id", "debtor_id", "channel", "template")
_ACTION_GIVEN += ("step_key", "scheduled_at")


def _action_columns() -> tuple[list[str], tuple[Any, ...]]:
    """The outbox's columns, those the engine sets first, and the model's defaults for the others."""
    rest = [f for f in Action._meta.concrete_fields if f.column not in _ACTION_GIVEN]
    return [*_ACTION_GIVEN, *(f.column for f in rest)], tuple(f.get_default() for f in rest)


def actions_copy(rows: Sequence[ActionRow], *, now: datetime) -> list[int]:
    """Insert outbox actions (status queued, model defaults elsewhere) with one ``COPY``; their ids in order."""
    if not rows:
        return []
    table = Action._meta.db_table
    columns, defaults = _action_columns()
    # Django's connection (same transaction), a server-side-binding cursor: the two fixed reads are
    # prepared (parsed and planned once per connection; see ``utc_cursor``).
    with psycopg.Cursor(connection.connection) as cursor:
        # The sequence is looked up once per batch (``MATERIALIZED``): ``nextval(pg_get_serial_sequence(…))``
        # looked it up in the catalogue for every row (≈ 2.5 µs each, ten times the draw itself).
        cursor.execute(
            "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(%s::text, 'id')::regclass AS seq)"
            " SELECT nextval(s.seq) FROM s, generate_series(1, %s::integer)",
            [table, len(rows)],
            prepare=True,
        )
        ids = [r[0] for r in cursor.fetchall()]
        quoted = ", ".join(f'"{c}"' for c in columns)
        cursor.execute(
            "SELECT a.atttypid FROM unnest(%s::text[]) WITH ORDINALITY AS c(name, n)"
            " JOIN pg_attribute a ON a.attrelid = %s::text::regclass AND a.attname = c.name ORDER BY c.n",
            ["{" + ",".join(columns) + "}", table],
            prepare=True,
        )
        types = [r[0] for r in cursor.fetchall()]
        # Binary COPY: values go out in PostgreSQL's binary forms (no text formatting of each date and
        # string in Python, no text parsing on the server); the column types are the table's own.
        with cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN (FORMAT BINARY)') as copy:
            copy.set_types(types)
            write = copy.write_row
            for pk, row in zip(ids, rows, strict=True):
                write((pk, now, now, *row, *defaults))
    return ids


CASE_FIELDS = (
    "status",
    "step",
    "step_at",
    "event_seq",
    "next_action_at",
    "closed_at",
    "updated_at",
    "strategy_key",
    "strategy_version",
    "variant",
)
_CASE_TYPES: tuple[str, ...] = ("text", "integer", "timestamptz", "bigint", "timestamptz", "timestamptz", "timestamptz")
_CASE_TYPES += ("text", "integer", "text")


def cases_update_copy(cases: Sequence[CaseFields], *, before: Sequence[Sequence[Any] | None] | None = None) -> None:
    """Write the engine's fields of many cases in one ``UPDATE … FROM unnest(…)``.

    Each field travels as one array parameter in PostgreSQL's binary form (server-side binding, the ids
    as one text literal, ``int_array``), and the statement is prepared (one per set of fields written; a
    batch's statement is usually the previous batch's): no temporary table to fill, scan and empty, no
    SQL text that grows with the batch, and no text formatting of each value in Python (the binary
    arrays cost about half of what ``COPY``'s text rows did).

    Two savings keep the statement's result the same: ``before`` gives, per field of ``CASE_FIELDS``,
    the values of the cases as read under their row locks (``None``: not known), and a field no case of
    the batch changed is left out of the ``SET``; a field whose new value is the same for every case of
    the batch (``updated_at``, the step reached, the status…) travels once, as one value, not as an
    array of as many copies. Dumping the arrays element by element in Python was the larger part of the
    update's cost in the worker (≈ 3 µs per case).
    """
    if not cases:
        return
    ids = int_array([c.id for c in cases])  # one text literal, not a binary array dumped id by id in Python
    columns = list(zip(*map(_case_values, cases), strict=True))
    sets: list[str] = []
    arrays: list[str] = []
    names: list[str] = []
    params: list[Any] = [ids]
    values: list[Any] = []
    for n, (field, values_of, type_) in enumerate(zip(CASE_FIELDS, columns, _CASE_TYPES, strict=True)):
        old = before[n] if before is not None else None
        if old is not None and old == values_of:
            continue  # unchanged for every case of the batch: the row keeps it
        first = values_of[0]
        if values_of.count(first) == len(values_of):
            sets.append(f"{field} = %b::{type_}")
            values.append(first)
        else:
            sets.append(f"{field} = v.{field}")
            arrays.append(f"%b::{type_}[]")
            names.append(field)
            params.append(list(values_of))
    if not sets:  # nothing changed (``updated_at`` is always set, so not reached from the engine)
        return
    sql = (
        f"UPDATE {_CASES_TABLE} AS c SET "  # noqa: S608 - our own names
        + ", ".join(sets)
        + " FROM unnest("
        + ", ".join(["%t::bigint[]", *arrays])
        + ") AS v("
        + ", ".join(["id", *names])
        + ") WHERE c.id = v.id"
    )
    # The SET's single values come first in the text, then the arrays: parameters in the same order.
    ordered = [*values, *params] if values else params
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, ordered, prepare=True)  # binary (``%b``)


_case_values = attrgetter(*CASE_FIELDS)
_CASES_TABLE = Case._meta.db_table
