"""engine_tick and the outbox against the database, a real SMTP server and real threads.

Invariant 3: an Action is written in the same transaction as the case change that caused it, and a
crash neither loses nor doubles it. Invariant 4: the contact policy is checked when deciding and again
just before sending. FR-COL-16 (L121-7 3° C. conso): the weekly cap counts contacts across creditors.
"""

from __future__ import annotations

import socket
import threading
from datetime import datetime, timedelta
from email.message import Message
from zoneinfo import ZoneInfo

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, IntegrityError, connection, connections, transaction

from relance.audit.models import AuditEvent
from relance.cases.models import Case
from relance.cases.services import case_dispute
from relance.cases.status import Status
from relance.comms.models import Action
from relance.comms.policy import ContactPolicy
from relance.comms.services import action_queue, outbox_dispatch, outbox_recover
from relance.compliance import fr
from relance.strategies.engine import engine_tick
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor
from support import next_working_day_at

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
FIRST_NOTICE = "default:v1:first_notice"


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


def _debtor(n: int) -> dict[str, str]:
    return {"email": f"debtor{n}@example.fr", "last_name": f"Martin{n}"}


def _parts(message: Message) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }


def test_tick_queues_exactly_one_action_per_due_case(place):
    now = _weekday_noon()
    due = [place(f"INV-{n}", "120.50", **_debtor(n)).case for n in range(3)]
    disputed = place("INV-D", "50.00", **_debtor(10)).case
    case_dispute(case=disputed, reason="not_received", statement="", actor=ACTOR)
    later = place("INV-L", "50.00", **_debtor(11)).case
    Case.objects.filter(pk=later.pk).update(next_action_at=now + timedelta(days=1))

    before = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    report = engine_tick(now=now)

    assert report.contacts["email"] == 3
    assert report.transitions["active"] == 3
    for case in due:
        (action,) = Action.objects.filter(case=case)
        assert (action.channel, action.template, action.step_key) == ("email", "first_notice", FIRST_NOTICE)
        assert action.status == Action.Status.QUEUED
        assert action.debtor_id == case.debtor_id
        case.refresh_from_db()
        assert case.status == Status.ACTIVE
        assert case.step == 1
        assert case.next_action_at == case.placed_at + timedelta(days=7)  # the reminder step
        # One audit event for the case's change at this tick (FR-COL-05 trail, invariant 7): its data carries
        # the first look's strategy, the status change and the queued action (docs/decisions/0002).
        (event,) = AuditEvent.objects.filter(
            subject_type="cases.case", subject_id=str(case.pk), seq__gt=before, actor="system:engine"
        )
        assert event.verb == "case.status_changed"
        assert event.data == {
            "key": "default",
            "version": 1,
            "variant": "",
            "routed": False,
            "from": "new",
            "to": "active",
            "reason": "step first_notice",
            "action": action.pk,
            "channel": "email",
            "template": "first_notice",
            "step": FIRST_NOTICE,
        }
    assert not Action.objects.filter(case__in=[disputed, later]).exists()


