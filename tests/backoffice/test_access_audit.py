"""Access audit (issue 6, invariant 6): staff reads of personal data are recorded; auditors search them."""

from __future__ import annotations

import pytest
from django.test import Client

from relance.audit.models import AuditEvent
from relance.tenancy.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(world):
    return User.objects.create_user(username="audrey", password="x", role=User.Role.AUDITOR, agency=world.agency)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_reads_are_recorded_with_why_and_the_auditor_finds_them(world, place, auditor):
    mine = place("INV-1").case
    other = place("OTHER-1", creditor=world.other_creditor, email="paul@example.fr").case
    agent = _client(world.agent)
    assert agent.get(f"/bo/cases/{mine.pk}/?why=call+queue").status_code == 200
    assert agent.get(f"/bo/cases/{other.pk}/").status_code == 200
    viewed = AuditEvent.objects.get(verb="case.viewed", subject_id=str(mine.pk))
    assert viewed.actor == f"staff:{world.agent.pk}" and viewed.data["why"] == "call queue"

    search = _client(auditor)
    by_user = search.get("/bo/audit/access/", {"user": "agent"}).content.decode()
    assert by_user.count('data-verb="case.viewed"') == 2 and "call queue" in by_user
    by_case = search.get("/bo/audit/access/", {"case": mine.reference}).content.decode()
    assert by_case.count('data-verb="case.viewed"') == 1
    nobody = search.get("/bo/audit/access/", {"user": "shopuser"}).content.decode()
    assert 'data-verb="case.viewed"' not in nobody
    assert AuditEvent.objects.filter(verb="audit.searched", actor=f"staff:{auditor.pk}").count() == 3


def test_only_admins_and_auditors_search(world):
    for user in (world.agent, world.creditor_user):
        assert _client(user).get("/bo/audit/access/").status_code == 403
