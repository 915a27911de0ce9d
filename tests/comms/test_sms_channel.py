"""The SMS channel end to end: strategy step -> outbox -> file provider; STOP and receipts by webhook.

FR-COL-16 (L121-7 3° C. conso): a debtor who answered STOP gets no more SMS; the dispatcher's last
check blocks an SMS queued before the STOP arrived and the engine skips later SMS steps.
FR-COL-19 [D]: no SMS on Sundays or public holidays (the contact policy defers them).
FR-COL-05/06: in Mode B the SMS names the collector, says "recouvrement amiable" and recalls the
case reference.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test import Client

from relance.audit.models import AuditEvent
from relance.claims.models import Debtor
from relance.comms.models import Action
from relance.comms.policy import french_public_holidays
from relance.comms.services import action_queue, outbox_dispatch
from relance.comms.sms import is_gsm7
from relance.comms.sms_providers import twilio_signature
from relance.compliance import fr
from relance.strategies.engine import engine_tick
from relance.strategies.services import strategy_save
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
TOKEN = "twilio-test-token"
PHONE = "+33612345678"
SMS_STRATEGY = """
key: sms-first
version: 1
name: "SMS first"
steps:
  - id: first_sms
    after_days: 0
    action: sms
    template: first_notice
  - id: reminder_sms
    after_days: 7
    action: sms
    template: reminder
  - id: return
    after_days: 30
    action: return_to_creditor
