"""The e-mail dispatcher's batched writes (issue 4, e-mail speed): same results as one message at a time.

- rendering with a batch's prefetched reads gives the very message rendering one case alone gives,
  and a case whose first letter leaves in the batch is read again (FR-COL-06);
- per message one hand-over statement; the ``action.sent`` audit events and the cases' last contact
  are written every ``FLUSH_EVERY`` messages, and a dispatcher that dies before writing them leaves
  sent e-mails whose lease is still set: recovery writes their events, once, and never resends them;
- the SMTP connection sends the final "." at once (TCP_NODELAY).
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from relance.audit.models import AuditEvent
from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.comms.mail import HandoverSMTPBackend
from relance.comms.models import Action, MessageTemplate
from relance.comms.render import render_message, render_prefetch
from relance.comms.services import _Handover, outbox_dispatch, outbox_recover
from relance.strategies.engine import engine_tick
from support import free_port, next_working_day_at

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


def _queue(place, n: int) -> list[Action]:
    cases = [place(f"B-{i}", f"{100 + i}.25", email=f"b{i}@example.fr", last_name=f"Batch{i}").case for i in range(n)]
    engine_tick(now=_weekday_noon())
    return list(Action.objects.filter(case__in=cases).order_by("pk"))


def test_prefetched_rendering_is_the_same_message_as_rendering_one_case_alone(place, world):
    first = place("P-1", "80.00", email="p1@example.fr", last_name="Un").case
    second = place("P-2", "45.10", email="p2@example.fr", last_name="Deux", language="en").case
    # a second claim for the same debtor joins the first case; a stored template for the creditor
    place("P-3", "19.99", email="p1@example.fr", last_name="Un")
    MessageTemplate.objects.create(
        channel="email",
        name="first_notice",
        language="fr",
        creditor=world.creditor,
        subject="Relance {{ case.reference }}",
        body_text="Reste dû : {{ outstanding }} ({{ claims|length }} factures).",
        body_html="<p>{{ outstanding }}</p>",
    )
    cases = list(Case.objects.filter(pk__in=[first.pk, second.pk]).select_related("creditor__agency", "debtor"))
    prefetch = render_prefetch(cases=cases, templates={("email", "first_notice")})
    for case in cases:
        alone = render_message(case=case, channel="email", template="first_notice")
        batched = render_message(case=case, channel="email", template="first_notice", prefetch=prefetch)
        assert batched == alone
    fr_case = next(c for c in cases if c.pk == first.pk)
    assert render_message(case=fr_case, channel="email", template="first_notice", prefetch=prefetch).subject.startswith(
        "Relance"
    )


def test_a_case_forgotten_by_the_prefetch_is_read_again(place):
    case = place("F-1", "80.00", email="f1@example.fr").case
    case = Case.objects.select_related("creditor__agency", "debtor").get(pk=case.pk)
    prefetch = render_prefetch(cases=[case], templates={("email", "first_notice")})
    assert prefetch.first_letters[case.pk] is None
    letter_day = timezone.now() - timedelta(days=3)
    Action.objects.create(
        case=case,
        debtor_id=case.debtor_id,
        channel=Action.Channel.LETTER,
        template="first_notice",
        status=Action.Status.SENT,
        scheduled_at=letter_day,
        sent_at=letter_day,
    )
    prefetch.forget(case.pk)  # what the dispatcher does once a letter of the batch has left
    again = render_message(case=case, channel="email", template="first_notice", prefetch=prefetch)
    assert again == render_message(case=case, channel="email", template="first_notice")
    assert timezone.localdate(letter_day).strftime("%d/%m/%Y") in again.text


def test_an_edited_stored_template_is_rendered_as_edited(place, world):
    case = place("E-1", "80.00", email="e1@example.fr").case
    stored = MessageTemplate.objects.create(
        channel="email",
        name="first_notice",
        language="fr",
        creditor=world.creditor,
        subject="Premier {{ case.reference }}",
        body_text="Texte un {{ outstanding }}.",
    )
    assert render_message(case=case, channel="email", template="first_notice").text.startswith("Texte un")
    stored.body_text = "Texte deux {{ outstanding }}."
    stored.save()
    assert render_message(case=case, channel="email", template="first_notice").text.startswith("Texte deux")


def test_batched_dispatch_audits_each_email_once_with_its_hash_and_clears_the_lease(place, smtp_server, monkeypatch):
    monkeypatch.setattr(_Handover, "FLUSH_EVERY", 2)  # 5 messages: flushes after 2, 4 and at the end
    actions = _queue(place, 5)
    now = _weekday_noon()
    report = outbox_dispatch(now=now)
    assert report.sent["email"] == 5
    assert sorted(m["X-Relance-Action"] for m in smtp_server.messages) == sorted(str(a.pk) for a in actions)
    for action in actions:
        action.refresh_from_db()
        assert action.status == Action.Status.SENT and action.lease == ""
        (event,) = AuditEvent.objects.filter(verb="action.sent", data__action=action.pk)
        assert event.data["hash"] == action.content_hash and event.subject_id == str(action.case_id)
        assert Case.objects.get(pk=action.case_id).last_contact_at == now
    assert audit_verify()[1] is None


def test_a_dispatcher_dead_before_writing_its_audit_events_leaves_them_to_recovery(place, smtp_server, monkeypatch):
    monkeypatch.setattr(_Handover, "flush", lambda self: None)  # dies after the sends: nothing written after
    actions = _queue(place, 3)
    now = _weekday_noon()
    outbox_dispatch(now=now)
    monkeypatch.undo()
    assert len(smtp_server.messages) == 3
    statuses = [Action.objects.get(pk=a.pk).status for a in actions]
    # the last message's 250 was only in memory: its fate is unknown to the database
    assert statuses == [Action.Status.SENT, Action.Status.SENT, Action.Status.HANDOVER]
    assert not AuditEvent.objects.filter(verb="action.sent").exists()

    assert outbox_recover(now=now + timedelta(minutes=5)) == 0  # maybe still working
    assert outbox_recover(now=now + timedelta(minutes=16)) == 3
    for action in actions[:2]:
        action.refresh_from_db()
        assert action.status == Action.Status.SENT and action.lease == ""
        (event,) = AuditEvent.objects.filter(verb="action.sent", data__action=action.pk)
        assert event.data["hash"] == action.content_hash
        assert Case.objects.get(pk=action.case_id).last_contact_at == action.sent_at
    last = Action.objects.get(pk=actions[2].pk)
    assert last.status == Action.Status.FAILED and "delivered once or not at all" in last.status_reason
    (failed,) = AuditEvent.objects.filter(verb="action.failed", data__action=last.pk)
    assert failed.data["hash"] == last.content_hash  # what may have left is in the trail

    assert outbox_recover(now=now + timedelta(minutes=30)) == 0  # once
    assert AuditEvent.objects.filter(verb="action.sent").count() == 2
    outbox_dispatch(now=now + timedelta(minutes=30))
    assert len(smtp_server.messages) == 3  # nothing sent again
    assert audit_verify()[1] is None


class _RefuseSecond:
    """An SMTP server that takes the first message and refuses the second at its final "."."""

    def __init__(self) -> None:
        self.seen = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.seen += 1
        return "250 OK" if self.seen != 2 else "554 5.7.1 refused"


def test_a_refusal_after_the_hand_over_is_failed_and_audited_with_the_hash_not_as_sent(place, settings):
    actions = _queue(place, 3)
    port = free_port()
    server = Controller(_RefuseSecond(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        settings.EMAIL_BACKEND = "relance.comms.mail.HandoverSMTPBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
        report = outbox_dispatch(now=_weekday_noon())
    finally:
        server.stop()
    assert (report.sent["email"], report.failed) == (2, 1)
    refused = Action.objects.get(pk=actions[1].pk)
    assert refused.status == Action.Status.FAILED and refused.lease == ""
    assert "after hand-over" in refused.status_reason and "554" in refused.status_reason
    (event,) = AuditEvent.objects.filter(verb="action.failed", data__action=refused.pk)
    assert event.data["hash"] == refused.content_hash
    assert not AuditEvent.objects.filter(verb="action.sent", data__action=refused.pk).exists()
    for action in (actions[0], actions[2]):
        assert Action.objects.get(pk=action.pk).status == Action.Status.SENT
        assert AuditEvent.objects.filter(verb="action.sent", data__action=action.pk).count() == 1
    assert audit_verify()[1] is None


def test_recovery_leaves_settled_actions_alone(place, smtp_server):
    actions = _queue(place, 2)
    now = _weekday_noon()
    outbox_dispatch(now=now)
    before = AuditEvent.objects.count()
    assert outbox_recover(now=now + timedelta(days=1)) == 0
    assert AuditEvent.objects.count() == before
    assert all(Action.objects.get(pk=a.pk).status == Action.Status.SENT for a in actions)


def test_the_smtp_connection_sends_without_delay(smtp_server):
    backend = HandoverSMTPBackend(host=smtp_server.host, port=smtp_server.port)
    assert backend.open()
    sock = backend.connection.sock
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    backend.close()


def test_a_message_with_a_very_long_line_goes_out_quoted_printable_as_django_builds_it(place, world, smtp_server):
    """The dispatcher writes its messages' bytes itself, except where Django would switch a part to
    quoted-printable (a line over 998 bytes): that message is built by Django, in the same batch."""
    long_line = "Détail " + "é" * 600  # ≈ 1,200 bytes on one line
    actions = _queue(place, 2)
    MessageTemplate.objects.create(
        channel="email",
        name=actions[0].template,
        language="fr",
        creditor=world.creditor,
        subject="Relance {{ case.reference }}",
        body_text="Reste dû : {{ outstanding }}.\n" + long_line + "\n{{ portal_url }}",
        body_html="<p>{{ outstanding }}</p>",
    )
    report = outbox_dispatch(now=_weekday_noon())
    assert report.sent["email"] == 2
    assert len(smtp_server.messages) == 2
    for message, action in zip(smtp_server.messages, actions, strict=True):
        action.refresh_from_db()
        assert action.status == Action.Status.SENT
        text, html = message.get_payload()
        assert text["Content-Transfer-Encoding"] == "quoted-printable"  # Django's choice, kept
        assert text.get_payload(decode=True).decode().replace("\r\n", "\n") == action.body_text
        assert long_line in action.body_text
        assert html["Content-Transfer-Encoding"] == "8bit"
        assert message["Message-ID"] == action.provider_message_id
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