def _fail_updates_of_step(case_id: int) -> None:
    """A database failure at the moment the engine writes the case's new step (after queuing)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_boom() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$"
                " LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER test_boom BEFORE UPDATE OF step ON cases_case FOR EACH ROW"
                f" WHEN (NEW.id = {int(case_id)}) EXECUTE FUNCTION test_boom()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER test_boom BEFORE UPDATE OF step ON cases_case WHEN NEW.id = {int(case_id)}"
                " BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )


def test_action_and_case_change_commit_together_or_not_at_all(place):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    _fail_updates_of_step(case.pk)

    try:
        with transaction.atomic():
            engine_tick(now=now)
    except DatabaseError:
        pass  # the engine may let the failure through; either way nothing may be half-written

    case.refresh_from_db()
    assert not Action.objects.filter(case=case).exists()
    assert case.status == Status.NEW
    assert case.step == 0
    assert not AuditEvent.objects.filter(verb="action.queued", subject_id=str(case.pk)).exists()


@pytest.mark.django_db(transaction=True)
def test_action_queue_refuses_to_run_outside_the_deciding_transaction(place):
    case = place("INV-1", "120.50").case
    with pytest.raises(RuntimeError, match="inside the deciding transaction"):
        action_queue(
            case=case, channel="email", template="first_notice", step_key="x", scheduled_at=case.placed_at, actor=ACTOR
        )
    assert not Action.objects.exists()


def test_a_second_tick_at_the_same_time_decides_nothing_new(place):
    now = _weekday_noon()
    for n in range(3):
        place(f"INV-{n}", "10.00", **_debtor(n))
    engine_tick(now=now)
    actions, events = Action.objects.count(), AuditEvent.objects.count()

    report = engine_tick(now=now)

    assert report.cases == 0
    assert not report.contacts
    assert (Action.objects.count(), AuditEvent.objects.count()) == (actions, events)


def test_a_re_decided_step_never_creates_a_second_action(place):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    engine_tick(now=now)
    # As if the case's progress had been lost (a restored backup, a bug): the step is due again.
    Case.objects.filter(pk=case.pk).update(step=0, next_action_at=now)

    try:
        with transaction.atomic():
            engine_tick(now=now + timedelta(minutes=5))
    except IntegrityError:
        pass  # the unique (case, step_key) constraint is what stops it

    assert Action.objects.filter(case=case, step_key=FIRST_NOTICE).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Action.objects.create(
            case=case, debtor_id=case.debtor_id, channel="email", template="x", step_key=FIRST_NOTICE, scheduled_at=now
        )


def test_step_less_actions_never_collide_and_the_unique_index_serves_lookups_by_case(place):
    """A contact outside a strategy's steps has no step key (NULL): any number per case (decision 0009)."""
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    engine_tick(now=now)  # the strategy's first step
    with transaction.atomic():
        for template in ("manual_a", "manual_b"):
            action_queue(
                case=case, channel="email", template=template, step_key="", scheduled_at=now, actor=Actor.system("t")
            )
    assert list(Action.objects.filter(case=case).values_list("step_key", "template").order_by("pk")) == [
        (FIRST_NOTICE, Action.objects.get(case=case, step_key=FIRST_NOTICE).template),
        (None, "manual_a"),
        (None, "manual_b"),
    ]
    if connection.vendor == "postgresql":  # no separate case index: the unique one serves ``case_id =``
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'comms_action' AND indexdef LIKE '%%(case_id%%'"
            )
            assert [r[0] for r in cursor.fetchall()] == [
                "CREATE UNIQUE INDEX action_unique_step ON public.comms_action USING btree (case_id, step_key)"
            ]
            with transaction.atomic():
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("EXPLAIN SELECT COUNT(*) FROM comms_action WHERE case_id = %s", [case.pk])
                assert "action_unique_step" in "\n".join(r[0] for r in cursor.fetchall())


def test_dispatch_sends_html_and_text_through_smtp_with_the_action_id(place, smtp_server, settings):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    engine_tick(now=now)
    action = Action.objects.get(case=case)

    report = outbox_dispatch(now=now)

    assert report.sent["email"] == 1
    (message,) = smtp_server.messages
    assert message["To"] == "jeanne.martin@example.fr"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert f"action-{action.pk}@" in message["Message-ID"]
    assert message["X-Relance-Action"] == str(action.pk)
    assert message.get_content_type() == "multipart/alternative"
    parts = _parts(message)
    assert set(parts) == {"text/plain", "text/html"}
    assert "120,50" in parts["text/plain"]
    assert "120,50" in parts["text/html"]
    assert case.reference in parts["text/plain"]
    # A Mode B creditor: the collector says it does amicable collection (R124-4 1°, FR-COL-05) and
    # the letter reproduces L111-8 (FR-COL-07).
    text = " ".join(parts["text/plain"].split())
    assert "recouvrement amiable" in text
    assert all(" ".join(paragraph.split()) in text for paragraph in fr.L111_8_PARAGRAPHS)
    action.refresh_from_db()
    assert action.status == Action.Status.SENT
    assert action.sent_at == now
    assert action.attempts == 1
    assert action.to_address == "jeanne.martin@example.fr"
    assert action.provider_message_id == message["Message-ID"]
    assert action.body_text.strip() == parts["text/plain"].strip().replace("\r\n", "\n")
    assert len(action.content_hash) == 64
    case.refresh_from_db()
    assert case.last_contact_at == now
    assert AuditEvent.objects.filter(verb="action.sent", subject_id=str(case.pk)).exists()
    # Nothing is sent twice.
    assert outbox_dispatch(now=now + timedelta(minutes=1)).sent["email"] == 0
    assert len(smtp_server.messages) == 1


