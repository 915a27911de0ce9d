"""The engine's batch reads and bulk writes decide exactly as the one-case path would (issue 4).

``engine_tick`` reads balances, contact pressure and evidence for a whole batch and writes in bulk;
``snapshot`` is the one-case read. Both must see the same case, and cases of one debtor in the same
batch must see each other's fresh contacts (the cap is per debtor, across creditors: FR-COL-16/19).
"""

from __future__ import annotations

import gc
import threading
import weakref
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import execute_from_command_line
from django.db import connection, connections, transaction

from relance.audit.models import AuditEvent
from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor, cases_outstanding_minor
from relance.claims.models import Debtor
from relance.comms.models import Action
from relance.comms.services import debtor_recent_contacts, debtors_recent_contacts
from relance.strategies import engine
from relance.strategies.bulk import CASE_FIELDS
from relance.strategies.engine import engine_tick
from relance.tenancy.models import Creditor
from support import next_working_day_at

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
SAME = {"email": "paul.durand@example.fr", "last_name": "Durand", "first_name": "Paul"}


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


def test_batch_reads_equal_the_one_case_reads(place, world):
    now = _weekday_noon()
    first = place("INV-1", "120.50", **SAME).case
    place("INV-2", "30.00", **SAME)  # same debtor, same creditor: may join the same case
    other = place("INV-3", "99.99", creditor=world.other_creditor, **SAME).case
    alone = place("INV-4", "10.00", email="x@example.fr", last_name="Autre").case
    engine_tick(now=now)  # queues first notices: pending contacts to count
    now += timedelta(days=1)
    cases = list(Case.objects.filter(pk__in=[first.pk, other.pk, alone.pk]))

    expected = {c.pk: case_outstanding_minor(case=c) for c in cases}
    assert cases_outstanding_minor(case_ids=[c.pk for c in cases]) == expected
    debtors = list({c.debtor_id for c in cases})
    batch = debtors_recent_contacts(debtor_ids=debtors, now=now)
    assert {d: sorted(t) for d, t in batch.items()} == {
        d: sorted(debtor_recent_contacts(debtor_id=d, now=now)) for d in debtors
    }
    assert any(batch.values())  # the earlier tick's contacts are there to compare


def test_two_creditors_cases_of_one_debtor_in_one_batch_share_the_contact_policy(place, world):
    now = _weekday_noon()
    mine = place("INV-1", "120.50", **SAME).case
    theirs = place("INV-9", "80.00", creditor=world.other_creditor, **SAME).case
    assert mine.debtor_id == theirs.debtor_id  # one debtor, two creditors

    report = engine_tick(now=now, batch_size=10)  # both in one batch

    assert report.cases == 2
    actions = list(Action.objects.filter(debtor_id=mine.debtor_id))
    assert len(actions) == 1  # the second case saw the first one's fresh contact: minimum gap (48 h)
    deferred = Case.objects.get(pk=theirs.pk if actions[0].case_id == mine.pk else mine.pk)
    assert deferred.next_action_at > now
    assert AuditEvent.objects.filter(verb="engine.deferred").count() == 1
    assert audit_verify()[1] is None


def _tick_events(case_ids: list[int]) -> dict[int, list[tuple[str, dict[str, object]]]]:
    """Each case's engine events (verb, data), with the action id replaced by the action's step key."""
    steps = dict(Action.objects.filter(case_id__in=case_ids).values_list("pk", "step_key"))
    found: dict[int, list[tuple[str, dict[str, object]]]] = {pk: [] for pk in case_ids}
    for verb, subject_id, data in AuditEvent.objects.filter(
        actor="system:engine", subject_type="cases.case", subject_id__in=[str(pk) for pk in case_ids]
    ).values_list("verb", "subject_id", "data"):
        shown = {**data, "action": steps[data["action"]]} if "action" in data else data
        found[int(subject_id)].append((verb, shown))
    return found


