"""Creditor portal (issue 6): answer disputes with files, decide returns, report direct payments,
read notifications — each scoped to the creditor's own cases (invariant 6)."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core import mail
from django.test import Client

from relance.cases.selectors import case_outstanding_minor
from relance.payments.disputes import dispute_open
from relance.payments.models import CreditorNotification, Dispute, Payment, ReturnPolicy
from relance.tenancy.actors import Actor
from relance.tenancy.services import api_key_create

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def logged(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def disputed(place):
    case = place("INV-1", "120.50").case
    dispute = dispute_open(
        case=case,
        reason="not_received",
        statement="Never arrived",
        files=[("ticket.pdf", io.BytesIO(PDF))],
        actor=Actor.for_debtor(case_id=case.pk),
    )
    return case, dispute


def pdf(name="proof.pdf"):
    f = io.BytesIO(PDF)
    f.name = name
    return f


def test_the_creditor_rejects_a_dispute_with_a_file_and_reminders_resume(
    place, world, django_capture_on_commit_callbacks
):
    case, dispute = disputed(place)
    client = logged(world.creditor_user)
    page = client.get(f"/bo/cases/{case.pk}/")
    assert f'id="answer-{dispute.pk}"'.encode() in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/bo/cases/{case.pk}/disputes/{dispute.pk}/answer/",
            {"decision": "reject", "note": "Signed for on 3 November.", "files": [pdf("signature.pdf")]},
        )
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == "rejected"
    assert dispute.files.filter(side="creditor").count() == 1
    case.refresh_from_db()
    assert case.status == "active"
    assert [m.attachments[0][0] for m in mail.outbox] == ["signature.pdf"]


def test_the_creditor_upholds_in_part(place, world):
    case, dispute = disputed(place)
    logged(world.creditor_user).post(
        f"/bo/cases/{case.pk}/disputes/{dispute.pk}/answer/", {"decision": "reduce", "amount": "20,50", "note": "ok"}
    )
    dispute.refresh_from_db()
    assert (dispute.status, dispute.credited_minor) == ("upheld", 2050)
    assert case_outstanding_minor(case=case) == 10000


def test_another_creditor_can_neither_see_nor_answer(place, world):
    case, dispute = disputed(place)
    other = logged(world.other_creditor_user)
    assert other.get(f"/bo/cases/{case.pk}/").status_code == 404
    answer = other.post(f"/bo/cases/{case.pk}/disputes/{dispute.pk}/answer/", {"decision": "cancel", "note": ""})
    assert answer.status_code == 404
    f = dispute.files.get()
    assert other.get(f"/bo/dispute-files/{f.pk}/").status_code == 404
    assert logged(world.creditor_user).get(f"/bo/dispute-files/{f.pk}/").status_code == 200
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.OPEN
    # Notifications: each creditor sees its own only.
    assert b"dispute.opened" in logged(world.creditor_user).get("/bo/notifications/").content
    assert b"dispute.opened" not in other.get("/bo/notifications/").content


def test_direct_payment_from_the_case_page_and_the_api(place, world, client):
    case = place("INV-1", "120.50").case
    response = logged(world.creditor_user).post(
        f"/bo/cases/{case.pk}/payments/direct/",
        {"amount": "20.50", "received_on": str(date.today()), "reference": "CHQ-7"},
    )
    assert response.status_code == 302
    assert Payment.objects.get(case=case).method == "creditor_reported"

    _, secret = api_key_create(creditor=world.creditor, name="w", scopes=["read", "write"], actor=Actor.system("t"))
    body = {"amount": "100.00", "received_on": str(date.today()), "reference": "TRF-9"}
    created = client.post(
        f"/api/v1/cases/{case.pk}/payments", body, content_type="application/json", HTTP_X_API_KEY=secret
    )
    assert created.status_code == 201, created.content
    assert created.json()["case_status"] == "paid"
    again = client.post(
        f"/api/v1/cases/{case.pk}/payments", body, content_type="application/json", HTTP_X_API_KEY=secret
    )
    assert again.status_code == 200
    assert Payment.objects.filter(case=case).count() == 2
    # A read-only key, another creditor's key, a bad amount: refused with a precise answer.
    read_only = client.post(
        f"/api/v1/cases/{case.pk}/payments", body, content_type="application/json", HTTP_X_API_KEY=world.api_secret
    )
    assert read_only.status_code == 403
    _, other_secret = api_key_create(creditor=world.other_creditor, name="o", scopes=["write"], actor=Actor.system("t"))
    foreign = client.post(
        f"/api/v1/cases/{case.pk}/payments", body, content_type="application/json", HTTP_X_API_KEY=other_secret
    )
    assert foreign.status_code == 404
    bad = client.post(
        f"/api/v1/cases/{case.pk}/payments",
        {**body, "amount": "1.234", "reference": "X"},
        content_type="application/json",
        HTTP_X_API_KEY=secret,
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "amount"


def test_return_policy_page_and_confirming_receipt_of_the_goods(place, world):
    client = logged(world.creditor_user)
    assert (
        client.post(
            "/bo/settings/returns/",
            {"returns_allowed": "on", "instructions": "Send to our depot", "max_invoice_age_days": 0},
        ).status_code
        == 302
    )
    assert ReturnPolicy.objects.get(creditor=world.creditor).returns_allowed
    assert logged(world.agent).get("/bo/settings/returns/").status_code in {403, 404}

    from relance.payments.returns import return_request

    case = place("INV-1", "120.50").case
    ret = return_request(case=case, claim_id=case.claims.get().pk, note="", actor=Actor.for_debtor(case_id=case.pk))
    assert CreditorNotification.objects.filter(kind="return.requested").exists()
    assert client.post(f"/bo/cases/{case.pk}/returns/{ret.pk}/", {"decision": "received"}).status_code == 302
    case.refresh_from_db()
    assert case.status == "closed"
    assert case_outstanding_minor(case=case) == 0


def test_psp_events_page_is_for_agency_staff_only(world):
    from relance.payments.models import PspWebhookEvent

    PspWebhookEvent.objects.create(
        provider="stripe", event_id="evt_x", kind="payment.succeeded", status="ignored", note="no case"
    )
    page = logged(world.agent).get("/bo/payments/psp-events/?status=ignored")
    assert page.status_code == 200
    assert b"evt_x" in page.content
    assert logged(world.creditor_user).get("/bo/payments/psp-events/").status_code in {403, 404}
