"""PostgreSQL bulk writes of the engine's batches: ``COPY`` instead of large parameterised statements.

The same rows as the ORM path (``bulk_create`` of the outbox, ``bulk_update`` of the cases), written
with fewer round trips and no per-row SQL building: outbox actions get their ids from the table's
sequence first (the audit events name them), then go through one ``COPY``; case changes go through one
``COPY`` into a temporary table and one ``UPDATE … FROM``. Both run in the caller's transaction
(invariant 3), so a failure rolls back with the rest of the batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from relance.audit.chain import GENESIS, canonical
from relance.audit.models import AuditEvent
from relance.audit.services import (
    PendingEvent,
    _lock_head,  # the chain's one head lock, shared on purpose
)
from relance.cases.models import Case
from relance.comms.models import Action
from relance.tenancy.actors import Actor

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


def audit_copy(*, actor: Actor, events: Sequence[PendingEvent]) -> int:
    """``audit_record_many`` for the engine's batches on PostgreSQL: the same chained rows, hashed leaner.

    The chain is the one of ``relance.audit``: same head lock, same rows, same ``chain.row_hash``
    payload (checked by ``audit_verify`` and the tests). What differs is when the work is done: each
    row's JSON (its data, and the middle of its hash payload) is built before the head lock is taken,
    so under the lock only the sequence number, the time and the previous hash are joined and hashed.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit events must be recorded inside the transaction they record")
    if not events:
        return 0
    prepared = []
    for pending in events:
        data = pending.data if _json_native(pending.data) else canonical(pending.data)
        subject_id = str(pending.subject_id)
        stored = compact_json(data)  # also what is stored (jsonb keeps the value, not the text)
        middle = hash_middle(pending.verb, pending.subject_type, subject_id, stored)
        prepared.append((pending.verb, pending.subject_type, subject_id, stored, middle))
    label = actor.label
    _lock_head()
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS)
    occurred_at = timezone.now()
    head = hash_head(occurred_at, label)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f'COPY "{AuditEvent._meta.db_table}" '
            "(seq, occurred_at, actor, verb, subject_type, subject_id, data, prev_hash, hash) FROM STDIN"
        ) as copy,
    ):
        write = copy.write_row
        for verb, subject_type, subject_id, stored, middle in prepared:
            seq += 1
            digest = hash_join(seq, head, middle, prev_hash)
            write((seq, occurred_at, label, verb, subject_type, subject_id, stored, prev_hash, digest))
            prev_hash = digest
    return len(events)


# chain.row_hash dumps [seq, stamp, actor, verb, subject_type, subject_id, data, prev_hash] (sorted keys,
# compact separators, no ASCII escaping). A list's items are joined by ",", so the parts known before
# the head lock (verb … data) and after it (seq, stamp, actor, prev_hash) can be dumped apart and joined.


compact_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_string = json.encoder.encode_basestring  # what compact_json does with a str


@lru_cache(maxsize=64)
def _hash_start(verb: str, subject_type: str) -> str:
    return compact_json([verb, subject_type])[1:-1] + ","


def hash_middle(verb: str, subject_type: str, subject_id: str, data_json: str) -> str:
    """The ``verb, subject_type, subject_id, data`` part of a row's hash payload; ``data_json`` is
    ``compact_json`` of the canonical data."""
    return _hash_start(verb, subject_type) + _string(subject_id) + "," + data_json


def hash_head(occurred_at: datetime, actor: str) -> str:
    stamp = occurred_at.isoformat(timespec="microseconds")
    return "," + json.dumps([stamp, actor], separators=(",", ":"), ensure_ascii=False)[1:-1] + ","


def hash_join(seq: int, head: str, middle: str, prev_hash: str) -> str:
    """``chain.row_hash`` of the row, from its parts (``prev_hash`` is hexadecimal: nothing to escape)."""
    return hashlib.sha256(f'[{seq}{head}{middle},"{prev_hash}"]'.encode()).hexdigest()


_SCALARS = frozenset({str, int, bool, type(None)})


def _json_native(value: Any) -> bool:
    """Already what ``chain.canonical`` returns (str keys; str, int, bool, None; lists of those)."""
    if type(value) is dict and all(type(k) is str and type(v) in _SCALARS for k, v in value.items()):
        return True  # the engine's events: a flat dict of plain values
    if value is None or isinstance(value, str | int):  # bool is an int
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_native(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_native(v) for v in value)
    return False
