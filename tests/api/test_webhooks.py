"""Webhooks out (issue 6): events from the audit chain, HMAC-SHA256 signatures, retries, failure, replay.

Deliveries go over real HTTP to a receiver on loopback (``support.WebhookReceiver``); signatures are
checked with the algorithm documented in docs/api.md, written out again here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from relance.api.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from relance.api.signing import sign, verify
from relance.api.webhooks import backoff, webhook_deliver_due, webhook_endpoint_create, webhook_events_collect
from relance.cases.services import case_promise, case_transition
from relance.cases.status import Status
from relance.core.errors import ValidationError
from relance.tenancy.actors import Actor
from support import WebhookReceiver

SYSTEM = Actor.system("tests")


def documented_check(secret: str, header: str, body: bytes, now: int) -> bool:
    """docs/api.md's verification, verbatim in spirit: t and v1 from the header, HMAC over "t.body"."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(now - int(fields["t"])) <= 300 and hmac.compare_digest(expected, fields["v1"])


@given(body=st.binary(max_size=2000), secret=st.text(min_size=1, max_size=60), t=st.integers(0, 2**33))
def test_a_signature_verifies_and_any_change_breaks_it(body, secret, t):
    header = sign(secret=secret, timestamp=t, body=body)
    assert verify(secret=secret, header=header, body=body, now=t)
    assert documented_check(secret, header, body, t)
    assert not verify(secret=secret, header=header, body=body + b"x", now=t)
    assert not verify(secret=secret + "x", header=header, body=body, now=t)
    assert not verify(secret=secret, header=header, body=body, now=t + 301)  # too old: a replayed request
    assert not verify(secret=secret, header="t=abc,v1=00", body=body, now=t)


def test_backoff_doubles_from_a_minute():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert backoff(30) == timedelta(days=1)


@pytest.mark.django_db
def test_unknown_event_types_are_refused(world):
    with pytest.raises(ValidationError):
        webhook_endpoint_create(creditor=world.creditor, url="https://x.example/h", event_types=["nope"], actor=SYSTEM)


@pytest.mark.django_db
def test_a_new_case_reaches_the_creditors_endpoint_signed_and_only_theirs(world, place):
    with WebhookReceiver() as receiver:
        endpoint, secret = webhook_endpoint_create(
            creditor=world.creditor, url=receiver.url, event_types=["case.created", "case.promise"], actor=SYSTEM
        )
        mine = place("INV-1").case
        place("OTHER-1", creditor=world.other_creditor, email="paul@example.fr")  # another creditor's case
        report = webhook_events_collect()
        assert (report.events, report.deliveries) == (1, 1)
        assert webhook_events_collect().scanned == 0  # the cursor moved on: nothing twice
        now = timezone.now()
        assert webhook_deliver_due(now=now).succeeded == 1

        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert verify(secret=secret, header=headers["relance-signature"], body=body, now=int(now.timestamp()))
        assert documented_check(secret, headers["relance-signature"], body, int(now.timestamp()))
        event = json.loads(body)
        assert event["type"] == "case.created" == headers["relance-event-type"]
        assert event["id"] == headers["relance-event-id"]
        assert event["data"]["reference"] == mine.reference
        assert "OTHER" not in body.decode()

        case_transition(case=mine, to=Status.ACTIVE, actor=SYSTEM, reason="first contact")
        case_promise(case=mine, on=timezone.localdate() + timedelta(days=5), amount_minor=12050, actor=SYSTEM)
        webhook_events_collect()
        webhook_deliver_due(now=timezone.now())
        assert [json.loads(b)["type"] for _, b in receiver.requests] == ["case.created", "case.promise"]
        ids = {h["relance-event-id"] for h, _ in receiver.requests}
        assert len(ids) == 2
        assert WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").count() == 2


@pytest.mark.django_db
def test_an_endpoint_gets_no_event_older_than_itself(world, place):
    place("INV-1")
    webhook_endpoint_create(
        creditor=world.creditor, url="http://127.0.0.1:9/h", event_types=["case.created"], actor=SYSTEM
    )
    assert webhook_events_collect().deliveries == 0


