"""The engine's PostgreSQL bulk paths write and read exactly what the ORM paths do (issue 4, invariants 3 and 7).

``strategies.bulk`` writes outbox actions and case changes with ``COPY``; the audit chain's ``COPY``
append (``audit_record_many`` on PostgreSQL) hashes in parts; ``strategies.selectors`` reads a batch's
facts and events with array parameters.
Each is compared here with the ORM path it replaces; the ``COPY`` writers exist on PostgreSQL only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.db.models import Count, Min
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.audit.chain import canonical, compact_json, hash_head, hash_join, hash_middle, row_hash
from relance.audit.models import AuditEvent
from relance.audit.services import PendingEvent, audit_record, audit_record_many, audit_verify
from relance.cases.models import Case, CaseClaim
from relance.cases.selectors import case_outstanding_minor
from relance.cases.services import case_promise
from relance.comms.models import Action
from relance.core.money import Money
from relance.core.sql import int_array
from relance.payments.models import Payment
from relance.payments.services import payment_record
from relance.strategies.bulk import CASE_FIELDS, actions_copy, cases_update_copy
from relance.strategies.engine import engine_tick
from relance.strategies.selectors import cases_events_since, cases_facts
from relance.tenancy.actors import Actor
from support import next_working_day_at

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY paths run on PostgreSQL only")
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("test")


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


def test_batch_facts_equal_the_orm_reads(place, world):
    same = {"email": "paul.durand@example.fr", "last_name": "Durand", "first_name": "Paul"}
    first = place("INV-1", "120.50", **same).case
    place("INV-2", "30.00", **same)  # may join the first case: two claims, the earliest due date
    other = place("INV-3", "99.99", creditor=world.other_creditor, due_days_ago=3, **same).case
    engine_tick(now=_weekday_noon())  # outbox actions to count
    ids = [first.pk, other.pk, 999_999]  # an unknown id has no claims, nothing outstanding

    found = cases_facts(case_ids=ids)

    for case in Case.objects.filter(pk__in=ids):
        links = CaseClaim.objects.filter(case=case).aggregate(due=Min("claim__due_date"), n=Count("pk"))
        facts = found[case.pk]
        assert (facts.due_date, facts.claims) == (links["due"], links["n"])
        assert facts.outstanding_minor == case_outstanding_minor(case=case)
        assert facts.contacts_sent == Action.objects.filter(case=case).count()
    assert found[first.pk].contacts_sent == 1
    assert (found[999_999].claims, found[999_999].outstanding_minor, found[999_999].contacts_sent) == (0, 0, 0)
    assert found[999_999].due_date is None
    # Plain Python ints (never the driver's Decimal for a SUM): the decision compares and adds them.
    assert {type(v) for f in found.values() for v in (f.claims, f.outstanding_minor, f.contacts_sent)} == {int}


def test_batch_events_equal_the_audit_rows(place):
    case = place("INV-1", "120.50").case
    engine_tick(now=_weekday_noon())  # active: it may promise
    case.refresh_from_db()
    cursor = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    payment_record(
        case=case, amount=Money(2000, "EUR"), method=Payment.Method.SIMULATED, external_ref="p1", actor=ACTOR
    )
    case_promise(case=case, on=date.today() + timedelta(days=5), amount_minor=1000, actor=ACTOR)

    events = cases_events_since(cases=[(case.pk, case.debtor_id, cursor, 10050)])[case.pk]

    rows = AuditEvent.objects.filter(seq__gt=cursor, verb__in=["payment.received", "case.status_changed"])
    assert [e.kind for e in events] == ["payment_partial", "promise_made"]
    assert [(e.id, e.at) for e in events] == [(r.seq, r.occurred_at) for r in rows.order_by("seq")]


@postgres_only
def test_copied_actions_equal_orm_created_ones(place):

    case = place("INV-1", "120.50").case
    at = _weekday_noon()
    with transaction.atomic():
        ids = actions_copy([(case.pk, case.debtor_id, "email", "first_notice", "k:1", at)], now=at)
        orm = Action.objects.create(
            case=case,
            debtor_id=case.debtor_id,
            channel="email",
            template="first_notice",
            step_key="k:2",
            scheduled_at=at,
        )
    copied = Action.objects.get(pk=ids[0])
    skip = {"id", "created_at", "updated_at", "step_key"}
    fields = [f.attname for f in Action._meta.concrete_fields if f.attname not in skip]
    assert {f: getattr(copied, f) for f in fields} == {f: getattr(orm, f) for f in fields}
    assert copied.step_key == "k:1" and copied.created_at == copied.updated_at == at
    assert orm.pk > copied.pk  # the sequence moved past the copied ids


@postgres_only
def test_copied_case_changes_are_written_and_a_second_batch_in_one_transaction_starts_empty(place):

    one, two = place("INV-1", "120.50").case, place("INV-2", "9.00", email="b@example.fr", last_name="B").case
    at = _weekday_noon()
    with transaction.atomic():
        one.step, one.next_action_at, one.variant = 3, at, "b"
        cases_update_copy([one])
        two.status, two.closed_at, two.next_action_at = "paid", at, None
        cases_update_copy([two])  # same transaction: the first batch's rows must not be applied again
        one_after = Case.objects.get(pk=one.pk)
        assert (one_after.step, one_after.next_action_at, one_after.variant) == (3, at, "b")
        Case.objects.filter(pk=one.pk).update(step=4)
        cases_update_copy([two])
    assert Case.objects.get(pk=one.pk).step == 4
    two_after = Case.objects.get(pk=two.pk)
    assert (two_after.status, two_after.closed_at, two_after.next_action_at) == ("paid", at, None)


@postgres_only
def test_lean_audit_append_keeps_one_valid_chain_with_the_ordinary_appends(place):

    case = place("INV-1", "120.50").case
    events = [
        PendingEvent("action.queued", "cases.case", case.pk, {"action": 7, "channel": "email", "step": "s:1"}),
        PendingEvent("strategy.assigned", "cases.case", case.pk, {"key": "default", "routed": False, "variant": ""}),
        # Not JSON-native: canonicalised as the ordinary path does (dates and decimals as strings).
        PendingEvent("engine.deferred", "cases.case", case.pk, {"on": date(2026, 1, 2), "amount": Decimal("1.50")}),
        PendingEvent("engine.deferred", "cases.case", case.pk, {"reason": "évité «ici»", "nested": {"b": [1, None]}}),
        # Characters the COPY's forms must carry as they are (binary COPY: json's form is its text, verbatim).
        PendingEvent("engine.deferred", "cases.case", case.pk, {"raw": 'C:\\n "q" \t \u0001 🙂 \\.', "n": -(2**62)}),
    ]
    # Enough events for the COPY path (a small batch takes the ordinary INSERT).
    filler = [PendingEvent("test.filler", "cases.case", case.pk, {"n": n}) for n in range(250)]
    with transaction.atomic():
        audit_record(actor=ACTOR, verb="test.before", subject=case)
        assert audit_record_many(actor=ACTOR, events=[*events, *filler]) == 255
        audit_record(actor=ACTOR, verb="test.after", subject=case)

    assert audit_verify()[1] is None
    rows = list(AuditEvent.objects.order_by("-seq")[:257])[::-1]
    assert [r.verb for r in rows] == ["test.before", *(e.verb for e in events), *["test.filler"] * 250, "test.after"]
    assert rows[3].data == {"amount": "1.50", "on": "2026-01-02"}
    assert rows[5].data == events[4].data
    for row in rows:
        assert row.hash == row_hash(
            seq=row.seq,
            occurred_at=row.occurred_at,
            actor=row.actor,
            verb=row.verb,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            data=row.data,
            prev_hash=row.prev_hash,
        )


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.dates() | st.decimals(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=10**12),
    at=st.datetimes(timezones=st.just(UTC)),
    actor=st.text(),
    verb=st.text(),
    subject_type=st.text(max_size=10),
    subject_id=st.text(max_size=10),
    data=st.dictionaries(st.text(max_size=8), _json_values, max_size=4),
    prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_the_hash_made_in_parts_is_the_chains_row_hash(*, seq, at, actor, verb, subject_type, subject_id, data, prev):

    stored = canonical(data)
    parts = hash_join(
        seq, hash_head(at, actor), hash_middle(verb, subject_type, subject_id, compact_json(stored)), prev
    )
    assert parts == row_hash(
        seq=seq,
        occurred_at=at,
        actor=actor,
        verb=verb,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
        prev_hash=prev,
    )


@postgres_only
@pytest.mark.django_db(transaction=True)  # the batches commit: their SET LOCAL must end with them
def test_the_batches_run_without_jit_and_leave_the_session_setting_alone(place, monkeypatch):
    from relance.strategies import engine

    place("INV-1", "120.50")
    place("INV-2", "99.00", email="autre@example.fr", last_name="Autre")
    seen: list[str] = []
    read = engine.cases_facts

    def spying(**kwargs):  # the JIT setting each batch's reads run under
        with connection.cursor() as cursor:
            cursor.execute("SHOW jit")
            seen.append(cursor.fetchone()[0])
        return read(**kwargs)

    monkeypatch.setattr(engine, "cases_facts", spying)
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")
        assert engine_tick(now=_weekday_noon(), batch_size=1).cases == 2
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "on"
        cursor.execute("RESET jit")
    assert seen == ["off", "off"]


def _engine_fields(case_id: int) -> tuple[object, ...]:
    return Case.objects.filter(pk=case_id).values_list(*CASE_FIELDS).get()


@postgres_only
def test_the_case_update_writes_changed_fields_and_batch_wide_values_as_the_orm_does(place):
    """``cases_update_copy`` with the values as read (``before``): a field no case changed is left out,
    one value shared by the whole batch travels once, the others as arrays — the rows end as the ORM's
    ``bulk_update`` of the same changes leaves them."""
    at = _weekday_noon()
    cases = [place(f"UP-{n}", "20.00", email=f"up{n}@example.fr", last_name=f"Up{n}").case for n in range(4)]
    twins = [place(f"UQ-{n}", "20.00", email=f"uq{n}@example.fr", last_name=f"Uq{n}").case for n in range(4)]
    for group in (cases, twins):  # the same changes to both groups
        for n, case in enumerate(group):
            case.status = "active"  # the same for all: one value
            case.step = n  # differs: an array
            case.step_at = at  # the same for all
            case.next_action_at = None if n == 2 else at + timedelta(days=n)  # differs, with a NULL
            case.variant = "b" if n == 1 else case.variant  # one case only
            case.updated_at = at
            # closed_at, event_seq, strategy_key, strategy_version: unchanged
    with transaction.atomic():
        read = zip(CASE_FIELDS, zip(*(_engine_fields(c.pk) for c in cases), strict=True), strict=True)
        cases_update_copy(cases, before=[None if f == "updated_at" else v for f, v in read])
        Case.objects.bulk_update(twins, list(CASE_FIELDS))
    for case, twin in zip(cases, twins, strict=True):
        assert _engine_fields(case.pk) == _engine_fields(twin.pk)
        assert Case.objects.get(pk=case.pk).step == case.step


@postgres_only
def test_the_case_update_leaves_out_fields_unchanged_since_read(place):
    """A field equal to its value as read for every case of the batch is not in the ``SET``: a value
    written meanwhile in the same transaction stays (the engine holds the rows' locks, so nothing else
    can write it; this shows the field is left out, not rewritten)."""
    case = place("UL-1", "20.00").case
    with transaction.atomic():
        before = [(v,) for v in _engine_fields(case.pk)]
        Case.objects.filter(pk=case.pk).update(variant="z")  # behind the update's back
        case.step = 5
        cases_update_copy([case], before=before)
        assert Case.objects.filter(pk=case.pk).values_list("step", "variant").get() == (5, "z")
        cases_update_copy([case], before=None)  # not known: every field written
        assert Case.objects.filter(pk=case.pk).values_list("step", "variant").get() == (5, case.variant)


@postgres_only
@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=30))
def test_an_int_array_literal_reads_back_as_the_same_integers(values):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::bigint[], %s::text[]", [int_array(values), int_array(map(str, values))])
        ints, texts = cursor.fetchone()
    assert ints == values
    assert texts == [str(v) for v in values]


@postgres_only
@pytest.mark.django_db(transaction=True)  # the batches commit, as in production
def test_the_batches_fixed_statements_are_prepared_once_per_connection_and_reused(place):
    """The batch reads and the case update are prepared on the connection (protocol level) and reused by
    every batch: one server-side statement each, run by every batch, and the results those of the tests
    above (the same SQL, only parsed and planned once). The claim is not: its best index depends on the
    values (how many cases are due), and the audit head's read is not: a plan made when the trail was
    small (a sort of a scan) would have stayed as it grew."""
    for n in range(4):
        place(f"INV-{n}", "120.50", email=f"p{n}@example.fr", last_name=f"Payeur{n}")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    connection.connection._prepared.clear()  # psycopg's own record of what it prepared, likewise emptied

    assert engine_tick(now=_weekday_noon(), batch_size=1).cases == 4

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        runs = dict(cursor.fetchall())
    ran = {
        "claim or head": [n for s, n in runs.items() if "FOR UPDATE SKIP LOCKED" in s or "ORDER BY seq DESC" in s],
        "facts": [n for s, n in runs.items() if "FROM unnest($1::bigint[]) AS ids(case_id)" in s],
        "events": [n for s, n in runs.items() if "FROM audit_auditevent" in s and "LATERAL" in s],
        "case update": [n for s, n in runs.items() if s.startswith("UPDATE cases_case")],
    }
    # One statement each, run by each of the four batches.
    assert ran == {
        "claim or head": [],
        "facts": [4],
        "events": [4],
        "case update": [4],
    }
    ok, broken = audit_verify()
    assert broken is None and ok >= 4