def test_one_audit_event_per_changed_case_the_same_in_a_batch_and_one_by_one(place, world, monkeypatch):
    """Invariant 7 with one event per case change per tick (docs/decisions/0002): the batch path (COPY on
    PostgreSQL) and the one-case fallback write the same single event per case."""
    now = _weekday_noon()

    def group(tag: str) -> list[int]:
        queued = place(f"{tag}-1", "120.50", email=f"{tag}1@example.fr", last_name=f"{tag}A").case
        later = place(f"{tag}-2", "35.00", email=f"{tag}2@example.fr", last_name=f"{tag}B", due_days_ago=1).case
        no_email = place(f"{tag}-3", "40.00", email="", last_name=f"{tag}C").case
        return [queued.pk, later.pk, no_email.pk]

    batched, alone = group("BA"), group("AL")
    Case.objects.filter(pk__in=alone).update(next_action_at=now + timedelta(days=30))
    assert engine_tick(now=now).cases == 3  # the batch path

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bulk write failed")

    monkeypatch.setattr(engine, "_decide_batch", broken)  # every case goes through the one-case fallback
    Case.objects.filter(pk__in=alone).update(next_action_at=now)
    assert engine_tick(now=now).cases == 3

    first, second = _tick_events(batched), _tick_events(alone)
    for a, b in zip(batched, alone, strict=True):
        assert len(first[a]) == 1  # one event for the case's change at this tick
        assert first[a] == second[b]
    verbs = [first[pk][0][0] for pk in batched]
    assert verbs[0] == "case.status_changed"  # new → active with the first notice queued
    assert {"from", "to", "key", "variant", "action", "channel", "step"} <= set(first[batched[0]][0][1])
    assert audit_verify()[1] is None


def test_a_tick_hands_every_object_back_to_the_garbage_collector(place):
    """The tick keeps long-lived objects out of the collector's passes while it runs, never after."""
    place("INV-GC", "20.00", email="gc@example.fr", last_name="Gc")
    before = gc.get_freeze_count()
    assert gc.isenabled()
    assert engine_tick(now=_weekday_noon()).cases == 1
    assert gc.get_freeze_count() == before
    assert gc.isenabled()  # off during the tick only
    gc.disable()
    try:
        engine_tick(now=_weekday_noon())
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


class _Cycle:
    me: object


def test_a_batch_s_reference_cycles_are_collected_during_the_tick(place, monkeypatch):
    """With the collector off during the tick, what a batch leaves in reference cycles is collected once
    the batch is over, not kept until the tick ends."""
    for n in range(3):
        place(f"INV-CY{n}", "20.00", email=f"cy{n}@example.fr", last_name=f"Cy{n}")
    refs: list[weakref.ref[_Cycle]] = []
    alive: list[list[bool]] = []
    decide_batch = engine._decide_batch

    def leaky(batch, **kwargs):
        alive.append([ref() is not None for ref in refs])  # the earlier batches' cycles
        cycle = _Cycle()
        cycle.me = cycle  # unreachable after the batch: only the cyclic collector frees it
        refs.append(weakref.ref(cycle))
        return decide_batch(batch, **kwargs)

    monkeypatch.setattr(engine, "_decide_batch", leaky)
    assert engine_tick(now=_weekday_noon(), batch_size=1).cases == 3
    assert alive == [[], [False], [False, False]]


