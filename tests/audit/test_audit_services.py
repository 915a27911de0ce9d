"""The audit trail in the database: append-only, hash-chained, tampering detected (invariant 7)."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from relance.audit.chain import row_hash
from relance.audit.models import AuditEvent
from relance.audit.services import audit_record, audit_verify
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


def _record(n: int) -> list[AuditEvent]:
    with transaction.atomic():
        return [
            audit_record(
                actor=ACTOR,
                verb="test.happened",
                subject_type="test.thing",
                subject_id=i,
                data={"i": i, "amount": 1250, "note": "élève « ok »"},
            )
            for i in range(n)
        ]


def _disable_append_only_trigger() -> None:
    """What a DBA with write access could do; rolled back with the test's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update")
        else:
            cursor.execute("DROP TRIGGER audit_event_no_update")


@pytest.mark.django_db(transaction=True)
def test_audit_record_outside_a_transaction_raises():
    # A transactional test runs in autocommit, as a careless caller outside any service would.
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=ACTOR, verb="test.outside", subject_type="test.thing", subject_id=1)
    assert not AuditEvent.objects.filter(verb="test.outside").exists()


def test_records_form_a_chain_that_verifies():
    existing = AuditEvent.objects.count()
    events = _record(5)
    assert [e.seq for e in events] == list(range(existing + 1, existing + 6))
    for previous, current in itertools.pairwise(events):
        assert current.prev_hash == previous.hash
    count, broken = audit_verify()
    assert broken is None
    assert count == existing + 5


def test_the_record_stores_actor_subject_and_data():
    (event,) = _record(1)
    event.refresh_from_db()
    assert event.actor == "system:tests"
    assert (event.subject_type, event.subject_id) == ("test.thing", "0")
    assert event.data == {"i": 0, "amount": 1250, "note": "élève « ok »"}


def test_an_update_is_refused_by_the_database():
    events = _record(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[1].pk).update(data={"i": 999})
    events[1].refresh_from_db()
    assert events[1].data["i"] == 1
    assert audit_verify()[1] is None


def test_a_hand_edit_behind_the_trigger_is_detected_naming_the_row():
    events = _record(4)
    target = events[2]
    _disable_append_only_trigger()
    AuditEvent.objects.filter(pk=target.pk).update(data={"i": 2, "amount": 1, "note": "élève « ok »"})
    count, broken = audit_verify()
    assert broken is not None
    assert broken.seq == target.seq == target.pk
    assert "hash" in broken.reason
    assert count == target.seq - 1


def test_a_deleted_row_is_detected():
    events = _record(3)
    _disable_append_only_trigger()
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    _, broken = audit_verify()
    assert broken is not None
    assert broken.seq == events[2].seq
    assert "sequence" in broken.reason


def test_a_rehashed_row_is_still_detected_by_the_next_row():
    """Recomputing the edited row's own hash is not enough: the next row points at the old one."""
    events = _record(3)
    target = events[1]
    forged_data = {"i": 1, "amount": 1, "note": "forged"}
    forged_hash = row_hash(
        seq=target.seq,
        occurred_at=target.occurred_at,
        actor=target.actor,
        verb=target.verb,
        subject_type=target.subject_type,
        subject_id=target.subject_id,
        data=forged_data,
        prev_hash=target.prev_hash,
    )
    _disable_append_only_trigger()
    AuditEvent.objects.filter(pk=target.pk).update(data=forged_data, hash=forged_hash)
    _, broken = audit_verify()
    assert broken is not None
    assert broken.seq == events[2].seq


def test_cli_verify_prints_ok(capsys):
    _record(3)
    call_command("audit", "verify")
    out = capsys.readouterr().out
    assert "audit chain OK" in out
    assert f"{AuditEvent.objects.count()} events verified" in out


def test_cli_verify_fails_naming_the_tampered_row():
    events = _record(3)
    _disable_append_only_trigger()
    AuditEvent.objects.filter(pk=events[0].pk).update(verb="test.rewritten")
    with pytest.raises(CommandError, match=rf"BROKEN at row seq={events[0].seq}:"):
        call_command("audit", "verify")
