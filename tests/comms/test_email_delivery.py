"""E-mail delivery: the SMTP hand-over, recovery, List-Unsubscribe and ESP webhooks (issue 4).

Against a real SMTP server (aiosmtpd). ESP webhooks are posted in each provider's documented
payload shape and go through django-anymail's own parsing and basic-auth check.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from email.message import Message
from zoneinfo import ZoneInfo

import pytest
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse

from relance.audit.models import AuditEvent
from relance.claims.models import Debtor
from relance.comms.mail import HandoverAborted, HandoverSMTPBackend
from relance.comms.models import Action, ActionEvent
from relance.comms.services import outbox_dispatch, outbox_recover
from relance.comms.unsubscribe import unsubscribe_token, unsubscribe_url
from relance.strategies.engine import engine_tick

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
SECRET = "relance:hook-secret"


def _weekday_noon() -> datetime:
    day = datetime.now(PARIS).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)


def _queued(place, n: int = 0) -> Action:
    case = place(f"INV-{n}", "120.50", email=f"debtor{n}@example.fr", last_name=f"Martin{n}").case
    engine_tick(now=_weekday_noon())
    return Action.objects.get(case=case)


def test_the_hand_over_is_called_before_the_server_has_the_message_and_a_refusal_drops_it(smtp_server):
    backend = HandoverSMTPBackend(host=smtp_server.host, port=smtp_server.port)
    seen_at_handover: list[int] = []

    def refuse() -> None:
        seen_at_handover.append(len(smtp_server.messages))
        raise HandoverAborted("lease lost")

    with pytest.raises(HandoverAborted):
        backend.send_with_handover(EmailMessage("s", "b", "a@x.fr", ["b@x.fr"]), refuse)
    backend.send_with_handover(
        EmailMessage("s2", "b2", "a@x.fr", ["b@x.fr"]), lambda: seen_at_handover.append(len(smtp_server.messages))
    )
    backend.close()

    assert seen_at_handover == [0, 0]  # the server had nothing yet when the hand-over was recorded
    assert [m["Subject"] for m in smtp_server.messages] == ["s2"]  # the refused one was never completed


def test_an_action_requeued_under_a_live_dispatcher_is_not_sent_by_it_and_later_sent_once(place, smtp_server):
    action = _queued(place)
    now = _weekday_noon()

    class Racing(HandoverSMTPBackend):
        """Recovery (another process) requeues the action while this dispatcher is mid-message."""

        def send_with_handover(self, message, on_handover):  # type: ignore[no-untyped-def]
            outbox_recover(now=now + timedelta(hours=1))
            super().send_with_handover(message, on_handover)

    racing = Racing(host=smtp_server.host, port=smtp_server.port)
    report = outbox_dispatch(now=now, email_connection=racing)
    racing.close()
    assert sum(report.sent.values()) == 0 and not smtp_server.messages
    action.refresh_from_db()
    assert action.status == Action.Status.QUEUED

    assert outbox_dispatch(now=now).sent["email"] == 1
    assert len(smtp_server.messages) == 1
    action.refresh_from_db()
    assert action.status == Action.Status.SENT


def test_recovery_requeues_what_never_left_and_fails_an_unknown_hand_over_with_its_reason(place, smtp_server):
    first, second = _queued(place, 1), _queued(place, 2)
    now = _weekday_noon()
    Action.objects.filter(pk=first.pk).update(status=Action.Status.SENDING, lease="dead", updated_at=now)
    Action.objects.filter(pk=second.pk).update(
        status=Action.Status.HANDOVER, lease="dead", updated_at=now, provider_message_id="<action-x@localhost>"
    )

    assert outbox_recover(now=now + timedelta(minutes=5)) == 0  # maybe still working
    assert outbox_recover(now=now + timedelta(minutes=16)) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Action.Status.QUEUED
    assert second.status == Action.Status.FAILED
    assert "delivered once or not at all" in second.status_reason and "<action-x@localhost>" in second.status_reason
    assert AuditEvent.objects.filter(verb="action.failed").count() == 1

    outbox_dispatch(now=now + timedelta(minutes=16))
    assert [m["X-Relance-Action"] for m in smtp_server.messages] == [str(first.pk)]  # never the unknown one


def test_each_email_has_list_unsubscribe_and_the_one_click_post_opts_the_debtor_out(place, smtp_server, client):
    action = _queued(place)
    outbox_dispatch(now=_weekday_noon())
    (message,) = smtp_server.messages
    url = unsubscribe_url(debtor_id=action.debtor_id)
    assert message["List-Unsubscribe"].replace("\r\n", "").strip() == f"<{url}>"  # may be folded
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] == f"<action-{action.pk}@localhost>"
    assert isinstance(message, Message)

    path = url.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)  # a link scanner's GET changes nothing
    assert page.status_code == 200
    assert not Debtor.objects.get(pk=action.debtor_id).email_opt_out

    done = client.post("/" + path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200
    assert Debtor.objects.get(pk=action.debtor_id).email_opt_out
    assert AuditEvent.objects.filter(verb="debtor.email_opt_out").count() == 1
    client.post("/" + path)  # a second click records nothing more
    assert AuditEvent.objects.filter(verb="debtor.email_opt_out").count() == 1

    forged = client.post(reverse("hooks:email_unsubscribe", kwargs={"token": unsubscribe_token(debtor_id=1) + "x"}))
    assert forged.status_code == 404


def test_an_opted_out_debtor_gets_no_more_email_but_still_other_channels(place, smtp_server):
    action = _queued(place)
    Action.objects.filter(pk=action.pk).update(status=Action.Status.QUEUED)
    Debtor.objects.filter(pk=action.debtor_id).update(email_opt_out=True)
    outbox_dispatch(now=_weekday_noon())
    action.refresh_from_db()
    assert action.status == Action.Status.BLOCKED and "opted out" in action.status_reason
    assert not smtp_server.messages


def _basic(secret: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def _brevo(action: Action, event: str, ts: int = 1_764_000_000_000) -> str:
    return json.dumps(
        {
            "event": event,
            "email": "debtor0@example.fr",
            "id": 123456,
            "date": "2026-11-26 12:00:05",
            "ts": ts // 1000,
            "message-id": "<202611261200.1234@smtp-relay.mailin.fr>",
            "ts_event": ts // 1000,
            "ts_epoch": ts,
            "subject": "Relance",
            "reason": "550 mailbox unavailable" if "bounce" in event else "",
            "X-Mailin-custom": json.dumps({"action": str(action.pk)}),
        }
    )


def test_brevo_delivered_then_hard_bounce_settle_the_action_and_mark_the_address(place, client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    action = _queued(place)
    Action.objects.filter(pk=action.pk).update(status=Action.Status.SENT)
    url = reverse("hooks:email_brevo_tracking")

    ok = client.post(url, _brevo(action, "delivered"), content_type="application/json", **_basic())
    assert ok.status_code == 200
    action.refresh_from_db()
    assert action.status == Action.Status.DELIVERED
    again = client.post(url, _brevo(action, "delivered"), content_type="application/json", **_basic())
    assert again.status_code == 200
    assert ActionEvent.objects.filter(action=action, kind="delivered").count() == 1  # a retried hook counts once

    client.post(url, _brevo(action, "hard_bounce", ts=1_764_000_100_000), content_type="application/json", **_basic())
    assert ActionEvent.objects.filter(action=action, kind="bounced").count() == 1
    assert Debtor.objects.get(pk=action.debtor_id).email_bounced  # contact quality: no more e-mail there
    action.refresh_from_db()
    assert action.status == Action.Status.DELIVERED  # a settled action keeps its first verdict


def test_a_bounce_before_any_delivery_makes_the_action_bounced(place, client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    action = _queued(place)
    Action.objects.filter(pk=action.pk).update(status=Action.Status.SENT)
    client.post(
        reverse("hooks:email_brevo_tracking"),
        _brevo(action, "hard_bounce"),
        content_type="application/json",
        **_basic(),
    )
    action.refresh_from_db()
    assert action.status == Action.Status.BOUNCED and "550" in action.status_reason


def test_email_webhooks_refuse_wrong_or_missing_credentials(place, client, settings):
    action = _queued(place)
    url = reverse("hooks:email_brevo_tracking")
    settings.ANYMAIL = {}
    assert client.post(url, _brevo(action, "delivered"), content_type="application/json").status_code == 403
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    wrong = client.post(url, _brevo(action, "delivered"), content_type="application/json", **_basic("relance:nope"))
    assert wrong.status_code >= 400
    assert not ActionEvent.objects.exists()


def test_mailjet_open_and_spam_complaint(place, client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    action = _queued(place)
    Action.objects.filter(pk=action.pk).update(status=Action.Status.SENT)

    def event(kind: str, at: int) -> dict[str, object]:
        return {
            "event": kind,
            "time": at,
            "MessageID": 19421777396190490,
            "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
            "email": "debtor0@example.fr",
            "mj_campaign_id": 0,
            "mj_contact_id": 0,
            "customcampaign": "",
            "CustomID": "",
            "Payload": json.dumps({"action": str(action.pk)}),
            "ip": "127.0.0.1",
            "geo": "FR",
            "agent": "Mozilla/5.0",
            "source": "",
        }

    response = client.post(
        reverse("hooks:email_mailjet_tracking"),
        json.dumps([event("open", 1764000000), event("spam", 1764000100)]),
        content_type="application/json",
        **_basic(),
    )
    assert response.status_code == 200
    assert set(ActionEvent.objects.filter(action=action).values_list("kind", "provider")) == {
        ("opened", "mailjet"),
        ("complained", "mailjet"),
    }
    assert Debtor.objects.get(pk=action.debtor_id).email_opt_out  # a complaint is a request to stop


def test_smtp_default_backend_is_the_hand_over_backend(settings):
    settings.EMAIL_BACKEND = "relance.comms.mail.HandoverSMTPBackend"
    assert isinstance(get_connection(), HandoverSMTPBackend)
