"""Back office and creditor pages through HTTP: login, tenant scoping, audited reads.

Invariant 6: a creditor's users see only that creditor's data ("not yours" is a 404, like "absent");
agency staff see everything; every staff read of a case's personal data leaves an audit event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from relance.audit.models import AuditEvent
from relance.comms.models import Action
from relance.strategies.engine import engine_tick

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two_cases(world, place):
    mine = place("INV-1", "120.50").case
    theirs = place(
        "OTHER-1", "80.00", creditor=world.other_creditor, email="paul.durand@example.fr", last_name="Durand"
    )
    return mine, theirs.case


@pytest.mark.parametrize("path", ["/bo/", "/bo/cases/1/", "/bo/outbox/", "/bo/outbox/1/"])
def test_every_page_requires_login(world, path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response.url.startswith("/bo/login/")


def test_login_page_logs_in_with_the_password(world, password):
    # A creditor user without two-factor authentication is in after the password.
    client = Client()
    response = client.post("/bo/login/", {"username": "shopuser", "password": password})
    assert response.status_code == 302
    assert client.get("/bo/").status_code == 200
    assert Client().post("/bo/login/", {"username": "shopuser", "password": "wrong"}).status_code == 200
    # Staff need a second factor too (tests/backoffice/test_security.py follows that step).
    staff = Client()
    assert staff.post("/bo/login/", {"username": "agent", "password": password}).status_code == 302
    assert staff.get("/bo/").url.startswith("/bo/security/")


def test_a_creditor_user_lists_only_its_own_cases(world, two_cases):
    mine, theirs = two_cases
    page = _client(world.creditor_user).get("/bo/")
    assert page.status_code == 200
    html = page.content.decode()
    assert mine.reference in html
    assert theirs.reference not in html
    assert "Durand" not in html


def test_a_creditor_user_gets_404_for_another_creditors_case(world, two_cases):
    mine, theirs = two_cases
    client = _client(world.creditor_user)
    assert client.get(f"/bo/cases/{mine.pk}/").status_code == 200
    not_mine = client.get(f"/bo/cases/{theirs.pk}/")
    absent = client.get(f"/bo/cases/{theirs.pk + 1000}/")
    assert not_mine.status_code == absent.status_code == 404
    assert b"Durand" not in not_mine.content
    assert not AuditEvent.objects.filter(verb="case.viewed", subject_id=str(theirs.pk)).exists()


def test_an_agent_sees_every_creditors_cases(world, two_cases):
    mine, theirs = two_cases
    client = _client(world.agent)
    html = client.get("/bo/").content.decode()
    assert mine.reference in html
    assert theirs.reference in html
    assert client.get(f"/bo/cases/{mine.pk}/").status_code == 200
    assert client.get(f"/bo/cases/{theirs.pk}/").status_code == 200


def test_viewing_a_case_is_audited(world, two_cases):
    mine, _ = two_cases
    _client(world.agent).get(f"/bo/cases/{mine.pk}/")
    _client(world.creditor_user).get(f"/bo/cases/{mine.pk}/")
    events = AuditEvent.objects.filter(verb="case.viewed", subject_type="cases.case", subject_id=str(mine.pk))
    assert [e.actor for e in events] == [f"staff:{world.agent.pk}", f"creditor:{world.creditor_user.pk}"]


def test_the_case_page_shows_the_company_identifiers_and_only_the_end_of_the_iban(world, place):
    case = place(
        "B2B-1", "500.00", company_name="Bureau SARL", siret="73282932000074", iban="FR7630004000031234567890143"
    ).case

    html = _client(world.agent).get(f"/bo/cases/{case.pk}/").content.decode()

    assert "73282932000074" in html and "732829320" in html
    assert "···· 0143" in html
    assert "FR7630004000031234567890143" not in html


def test_the_outbox_of_a_creditor_user_lists_only_its_actions(world, two_cases):
    mine, theirs = two_cases
    day = datetime.now(ZoneInfo("Europe/Paris")).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    engine_tick(now=datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo("Europe/Paris")))
    my_action = Action.objects.get(case=mine)
    their_action = Action.objects.get(case=theirs)

    client = _client(world.creditor_user)
    html = client.get("/bo/outbox/").content.decode()
    assert mine.reference in html
    assert theirs.reference not in html
    assert client.get(f"/bo/outbox/{my_action.pk}/").status_code == 200
    assert client.get(f"/bo/outbox/{their_action.pk}/").status_code == 404

    staff_html = _client(world.agent).get("/bo/outbox/").content.decode()
    assert mine.reference in staff_html
    assert theirs.reference in staff_html


def test_hostile_text_from_intake_is_escaped(world, place):
    case = place("INV-1", "120.50", first_name="<script>alert('x')</script>").case
    html = _client(world.agent).get(f"/bo/cases/{case.pk}/").content.decode()
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html
