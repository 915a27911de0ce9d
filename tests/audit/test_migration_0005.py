"""Migration audit 0005 (decision 0007) on a trail written before it: the chain still verifies with the
same digests, the append-only triggers still refuse, and the schema is the model's; then back and forth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor

from relance.audit.chain import GENESIS, canonical, row_hash
from relance.audit.models import AuditEvent
from relance.audit.services import PendingEvent, audit_record_many, audit_verify
from relance.tenancy.actors import Actor

BEFORE = [("audit", "0004_engine5_lighter_indexes")]
AFTER = [("audit", "0005_audit7_seq_key_json_data")]
START = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader sees what is applied now


def _write_old_trail(executor: MigrationExecutor, count: int) -> list[str]:
    """``count`` chained rows written with the table as it was at 0004 (an ``id`` key, ``jsonb``)."""
    old = executor.loader.project_state(BEFORE).apps.get_model("audit", "AuditEvent")
    head = old.objects.order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS)
    prev, hashes = head[1], []
    with transaction.atomic():
        for n in range(head[0], head[0] + count):
            data = canonical({"n": n, "amount": Decimal("12.50"), "note": "réglé « ok »", "nested": {"b": [1, None]}})
            fields = {
                "seq": n + 1,
                "occurred_at": START + timedelta(minutes=n, microseconds=n),
                "actor": "system:tests",
                "verb": "test.old",
                "subject_type": "test.thing",
                "subject_id": str(n % 3),
                "data": data,
                "prev_hash": prev,
            }
            prev = row_hash(**fields)
            old.objects.create(hash=prev, **fields)
            hashes.append(prev)
    return hashes


def _refused(sql: str, seq: int) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [seq])
    except DatabaseError as error:
        return "append-only" in str(error)
    return False


def _constraints() -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, "audit_auditevent")


def _columns() -> dict[str, str]:
    with connection.cursor() as cursor:
        return {c.name: c.type_code for c in connection.introspection.get_table_description(cursor, "audit_auditevent")}


@pytest.mark.django_db(transaction=True)
def test_0005_keeps_the_chain_and_the_triggers_and_goes_back_and_forth():
    existing = AuditEvent.objects.count()  # what the other migrations recorded
    executor = _migrate(BEFORE)
    try:
        hashes = _write_old_trail(executor, 5)
        _migrate(AFTER)

        # The trail written before verifies, with the same digests, read through the new model.
        assert audit_verify() == (existing + 5, None)
        assert list(AuditEvent.objects.filter(seq__gt=existing).values_list("hash", flat=True)) == hashes
        first = AuditEvent.objects.get(pk=existing + 1)
        assert first.data == {"n": existing, "amount": "12.50", "note": "réglé « ok »", "nested": {"b": [1, None]}}

        # The schema is the model's: ``seq`` the key, no ``id``; the subject index is still there.
        assert "id" not in _columns()
        keys = [c["columns"] for c in _constraints().values() if c["primary_key"]]
        assert keys == [["seq"]]
        assert [c["columns"] for c in _constraints().values() if c["unique"] and not c["primary_key"]] == []
        assert ["subject_type", "subject_id", "seq"] in [c["columns"] for c in _constraints().values() if c["index"]]
        assert ["occurred_at"] in [c["columns"] for c in _constraints().values() if c["index"]]

        # The append-only triggers still refuse (UPDATE on both databases, DELETE on PostgreSQL).
        assert _refused("UPDATE audit_auditevent SET verb = 'test.rewritten' WHERE seq = %s", existing + 2)
        if connection.vendor == "postgresql":
            assert _refused("DELETE FROM audit_auditevent WHERE seq = %s", existing + 2)
        # A duplicate ``seq`` is refused by the key.
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.create(seq=existing + 3, occurred_at=START, actor="x", verb="x", prev_hash="", hash="")

        # New appends (the ordinary INSERT and, on PostgreSQL, the COPY path) chain on the old rows.
        with transaction.atomic():
            events = [PendingEvent("test.new", "test.thing", i, {"i": i, "é": "ü"}) for i in range(210)]
            audit_record_many(actor=Actor.system("tests"), events=events[:3])
            audit_record_many(actor=Actor.system("tests"), events=events)
        assert audit_verify() == (existing + 5 + 3 + 210, None)

        # Back to 0004: ids are the sequence numbers, the data reads back the same, the trigger refuses.
        executor = _migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps.get_model("audit", "AuditEvent")
        assert not old.objects.exclude(id=models.F("seq")).exists()
        assert old.objects.get(seq=existing + 1).data == first.data
        assert _refused("UPDATE audit_auditevent SET verb = 'test.rewritten' WHERE seq = %s", existing + 2)
        with transaction.atomic():  # the ``id`` draws on past the copied ones
            created = old.objects.create(
                seq=10_000,
                occurred_at=START,
                actor="x",
                verb="x",
                subject_type="",
                subject_id="",
                prev_hash="",
                hash="",
            )
        assert created.id == existing + 5 + 3 + 210 + 1

        with connection.cursor() as cursor:  # not part of the chain: written by hand, removed by hand
            if connection.vendor == "postgresql":
                cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update")
                cursor.execute("DELETE FROM audit_auditevent WHERE seq = 10000")
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_update")
            else:
                cursor.execute("DELETE FROM audit_auditevent WHERE seq = 10000")
    finally:
        _migrate(AFTER)
    assert audit_verify() == (existing + 5 + 3 + 210, None)
    assert _refused("UPDATE audit_auditevent SET verb = 'test.rewritten' WHERE seq = %s", existing + 2)