def test_a_case_disputed_after_queuing_is_blocked_at_send_time(place, smtp_server):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    engine_tick(now=now)
    case.refresh_from_db()
    case_dispute(case=case, reason="not_received", statement="Jamais reçu", actor=ACTOR)

    report = outbox_dispatch(now=now)

    assert report.blocked == 1
    assert not report.sent
    assert smtp_server.messages == []
    action = Action.objects.get(case=case)
    assert action.status == Action.Status.BLOCKED
    assert "disputed" in action.status_reason
    assert AuditEvent.objects.filter(verb="action.blocked", subject_id=str(case.pk)).exists()


def test_a_debtor_who_opted_out_after_queuing_is_blocked_at_send_time(place, smtp_server):
    now = _weekday_noon()
    placed = place("INV-1", "120.50")
    engine_tick(now=now)
    placed.claim.debtor.email_opt_out = True
    placed.claim.debtor.save(update_fields=["email_opt_out"])

    report = outbox_dispatch(now=now)

    assert report.blocked == 1
    assert smtp_server.messages == []
    action = Action.objects.get(case=placed.case)
    assert action.status == Action.Status.BLOCKED
    assert "opted out" in action.status_reason


def test_the_weekly_cap_counts_contacts_across_creditors(world, place):
    now = _weekday_noon()
    third = Creditor.objects.create(agency=world.agency, slug="third", legal_name="Third SA", mode="B")
    cases = [
        place("INV-A", "10.00").case,
        place("INV-B", "20.00", creditor=world.other_creditor).case,
        place("INV-C", "30.00", creditor=third).case,
    ]
    assert len({c.debtor_id for c in cases}) == 1
    assert len({c.creditor_id for c in cases}) == 3
    policy = ContactPolicy(max_contacts_per_7_days=2, min_gap=timedelta(0))

    report = engine_tick(now=now, policy=policy)

    assert report.contacts["email"] == 2
    assert report.deferred == 1
    assert Action.objects.filter(debtor_id=cases[0].debtor_id).count() == 2
    deferred = next(c for c in cases if not Action.objects.filter(case=c).exists())
    deferred.refresh_from_db()
    assert deferred.step == 0
    assert deferred.next_action_at > now
    event = AuditEvent.objects.get(verb="engine.deferred", subject_id=str(deferred.pk))
    assert "cap" in event.data["reason"]


def test_smtp_failure_marks_the_action_failed_with_the_error(place, settings):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port
    settings.EMAIL_USE_TLS = False
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    engine_tick(now=now)

    report = outbox_dispatch(now=now)

    assert report.failed == 1
    action = Action.objects.get(case=case)
    assert action.status == Action.Status.FAILED
    assert "refused" in action.status_reason.lower() or "errno" in action.status_reason.lower()
    assert action.sent_at is None
    event = AuditEvent.objects.get(verb="action.failed", subject_id=str(case.pk))
    assert event.data["reason"] == action.status_reason


class _Crash(BaseException):
    """The process dies mid-send (not an Exception: nothing in the dispatcher catches it)."""


class _CrashingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise _Crash


def test_a_dispatcher_crash_leaves_the_action_in_sending_and_recover_requeues_it(place, smtp_server):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    engine_tick(now=now)
    with pytest.raises(_Crash):
        outbox_dispatch(now=now, email_connection=_CrashingBackend())
    action = Action.objects.get(case=case)
    assert action.status == Action.Status.SENDING

    assert outbox_recover(now=now + timedelta(minutes=5)) == 0  # not stale yet: maybe still sending
    assert outbox_recover(now=now + timedelta(minutes=16)) == 1
    action.refresh_from_db()
    assert action.status == Action.Status.QUEUED

    report = outbox_dispatch(now=now + timedelta(minutes=16))
    assert report.sent["email"] == 1
    assert len(smtp_server.messages) == 1
    action.refresh_from_db()
    assert action.status == Action.Status.SENT


postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_never_duplicate_actions(place):
    now = _weekday_noon()
    cases = [place(f"INV-{n}", "10.00", **_debtor(n)).case for n in range(24)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    reports = []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(engine_tick(now=now, batch_size=4))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert sum(r.contacts["email"] for r in reports) == len(cases)
    assert Action.objects.count() == len(cases)
    assert set(Action.objects.values_list("case_id", flat=True)) == {c.pk for c in cases}
    assert set(Case.objects.values_list("step", flat=True)) == {1}