def test_a_batch_snapshot_equals_the_one_case_snapshot(place, world, monkeypatch):
    """The batch builds each ``CaseSnapshot`` from plain rows (its claim query, the debtor's columns, the
    creditor read once per batch): ``decide`` sees what the one-case ``snapshot`` reads of the case."""
    now = _weekday_noon()
    ids = [
        place("SN-1", "120.50", **SAME).case.pk,
        place("SN-2", "80.00", creditor=world.other_creditor, email="x2@example.fr", last_name="Autre").case.pk,
        place("SN-3", "40.00", email="", last_name="Sansmail").case.pk,  # no e-mail: call and SMS only
        place("SN-4", "15.00", email="x4@example.fr", last_name="Sansphone", phone="").case.pk,
        place("SN-5", "15.00", email="x5@example.fr", last_name="Stop", due_days_ago=2).case.pk,
    ]
    debtor = Case.objects.get(pk=ids[4]).debtor  # answered STOP, a letter came back, lives in Martinique
    debtor.sms_opt_out, debtor.address_invalid, debtor.timezone = True, True, "America/Martinique"
    debtor.save()
    engine_tick(now=now)  # first look: strategies assigned, first notices queued
    now += timedelta(days=8)  # the reminders are due
    expected = {
        case.pk: engine.snapshot(case, now.astimezone(UTC))
        for case in Case.objects.select_related("debtor", "creditor").filter(pk__in=ids)
    }
    seen = {}
    decide = engine.decide

    def spy(snapshot, strategy, policy, at):
        seen[snapshot.case_id] = snapshot
        return decide(snapshot, strategy, policy, at)

    monkeypatch.setattr(engine, "decide", spy)
    engine_tick(now=now, batch_size=2)  # three batches
    assert seen == expected
    channels = [seen[pk].channels for pk in ids]
    assert channels[0] == channels[1] == frozenset({"email", "letter", "call", "sms"})
    assert channels[2] == frozenset({"letter", "call", "sms"})
    assert channels[3] == frozenset({"email", "letter"})
    assert channels[4] == frozenset({"email", "call"})
    assert seen[ids[4]].debtor_timezone == "America/Martinique"
    assert seen[ids[1]].creditor == world.other_creditor.slug


@pytest.mark.parametrize("flags", range(64))
def test_the_channels_of_a_debtor_follow_its_six_facts(flags):
    """``_channels`` hands out one shared frozenset per combination: the same as built for each debtor."""
    address, invalid, email, opt_out, bounced, sms_stop = (bool(flags & (1 << n)) for n in range(6))
    debtor = engine.DebtorFacts(
        "Europe/Paris",
        "3 rue des Lilas" if address else "",
        invalid,
        "a@example.fr" if email else "",
        opt_out,
        bounced,
        "+33612345678" if flags % 3 else "",
        sms_stop,
        "person",
        "fr",
    )
    expected = set()
    if debtor.address_line1 and not debtor.address_invalid:
        expected.add("letter")
    if debtor.email and not debtor.email_opt_out and not debtor.email_bounced:
        expected.add("email")
    if debtor.phone:
        expected.add("call")
        if not debtor.sms_opt_out:
            expected.add("sms")
    assert engine._channels(debtor) == frozenset(expected)


def test_the_claim_query_reads_the_same_rows_on_postgresql_as_the_orm(place, world):
    """PostgreSQL claims a batch with its own SQL (``FOR UPDATE SKIP LOCKED``, ``timestamptz`` through
    psycopg's compiled loader): the same rows, values and time zones as the ORM's query."""
    now = _weekday_noon()
    for n in range(5):
        place(f"CQ-{n}", "20.00", email=f"cq{n}@example.fr", last_name=f"Cq{n}")
    Case.objects.filter(reference__isnull=False).update(step_at=now - timedelta(days=3), event_seq=7)
    orm = list(
        Case.objects.filter(status__in=engine.DUE_STATUSES, next_action_at__lte=now, pk__gt=0)
        .order_by("pk")
        .values_list(*engine._BATCH_COLUMNS)[:3]
    )
    with transaction.atomic():
        claimed = engine._batch_claim(now=now, after=0, size=3)
    case_columns = [name for name in engine._BATCH_COLUMNS if not name.startswith("debtor__")]
    rows = [(*(getattr(c, name) for name in case_columns), *c.debtor) for c in claimed]
    assert rows == orm
    assert len(rows) == 3
    for got, want in zip(rows, orm, strict=True):
        assert [type(v) for v in got] == [type(v) for v in want]
        assert [v.tzinfo for v in got if isinstance(v, datetime)] == [v.tzinfo for v in want if isinstance(v, datetime)]


def test_a_batch_row_reads_every_field_the_engine_writes_back():
    """The case update writes ``CASE_FIELDS`` from the batch rows: each is read by the claim (but the
    time of the update, which the batch sets)."""
    assert set(CASE_FIELDS) - {"updated_at"} <= set(engine._BATCH_COLUMNS)
    assert set(CASE_FIELDS) <= set(engine.BatchCase.__slots__)