"""


def _open_day_noon(after: datetime | None = None, *, sunday: bool = False) -> datetime:
    """Noon on the next Monday-Friday (or Sunday) that is not a French public holiday."""
    holidays = french_public_holidays()
    day = (after or datetime.now(PARIS)).date() + timedelta(days=1)
    while (day.weekday() != 6 if sunday else day.weekday() >= 5) or day in holidays:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)


@pytest.fixture
def sms_settings(settings, tmp_path):
    settings.SMS_PROVIDER = "file"
    settings.SMS_FILE_PATH = tmp_path / "sms"
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.OVH_SMS_WEBHOOK_TOKEN = "ovh-hook-secret"
    settings.PUBLIC_BASE_URL = "https://relance.example"
    settings.SMS_SEGMENT_PRICE_MINOR = {"file": 5, "twilio": 8, "ovh": 6}
    return settings


@pytest.fixture
def sms_case(world, place, sms_settings):
    strategy_save(source=SMS_STRATEGY, make_default=True, actor=ACTOR)
    return place("INV-1", "120.50").case


def _sms_lines(settings) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(settings.SMS_FILE_PATH.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def _twilio_post(path: str, params: dict[str, str], *, signature: str | None = None):
    url = "https://relance.example" + path
    if signature is None:
        signature = twilio_signature(auth_token=TOKEN, url=url, params=params)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    # CSRF checks on, as in production: these hooks must work without a CSRF token.
    return Client(enforce_csrf_checks=True).post(path, params, headers=headers)


def _stop(body: str = "STOP") -> object:
    return _twilio_post(
        "/hooks/sms/twilio/inbound",
        {"From": PHONE, "To": "+33700000000", "Body": body, "MessageSid": "SM" + "9" * 32, "AccountSid": "AC1"},
    )


def test_an_sms_step_is_queued_rendered_and_sent_through_the_file_provider(sms_case, sms_settings):
    now = _open_day_noon()
    assert engine_tick(now=now).contacts["sms"] == 1
    action = Action.objects.get(case=sms_case)
    assert (action.channel, action.template, action.status) == ("sms", "first_notice", Action.Status.QUEUED)

    report = outbox_dispatch(now=now)

    assert report.sent["sms"] == 1
    action.refresh_from_db()
    assert action.status == Action.Status.SENT
    assert action.to_address == PHONE
    assert action.provider_message_id == f"file-action-{action.pk}"
    text = action.body_text
    # Mode B: the collector's name, "recouvrement amiable", the creditor, the case reference (FR-COL-05/06).
    assert "Recouvrement Test SAS (recouvrement amiable) pour Shop SAS" in text
    assert f"Réf. {sms_case.reference}" in text
    assert "120,50 €" in text
    assert "https://relance.example/p/" in text
    assert "STOP" in text
    assert not fr.forbidden_words_in(text)
    assert is_gsm7(text)  # typographic spaces were made plain: 160-character parts
    assert "\n" not in text
    (line,) = _sms_lines(sms_settings)
    assert line["body"] == text
    assert line["to"] == PHONE
    assert line["reference"] == str(action.pk)
    sent = AuditEvent.objects.get(verb="action.sent", subject_id=str(sms_case.pk))
    assert sent.data["provider"] == "file"
    assert sent.data["encoding"] == "GSM-7"
    assert sent.data["segments"] == line["segments"] >= 1
    assert sent.data["cost_minor"] == 5 * sent.data["segments"]


def test_mode_a_sms_speaks_in_the_creditors_name(world, place, sms_settings):
    strategy_save(source=SMS_STRATEGY, make_default=True, actor=ACTOR)
    case = place("INV-A", "80.00", creditor=world.other_creditor, language="en").case
    now = _open_day_noon()
    engine_tick(now=now)
    outbox_dispatch(now=now)
    action = Action.objects.get(case=case)
    assert action.status == Action.Status.SENT, action.status_reason
    assert action.body_text.startswith("Other SARL: unless we are mistaken")
    assert "recouvrement amiable" not in action.body_text
    assert f"Ref. {case.reference}" in action.body_text


def test_no_sms_on_a_sunday(sms_case, sms_settings):
    weekday = _open_day_noon()
    engine_tick(now=weekday)
    sunday = _open_day_noon(weekday, sunday=True)

    report = outbox_dispatch(now=sunday)

    action = Action.objects.get(case=sms_case)
    assert report.deferred == 1
    assert action.status == Action.Status.QUEUED
    assert action.scheduled_at > sunday
    assert action.scheduled_at.astimezone(PARIS).weekday() != 6
    assert not _sms_lines(sms_settings)


def test_stop_by_twilio_webhook_opts_out_and_blocks_the_next_sms(sms_case, sms_settings):
    now = _open_day_noon()
    engine_tick(now=now)
    outbox_dispatch(now=now)
    # The reminder was decided before the STOP arrived; it must not leave.
    with transaction.atomic():
        pending = action_queue(
            case=sms_case,
            channel="sms",
            template="reminder",
            step_key="manual:reminder",
            scheduled_at=now + timedelta(days=3),
            actor=ACTOR,
        )

    response = _stop("Stop SMS")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    debtor = Debtor.objects.get(pk=sms_case.debtor_id)
    assert debtor.sms_opt_out
    (event,) = AuditEvent.objects.filter(verb="debtor.sms_opt_out", subject_id=str(debtor.pk))
    assert event.data["provider"] == "twilio"

    report = outbox_dispatch(now=now + timedelta(days=3))

    assert report.blocked == 1
    pending.refresh_from_db()
    assert pending.status == Action.Status.BLOCKED
    assert pending.status_reason == "debtor opted out of SMS (STOP)"
    assert len(_sms_lines(sms_settings)) == 1
    # Later SMS steps are not even queued: the engine no longer offers SMS for this debtor.
    engine_tick(now=_open_day_noon(now + timedelta(days=7)))
    assert not Action.objects.filter(case=sms_case, step_key__endswith="reminder_sms").exists()
    # A second STOP changes nothing and writes nothing.
    _stop("ARRET")
    assert AuditEvent.objects.filter(verb="debtor.sms_opt_out").count() == 1


def test_an_ordinary_answer_does_not_opt_out(sms_case, sms_settings):
    assert _stop("Je paierai vendredi").status_code == 200
    assert not Debtor.objects.get(pk=sms_case.debtor_id).sms_opt_out


@pytest.mark.parametrize("signature", ["", "forged+signature=", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="])
def test_unsigned_or_forged_twilio_webhooks_are_refused(sms_case, sms_settings, signature):
    params = {"From": PHONE, "Body": "STOP"}
    assert _twilio_post("/hooks/sms/twilio/inbound", params, signature=signature).status_code == 403
    assert _twilio_post("/hooks/sms/twilio/status?action=1", params, signature=signature).status_code == 403
    assert not Debtor.objects.get(pk=sms_case.debtor_id).sms_opt_out


def test_a_signature_for_other_parameters_is_refused(sms_case, sms_settings):
    signed_for = {"From": "+33699999999", "Body": "STOP"}
    url = "https://relance.example/hooks/sms/twilio/inbound"
    signature = twilio_signature(auth_token=TOKEN, url=url, params=signed_for)
    sent = {"From": PHONE, "Body": "STOP"}
    assert _twilio_post("/hooks/sms/twilio/inbound", sent, signature=signature).status_code == 403


def test_webhooks_refuse_everything_when_no_twilio_token_is_configured(sms_case, sms_settings):
    params = {"From": PHONE, "Body": "STOP"}
    signature = twilio_signature(auth_token="", url="https://relance.example/hooks/sms/twilio/inbound", params=params)
    sms_settings.TWILIO_AUTH_TOKEN = ""
    assert _twilio_post("/hooks/sms/twilio/inbound", params, signature=signature).status_code == 403


def test_delivery_receipts_settle_the_action_once(sms_case, sms_settings):
    now = _open_day_noon()
    engine_tick(now=now)
    outbox_dispatch(now=now)
    action = Action.objects.get(case=sms_case)
    path = f"/hooks/sms/twilio/status?action={action.pk}"
    delivered = {"MessageSid": action.provider_message_id, "MessageStatus": "delivered", "AccountSid": "AC1"}

    assert _twilio_post(path, {**delivered, "MessageStatus": "sent"}).status_code == 204
    action.refresh_from_db()
    assert action.status == Action.Status.SENT  # an intermediate status changes nothing

    assert _twilio_post(path, delivered).status_code == 204
    assert _twilio_post(path, delivered).status_code == 204  # Twilio may retry
    assert _twilio_post(path, {**delivered, "MessageStatus": "undelivered", "ErrorCode": "30003"}).status_code == 204

    action.refresh_from_db()
    assert action.status == Action.Status.DELIVERED
    assert AuditEvent.objects.filter(verb="action.delivered", subject_id=str(sms_case.pk)).count() == 1
    assert not AuditEvent.objects.filter(verb="action.failed").exists()


def test_a_failed_receipt_records_the_error(sms_case, sms_settings):
    now = _open_day_noon()
    engine_tick(now=now)
    outbox_dispatch(now=now)
    action = Action.objects.get(case=sms_case)
    params = {"MessageSid": action.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert _twilio_post(f"/hooks/sms/twilio/status?action={action.pk}", params).status_code == 204
    action.refresh_from_db()
    assert action.status == Action.Status.FAILED
    assert action.status_reason == "twilio: undelivered (error 30003)"


def test_a_receipt_for_another_message_is_ignored(sms_case, sms_settings):
    now = _open_day_noon()
    engine_tick(now=now)
    outbox_dispatch(now=now)
    action = Action.objects.get(case=sms_case)
    params = {"MessageSid": "SM-someone-else", "MessageStatus": "delivered"}
    assert _twilio_post(f"/hooks/sms/twilio/status?action={action.pk}", params).status_code == 204
    action.refresh_from_db()
    assert action.status == Action.Status.SENT


def test_ovh_inbound_stop_needs_the_secret_token(sms_case, sms_settings):
    client = Client(enforce_csrf_checks=True)
    data = {"senderid": "0033612345678", "message": "STOP", "id": "1", "tag": "action-1"}
    assert client.post("/hooks/sms/ovh/inbound", data).status_code == 403
    assert client.post("/hooks/sms/ovh/inbound?token=wrong", data).status_code == 403
    assert not Debtor.objects.get(pk=sms_case.debtor_id).sms_opt_out

    assert client.post("/hooks/sms/ovh/inbound?token=ovh-hook-secret", data).status_code == 200

    assert Debtor.objects.get(pk=sms_case.debtor_id).sms_opt_out
    (event,) = AuditEvent.objects.filter(verb="debtor.sms_opt_out")
    assert event.data["provider"] == "ovh"


def test_webhooks_accept_no_get_on_twilio_hooks(sms_settings):
    assert Client().get("/hooks/sms/twilio/inbound").status_code == 405


def test_after_the_first_letter_every_sms_recalls_its_reference_and_date(sms_case, sms_settings):
    # FR-COL-06: "Réf. <ref> — courrier du <date>" on every later contact (made GSM-friendly: "-").
    now = _open_day_noon()
    letter_sent = now - timedelta(days=3)
    Action.objects.create(
        case=sms_case,
        debtor_id=sms_case.debtor_id,
        channel="letter",
        template="first_notice",
        step_key="manual:letter",
        status=Action.Status.SENT,
        scheduled_at=letter_sent,
        sent_at=letter_sent,
    )
    engine_tick(now=now)
    outbox_dispatch(now=now)
    action = Action.objects.get(case=sms_case, channel="sms")
    assert action.status == Action.Status.SENT, action.status_reason
    assert f"Réf. {sms_case.reference} - courrier du {letter_sent.astimezone(PARIS):%d/%m/%Y}." in action.body_text
