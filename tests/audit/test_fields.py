"""The audit data column (decision 0007): PostgreSQL ``json`` holding the hashed text verbatim, read back
as values whether the driver hands over text or an already parsed value; ORM lookups inside it still work."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.audit.chain import canonical, compact_json
from relance.audit.fields import AuditJSONField
from relance.audit.models import AuditEvent
from relance.audit.services import PendingEvent, audit_record, audit_record_many, audit_verify
from relance.strategies.selectors import cases_events_since
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the json column is PostgreSQL's")
DATA = {"note": 'élève « ok » "q" \\ \u0001 🙂', "amount": 1250, "nested": {"b": [1, None, True]}, "a": ""}


def _record_one(data: dict[str, Any]) -> AuditEvent:
    with transaction.atomic():
        return audit_record(actor=ACTOR, verb="test.happened", subject_type="test.thing", subject_id=1, data=data)


def _record_copied(n: int, data: dict[str, Any]) -> list[int]:
    """``n`` events through ``audit_record_many`` (its binary COPY on PostgreSQL from 200 events)."""
    with transaction.atomic():
        head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        audit_record_many(actor=ACTOR, events=[PendingEvent("test.copied", "test.thing", i, data) for i in range(n)])
    return list(range(head + 1, head + n + 1))


def _stored_text(seq: int) -> str:
    with connection.cursor() as cursor:
        cast = "::text" if connection.vendor == "postgresql" else ""
        cursor.execute(f"SELECT data{cast} FROM audit_auditevent WHERE seq = %s", [seq])  # noqa: S608
        (text,) = cursor.fetchone()
    return text


def test_the_data_reads_back_through_the_orm_values_and_values_list():
    event = _record_one(DATA)
    assert AuditEvent.objects.get(pk=event.seq).data == DATA
    assert AuditEvent.objects.filter(seq=event.seq).values("data")[0]["data"] == DATA
    assert AuditEvent.objects.filter(seq=event.seq).values_list("data", flat=True)[0] == DATA
    assert AuditEvent.objects.filter(seq=event.seq).values_list("data__nested__b", flat=True)[0] == [1, None, True]
    event.refresh_from_db()
    assert event.data == DATA


def test_copied_events_read_back_alike():
    seqs = _record_copied(220, DATA)
    assert {
        json.dumps(d, sort_keys=True) for d in AuditEvent.objects.filter(seq__in=seqs).values_list("data", flat=True)
    } == {json.dumps(DATA, sort_keys=True)}
    assert audit_verify()[1] is None


def test_lookups_inside_the_data_still_work():
    one = _record_one({"action": 7, "variant": "b", "kind": "plan"})
    two = _record_one({"action": 8, "nested": {"x": "y"}})
    mine = AuditEvent.objects.filter(seq__in=[one.seq, two.seq])
    assert list(mine.filter(data__has_key="variant").values_list("seq", flat=True)) == [one.seq]
    assert list(mine.filter(data__action=8).values_list("seq", flat=True)) == [two.seq]
    assert list(mine.filter(data__kind="plan").values_list("seq", flat=True)) == [one.seq]
    assert list(mine.filter(data__nested__x="y").values_list("seq", flat=True)) == [two.seq]
    assert list(mine.filter(data__action__gt=7).values_list("seq", flat=True)) == [two.seq]
    assert list(mine.filter(data={"action": 8, "nested": {"x": "y"}}).values_list("seq", flat=True)) == [two.seq]
    if connection.features.supports_json_field_contains:
        assert list(mine.filter(data__contains={"variant": "b"}).values_list("seq", flat=True)) == [one.seq]
    assert list(mine.exclude(data__has_key="nested").values_list("seq", flat=True)) == [one.seq]


def test_the_engine_s_raw_event_read_parses_the_data():
    """``strategies.selectors.cases_events_since`` reads the rows with its own SQL on PostgreSQL."""
    with transaction.atomic():
        head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        audit_record(
            actor=ACTOR, verb="payment.received", subject_type="cases.case", subject_id=41, data={"amount": 500}
        )
    (event,) = cases_events_since(cases=[(41, 9_999_999, head, 10_000)])[41]
    assert (event.id, event.kind) == (head + 1, "payment_partial")


def test_from_db_value_takes_text_or_a_parsed_value():
    field = AuditJSONField()
    assert field.from_db_value('{"a":[1,"é"]}', None, connection) == {"a": [1, "é"]}
    assert field.from_db_value({"a": [1, "é"]}, None, connection) == {"a": [1, "é"]}
    assert field.from_db_value([1, 2], None, connection) == [1, 2]
    assert field.from_db_value(None, None, connection) is None


@postgres_only
def test_the_column_is_json_and_keeps_the_hashed_text_verbatim():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'audit_auditevent'"
            " AND column_name = 'data'"
        )
        assert cursor.fetchone() == ("json",)
    odd = {"z": Decimal("1.50"), "on": date(2026, 1, 2), **DATA}
    expected = compact_json(canonical(odd))
    assert _stored_text(_record_one(odd).seq) == expected  # the ORM's INSERT
    seqs = _record_copied(205, odd)
    assert {_stored_text(seqs[0]), _stored_text(seqs[-1])} == {expected}  # the binary COPY
    assert audit_verify()[1] is None


@postgres_only
def test_psycopg_hands_over_the_json_already_parsed():
    """Why ``from_db_value`` accepts a parsed value: Django registers a text loader for ``jsonb`` only."""
    event = _record_one(DATA)
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute("SELECT data FROM audit_auditevent WHERE seq = %s", [event.seq])
        (value,) = cursor.fetchone()
    assert value == DATA


# No NUL (jsonb refused it; the lookups cast to it), no lone surrogate (no UTF-8 to hash): as before.
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None)
@given(data=st.dictionaries(TEXT, JSON_VALUES, max_size=5))
def test_property_any_json_data_reads_back_equal_and_the_chain_verifies(data: dict[str, Any]) -> None:
    event = _record_one(data)
    assert AuditEvent.objects.get(pk=event.seq).data == data
    if connection.vendor == "postgresql":
        assert _stored_text(event.seq) == compact_json(data)
    assert audit_verify()[1] is None