def test_a_batch_reads_its_creditors_as_the_orm_does(place, world):
    """PostgreSQL reads the batch's creditors with its own SQL (the mandate's evidence from ``jsonb``)."""
    world.other_creditor.required_evidence = ["invoice", "delivery_proof"]
    world.other_creditor.save()
    place("CR-1", "20.00", email="cr1@example.fr", last_name="Cr")
    place("CR-2", "20.00", creditor=world.other_creditor, email="cr2@example.fr", last_name="Cr2")
    with transaction.atomic():
        batch = engine._batch_claim(now=_weekday_noon(), after=0, size=10)
        found = engine._batch_creditors(batch)
    expected = {
        pk: engine.CreditorFacts(segment, slug, required)
        for pk, segment, slug, required in Creditor.objects.filter(
            pk__in=[world.creditor.pk, world.other_creditor.pk]
        ).values_list("pk", "segment", "slug", "required_evidence")
    }
    assert found == expected
    assert found[world.other_creditor.pk].required_evidence == ["invoice", "delivery_proof"]


def test_a_case_that_fails_is_recorded_and_retried_later_the_others_decided(place, monkeypatch):
    """A failing case fails its batch; the batch is then decided case by case (``_decide_one``): the bad
    case gets an ``engine.error`` event and is looked at again an hour later, the others go on."""
    now = _weekday_noon()
    good = place("ER-1", "20.00", email="er1@example.fr", last_name="Er1").case
    bad = place("ER-2", "20.00", email="er2@example.fr", last_name="Er2").case
    decide = engine.decide

    def failing(snapshot, strategy, policy, at):
        if snapshot.case_id == bad.pk:
            raise ValueError("a broken case")
        return decide(snapshot, strategy, policy, at)

    monkeypatch.setattr(engine, "decide", failing)
    report = engine_tick(now=now)

    assert (report.cases, report.errors) == (1, 1)
    error = AuditEvent.objects.get(verb="engine.error")
    assert (error.subject_type, error.subject_id) == ("cases.case", str(bad.pk))
    assert error.data["error"].startswith("ValueError")
    assert Case.objects.get(pk=bad.pk).next_action_at == now + engine.ERROR_RETRY
    assert Action.objects.filter(case_id=good.pk).count() == 1
    assert not Action.objects.filter(case_id=bad.pk).exists()
    assert audit_verify()[1] is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks between connections need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_claim_skips_cases_another_worker_holds_and_never_waits_on_a_debtor(place):
    """``SKIP LOCKED``: a case another transaction holds is left out of the batch, the next ones come in
    its place; a debtor row another transaction holds does not hold the claim up (only cases are locked)."""
    now = _weekday_noon()
    cases = [place(f"SL-{n}", "20.00", email=f"sl{n}@example.fr", last_name=f"Sl{n}").case for n in range(4)]
    held, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                Case.objects.select_for_update().filter(pk=cases[0].pk).get()
                Debtor.objects.select_for_update().filter(pk=cases[1].debtor_id).get()
                held.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '5s'")  # a wait fails the test instead of hanging it
            batch = engine._batch_claim(now=now, after=0, size=2)
    finally:
        release.set()
        thread.join(30)
    assert [c.id for c in batch] == [cases[1].pk, cases[2].pk]
    assert [c.debtor_id for c in batch] == [cases[1].debtor_id, cases[2].debtor_id]
    assert batch[0].debtor.email == "sl1@example.fr"


def test_the_engine_command_does_not_rerun_the_system_checks(place, monkeypatch, capsys):
    """A worker process (``relance engine tick``, run as from the command line) decides cases without
    re-running Django's system checks (≈ 0.8 s of CPU per start): they run at deployment (``relance
    check --deploy``, ``migrate``)."""
    place("SC-1", "20.00")

    def refuse(*args, **kwargs):
        raise AssertionError("system checks run by the engine command")

    monkeypatch.setattr("django.core.management.base.checks.run_checks", refuse)
    execute_from_command_line(["relance", "engine", "tick", "--no-dispatch", "--now", _weekday_noon().isoformat()])
    assert "1 cases decided" in capsys.readouterr().out
