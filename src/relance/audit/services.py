"""Writing and verifying the audit chain.

``audit_record`` must run inside the transaction of the change it records (STYLE: the audit row
commits with the state change or not at all). Appends are serialised: an advisory transaction lock on
PostgreSQL, the database write lock on SQLite (transactions there start IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from relance.audit.chain import (
    GENESIS,
    ChainBreak,
    ChainRow,
    canonical,
    compact_json,
    hash_head,
    hash_join,
    hash_middle,
    native_json,
    row_hash,
    verify_rows,
)
from relance.audit.models import AuditEvent
from relance.tenancy.actors import Actor

_PG_AUDIT_LOCK = 0x52454C41  # "RELA": one advisory lock key for the chain head


def audit_record(
    *,
    actor: Actor,
    verb: str,
    subject: Model | None = None,
    subject_type: str = "",
    subject_id: str | int = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    if subject is not None:
        subject_type = subject._meta.label_lower
        subject_id = subject.pk
    (event,) = _append(actor=actor, events=[PendingEvent(verb, subject_type, subject_id, data or {})])
    return event


class PendingEvent(NamedTuple):
    """One event for ``audit_record_many``.

    A named tuple (immutable, the same fields and constructor as the frozen dataclass it was): made for
    every case the engine changes, where a frozen dataclass's ``__init__`` (one ``object.__setattr__``
    per field) cost three times as much.
    """

    verb: str
    subject_type: str
    subject_id: str | int
    data: dict[str, Any]


def audit_record_many(*, actor: Actor, events: Sequence[PendingEvent]) -> int:
    """Append many events at once (bulk intake, engine batches): same chain, same lock, one INSERT per
    1,000 rows.

    On PostgreSQL a large batch is written with one ``COPY`` (same rows, same hashes).
    """
    if connection.vendor == "postgresql" and len(events) >= _COPY_FROM:
        return _append_copy(actor=actor, events=events)
    return len(_append(actor=actor, events=events))


_COPY_FROM = 200


def _append_copy(*, actor: Actor, events: Sequence[PendingEvent]) -> int:
    """``_append`` without model instances, for large batches on PostgreSQL: one ``COPY``.

    Same head lock, same rows, same ``chain.row_hash`` digests (checked by ``audit_verify`` and the
    tests), but each row's JSON — its data and the middle of its hash payload — is built before the
    head lock is taken, so under the lock only the sequence number, the time and the previous hash are
    joined and hashed (``chain.hash_join``).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit events must be recorded inside the transaction they record")
    if not events:
        return 0
    prepared = []
    for pending in events:
        # The data's JSON text: hashed, and stored as it is (a ``json`` column, decision 0007).
        native = _json_native(pending.data)
        stored = native_json(pending.data) if native else compact_json(canonical(pending.data))
        subject_id = str(pending.subject_id)
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
            " (FORMAT BINARY)"
        ) as copy,
    ):
        # PostgreSQL's binary forms: no text formatting of the time and numbers per row in Python and
        # no text parsing of them on the server. ``json``'s binary form is the JSON text itself, so the
        # data goes as its UTF-8 bytes (the ``bytea`` dumper writes them as they are; the server checks
        # the text is JSON and stores it verbatim).
        copy.set_types(_COPY_TYPES)
        write = copy.write_row
        for verb, subject_type, subject_id, stored, middle in prepared:
            seq += 1
            digest = hash_join(seq, head, middle, prev_hash)
            write((seq, occurred_at, label, verb, subject_type, subject_id, stored.encode(), prev_hash, digest))
            prev_hash = digest
    return len(events)


_COPY_TYPES = ("int8", "timestamptz", "text", "text", "text", "text", "bytea", "text", "text")


def _append(*, actor: Actor, events: Sequence[PendingEvent]) -> list[AuditEvent]:
    """Chain ``events`` after the current head, under the head lock, inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit events must be recorded inside the transaction they record")
    if not events:
        return []
    _lock_head()
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS)
    occurred_at = timezone.now()
    rows = []
    for pending in events:
        seq += 1
        payload = canonical(pending.data)
        digest = row_hash(
            seq=seq,
            occurred_at=occurred_at,
            actor=actor.label,
            verb=pending.verb,
            subject_type=pending.subject_type,
            subject_id=str(pending.subject_id),
            data=payload,
            prev_hash=prev_hash,
        )
        rows.append(
            AuditEvent(
                seq=seq,
                occurred_at=occurred_at,
                actor=actor.label,
                verb=pending.verb,
                subject_type=pending.subject_type,
                subject_id=str(pending.subject_id),
                data=payload,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        prev_hash = digest
    return AuditEvent.objects.bulk_create(rows, batch_size=1000)


_SCALARS = frozenset({str, int, bool, type(None)})
_STR = frozenset({str})


def _json_native(value: Any) -> bool:
    """Already what ``canonical`` would return (str keys; str, int, bool, None, lists): no copy needed."""
    if type(value) is dict and _SCALARS.issuperset(map(type, value.values())) and _STR.issuperset(map(type, value)):
        return True  # the common case: a flat dict of plain values
    if value is None or isinstance(value, str | int):  # bool is an int
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_native(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_native(v) for v in value)
    return False


def _lock_head() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_AUDIT_LOCK])


def audit_verify() -> tuple[int, ChainBreak | None]:
    """Verify the whole chain from the first row; streams rows, constant memory."""
    rows = (
        ChainRow(
            seq=e["seq"],
            occurred_at=e["occurred_at"],
            actor=e["actor"],
            verb=e["verb"],
            subject_type=e["subject_type"],
            subject_id=e["subject_id"],
            data=e["data"],
            prev_hash=e["prev_hash"],
            hash=e["hash"],
        )
        for e in AuditEvent.objects.order_by("seq").values().iterator(chunk_size=2000)
    )
    return verify_rows(rows)
