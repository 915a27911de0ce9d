"""PostgreSQL bulk writes of the engine's batches: ``COPY`` instead of large parameterised statements.

The same rows as the ORM path (``bulk_create`` of the outbox, ``bulk_update`` of the cases), written
with fewer round trips and no per-row SQL building: outbox actions get their ids from the table's
sequence first (the audit events name them), then go through one ``COPY``; case changes go through one
``COPY`` into a temporary table and one ``UPDATE … FROM``. Both run in the caller's transaction
(invariant 3), so a failure rolls back with the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from relance.cases.models import Case
from relance.comms.models import Action

# (case_id, debtor_id, channel, template, step_key, scheduled_at)
ActionRow = tuple[int, int, str, str, str, datetime]

_ACTION_GIVEN = ("id", "created_at", "updated_at", "case_id", "debtor_id", "channel", "template", "step_key")


def _action_columns() -> tuple[list[str], list[Any]]:
    """Every column of the outbox, and the model's default for those the engine does not set."""
    columns: list[str] = []
    defaults: list[Any] = []
    for f in Action._meta.concrete_fields:
        columns.append(f.column)
        defaults.append(None if f.column in _ACTION_GIVEN or f.column == "scheduled_at" else f.get_default())
    return columns, defaults


def actions_copy(rows: Sequence[ActionRow], *, now: datetime) -> list[int]:
    """Insert outbox actions (status queued, model defaults elsewhere) with one ``COPY``; their ids in order."""
    if not rows:
        return []
    table = Action._meta.db_table
    columns, defaults = _action_columns()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(rows)]
        )
        ids = [r[0] for r in cursor.fetchall()]
        position = {c: i for i, c in enumerate(columns)}
        given = [position[c] for c in (*_ACTION_GIVEN, "scheduled_at")]
        quoted = ", ".join(f'"{c}"' for c in columns)
        with cursor.cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
            for pk, (case_id, debtor_id, channel, template, step_key, scheduled_at) in zip(ids, rows, strict=True):
                values = list(defaults)
                for index, value in zip(
                    given, (pk, now, now, case_id, debtor_id, channel, template, step_key, scheduled_at), strict=True
                ):
                    values[index] = value
                copy.write_row(values)
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
_TEMP = "relance_engine_case_changes"


def cases_update_copy(cases: Sequence[Case]) -> None:
    """Write the engine's fields of many cases: one ``COPY`` into a temporary table, one ``UPDATE … FROM``."""
    if not cases:
        return
    columns = ", ".join(f"{f} {t}" for f, t in zip(CASE_FIELDS, _CASE_TYPES, strict=True))
    sets = ", ".join(f"{f} = v.{f}" for f in CASE_FIELDS)
    with connection.cursor() as cursor:
        # Per connection, emptied at commit; emptied here too when several batches share one transaction.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP} (id bigint, {columns}) ON COMMIT DELETE ROWS")
        cursor.execute(f"DELETE FROM {_TEMP}")  # noqa: S608
        with cursor.cursor.copy(f"COPY {_TEMP} (id, {', '.join(CASE_FIELDS)}) FROM STDIN") as copy:
            for c in cases:
                copy.write_row(
                    (
                        c.pk,
                        c.status,
                        c.step,
                        c.step_at,
                        c.event_seq,
                        c.next_action_at,
                        c.closed_at,
                        c.updated_at,
                        c.strategy_key,
                        c.strategy_version,
                        c.variant,
                    )
                )
        cursor.execute(
            f"UPDATE {Case._meta.db_table} AS c SET {sets} FROM {_TEMP} AS v WHERE c.id = v.id"  # noqa: S608
        )
