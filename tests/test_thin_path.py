"""The walking skeleton end to end through public interfaces: API → engine → SMTP → portal → ledger."""

from __future__ import annotations

import re
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.comms.models import Action
from relance.comms.services import outbox_dispatch
from relance.ledger.models import LedgerTransaction
from relance.strategies.engine import engine_tick
from support import api_claim_payload

PAYLOAD = api_claim_payload("ORDER-1001")


def weekday_noon():
    now = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    while now.weekday() >= 5:
        now += timedelta(days=1)
    return now


def test_claim_to_paid_through_api_engine_smtp_and_portal(world, smtp_server):
    api = Client()
    response = api.post("/api/v1/claims", PAYLOAD, content_type="application/json", HTTP_X_API_KEY=world.api_secret)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["outstanding"] == "89.90"
    case = Case.objects.get(pk=body["case_id"])
    assert case.status == "new"

    now = weekday_noon() + timedelta(days=1)
    report = engine_tick(now=now)
    assert report.contacts["email"] == 1
    sent = outbox_dispatch(now=now)
    assert sent.sent["email"] == 1
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["To"] == "jeanne.martin@example.fr"
    text = message.get_payload()[0].get_payload(decode=True).decode()
    assert "89,90" in text
    assert "recouvrement amiable" in text  # R124-4 1° (FR-COL-05), Mode B creditor
    link = re.search(r"https?://\S+/p/\S+/", text).group(0)
    path = link.split("127.0.0.1:8000", 1)[1]

    debtor = Client()
    page = debtor.get(path)
    assert page.status_code == 200
    assert b"Jeanne" not in page.content  # nothing personal before verification
    assert debtor.post(path, {"postcode": "33 000"}).status_code == 302
    case_page = debtor.get(path + "dossier/")
    assert case_page.status_code == 200
    assert "89,90" in case_page.content.decode()
    paid = debtor.post(path + "pay/sandbox/", {"amount": "89,90"})
    assert paid.status_code == 302

    case.refresh_from_db()
    assert case.status == "paid"
    assert case_outstanding_minor(case=case) == 0
    assert LedgerTransaction.objects.filter(code="payment.received").count() == 1
    assert Action.objects.get(case=case).status == "sent"

    creditor = Client()
    creditor.force_login(world.creditor_user)
    listing = creditor.get("/bo/?status=paid").content.decode()
    assert case.reference in listing

    agent = Client()
    agent.force_login(world.agent)
    timeline = agent.get(f"/bo/cases/{case.pk}/").content.decode()
    for verb in ("claim.created", "action.sent", "payment.received", "case.status_changed"):
        assert verb in timeline
    count, broken = audit_verify()
    assert broken is None and count > 10