@pytest.mark.django_db
def test_a_failing_receiver_gets_retries_then_failed_then_replay(world, place, settings):
    settings.RELANCE_WEBHOOK_MAX_ATTEMPTS = 3
    with WebhookReceiver(statuses=[500, 503, 500]) as receiver:
        webhook_endpoint_create(creditor=world.creditor, url=receiver.url, event_types=["case.created"], actor=SYSTEM)
        place("INV-1")
        webhook_events_collect()
        t0 = timezone.now()
        assert webhook_deliver_due(now=t0).retrying == 1
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending" and delivery.next_attempt_at == t0 + timedelta(minutes=1)
        assert webhook_deliver_due(now=t0 + timedelta(seconds=30)).ids == []  # not due yet
        assert webhook_deliver_due(now=t0 + timedelta(minutes=1)).retrying == 1
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == t0 + timedelta(minutes=3)  # 1 + 2 minutes
        assert webhook_deliver_due(now=t0 + timedelta(minutes=3)).failed == 1
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, 500)
        assert list(WebhookAttempt.objects.values_list("status_code", flat=True)) == [500, 503, 500]
        assert webhook_deliver_due(now=t0 + timedelta(days=2)).ids == []  # failed stays failed

        # The delivery log shows it; the creditor admin replays it; the receiver is back.
        admin = Client()
        admin.force_login(world.creditor_user)
        log = admin.get("/bo/webhooks/deliveries/?status=failed").content.decode()
        assert f'data-delivery="{delivery.pk}"' in log
        page = admin.get(f"/bo/webhooks/deliveries/{delivery.pk}/").content.decode()
        assert page.count("<tr><td>") == 3  # three attempts in the log
        replayed = admin.post(f"/bo/webhooks/deliveries/{delivery.pk}/replay/")
        assert replayed.status_code == 302
        replay = WebhookDelivery.objects.get(replay_of=delivery)
        assert webhook_deliver_due(now=timezone.now()).succeeded == 1
        replay.refresh_from_db()
        assert replay.status == "succeeded"
        event_ids = [h["relance-event-id"] for h, _ in receiver.requests]
        assert len(event_ids) == 4 and len(set(event_ids)) == 1  # the same event: receivers de-duplicate
        assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_an_unreachable_receiver_is_an_attempt_with_an_error(world, place):
    endpoint, _ = webhook_endpoint_create(
        creditor=world.creditor, url="http://127.0.0.1:9/closed", event_types=["case.created"], actor=SYSTEM
    )
    place("INV-1")
    webhook_events_collect()
    webhook_deliver_due(now=timezone.now())
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("ConnectError")
    assert WebhookDelivery.objects.get(endpoint=endpoint).status == "pending"


@pytest.mark.django_db
def test_the_webhook_page_shows_the_secret_once(world):
    admin = Client()
    admin.force_login(world.creditor_user)
    created = admin.post(
        "/bo/webhooks/new/",
        {"creditor": world.creditor.pk, "url": "https://erp.example.fr/hooks", "event_types": ["case.paid"]},
        follow=True,
    )
    assert created.redirect_chain == [("/bo/webhooks/", 302)]
    secret = re.search(r'id="webhook-secret">(whsec_[\w-]+)<', created.content.decode()).group(1)
    assert world.creditor.webhook_endpoints.get().secret == secret
    listing = admin.get("/bo/webhooks/").content.decode()
    assert "https://erp.example.fr/hooks" in listing
    assert secret not in listing
    # Another creditor cannot be chosen; a viewer can read the page but not add endpoints.
    other = admin.post(
        "/bo/webhooks/new/",
        {"creditor": world.other_creditor.pk, "url": "https://x.example/h", "event_types": ["case.paid"]},
    )
    assert other.status_code == 200 and not world.other_creditor.webhook_endpoints.exists()
    bad = admin.post("/bo/webhooks/new/", {"creditor": world.creditor.pk, "url": "not a url", "event_types": []})
    assert b"errorlist" in bad.content


def test_remittance_events_reach_only_their_creditor(world, place):
    from datetime import timedelta as td

    from relance.core.money import Money
    from relance.ledger.models import PayoutBatch
    from relance.payments.remittances import payout_batch_paid, period_end_for, remittance_run
    from relance.payments.services import payment_record

    world.agency.trust_iban, world.agency.vat_number = "FR7630006000011234567890189", "FR40552100554"
    world.agency.save()
    for creditor, iban in ((world.creditor, "DE89370400440532013000"), (world.other_creditor, "BE68539007547034")):
        creditor.remittance_iban = iban
        creditor.save()
    now = timezone.now()
    for n, creditor in enumerate((world.creditor, world.other_creditor)):
        case = place(f"R-{n}", creditor=creditor, email=f"r{n}@example.fr").case
        payment_record(
            case=case,
            amount=Money(5000, "EUR"),
            method="transfer",
            external_ref=f"P{n}",
            actor=SYSTEM,
            received_at=now - td(days=8),
        )
    with WebhookReceiver() as receiver:
        webhook_endpoint_create(
            creditor=world.creditor,
            url=receiver.url,
            event_types=["remittance.created", "remittance.paid"],
            actor=SYSTEM,
        )
        remittance_run(period_end=period_end_for(now), actor=SYSTEM, now=now)
        payout_batch_paid(batch=PayoutBatch.objects.get(), paid_on=timezone.localdate(), actor=SYSTEM)
        webhook_events_collect()
        webhook_deliver_due(now=timezone.now())
        events = [json.loads(body) for _, body in receiver.requests]
    assert [e["type"] for e in events] == ["remittance.created", "remittance.paid"]
    assert events[1]["data"]["details"]["transfer"] > 0
    assert "BE68539007547034" not in json.dumps(events)  # nothing of the other creditor's remittance
