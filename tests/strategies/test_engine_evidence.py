"""Evidence first through the engine, the outbox and the case page (invariant 5; issue 3 item 7).

A case whose creditor's mandate requires evidence kinds its claims lack is not chased: the engine
queues nothing, the case stays new and waits, and the back-office case page says why. Attaching the
missing evidence re-arms the case and the next tick sends the first notice through real SMTP.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from relance.audit.models import AuditEvent
from relance.cases.status import Status
from relance.claims.services import evidence_attach
from relance.comms.models import Action
from relance.comms.services import outbox_dispatch
from relance.strategies.engine import engine_tick
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor
from support import next_working_day_at

_ASSIGNED = {"key": "default", "version": 1, "variant": "", "routed": False}
pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
PDF = b"%PDF-1.4\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def mandate(world) -> Creditor:
    Creditor.objects.filter(pk=world.creditor.pk).update(required_evidence=["invoice", "delivery_proof"])
    world.creditor.refresh_from_db()
    return world.creditor


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


def _attach(claim, content: bytes, filename: str, kind: str) -> None:
    evidence_attach(claim=claim, kind=kind, content=io.BytesIO(content), filename=filename, actor=ACTOR)


def _case_page(world, case) -> str:
    client = Client()
    client.force_login(world.agent)
    response = client.get(f"/bo/cases/{case.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_case_missing_required_evidence_is_not_chased(mandate, place):
    now = _weekday_noon()
    placed = place("INV-1")
    _attach(placed.claim, PDF, "invoice.pdf", "invoice")  # the proof of delivery is still missing

    report = engine_tick(now=now)

    assert report.contacts["email"] == 0
    assert not Action.objects.exists()
    case = placed.case
    case.refresh_from_db()
    assert case.status == Status.NEW
    assert case.step == 0
    assert case.next_action_at is None  # waits: the engine does not come back every tick
    (event,) = AuditEvent.objects.filter(verb="engine.deferred", subject_id=str(case.pk))
    # The first look's one event: the deferral's reason with the strategy assignment (docs/decisions/0002).
    assert event.data == {"reason": "evidence missing: delivery_proof", **_ASSIGNED}
    assert engine_tick(now=now + timedelta(hours=1)).cases == 0


def test_other_creditors_cases_are_chased_in_the_same_tick(mandate, world, place):
    mine = place("INV-1").case
    theirs = place("OTHER-1", creditor=world.other_creditor, email="paul@example.fr", last_name="Durand").case

    engine_tick(now=_weekday_noon())

    assert not Action.objects.filter(case=mine).exists()
    assert Action.objects.filter(case=theirs).count() == 1


def test_attaching_the_evidence_makes_the_next_tick_send(mandate, place, smtp_server):
    now = _weekday_noon()
    placed = place("INV-1")
    engine_tick(now=now)
    assert not Action.objects.exists()

    _attach(placed.claim, PDF, "invoice.pdf", "invoice")
    _attach(placed.claim, PNG, "pod.png", "delivery_proof")
    report = engine_tick(now=now + timedelta(minutes=5))

    assert report.contacts["email"] == 1
    (action,) = Action.objects.filter(case=placed.case)
    assert action.template == "first_notice"
    placed.case.refresh_from_db()
    assert placed.case.status == Status.ACTIVE
    assert outbox_dispatch(now=now + timedelta(minutes=5)).sent["email"] == 1
    (message,) = smtp_server.messages
    assert message["To"] == "jeanne.martin@example.fr"


def test_every_claim_of_a_consolidated_case_needs_its_evidence(mandate, place):
    first = place("INV-1")
    second = place("INV-2")
    assert first.case.pk == second.case.pk
    for claim in (first.claim, second.claim):
        _attach(claim, PDF + claim.external_ref.encode(), "invoice.pdf", "invoice")
    _attach(first.claim, PNG, "pod.png", "delivery_proof")

    engine_tick(now=_weekday_noon())

    assert not Action.objects.exists()
    assert AuditEvent.objects.get(verb="engine.deferred").data == {
        "reason": "evidence missing: delivery_proof",
        **_ASSIGNED,
    }


def test_the_case_page_says_why_the_case_is_not_chased(mandate, world, place):
    placed = place("INV-1")

    page = _case_page(world, placed.case)

    assert 'id="evidence-missing"' in page
    assert "evidence missing: invoice, delivery_proof" in page

    _attach(placed.claim, PDF, "invoice.pdf", "invoice")
    _attach(placed.claim, PNG, "pod.png", "delivery_proof")
    page = _case_page(world, placed.case)
    assert 'id="evidence-missing"' not in page
    assert "invoice.pdf" in page
    assert "pod.png" in page


def test_no_notice_when_the_mandate_requires_nothing(world, place):
    assert 'id="evidence-missing"' not in _case_page(world, place("INV-1").case)
