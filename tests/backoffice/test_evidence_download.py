"""Evidence on the back-office case page and its download (issue 3 item 7; invariants 5 and 6).

Staff and the creditor's own users see and download a case's evidence; another creditor's user gets
404 exactly as for a missing file; every download is audited.
"""

from __future__ import annotations

import io

import pytest
from django.test import Client

from relance.audit.models import AuditEvent
from relance.claims.services import evidence_attach
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def evidence(place):
    placed = place("INV-1")
    return evidence_attach(
        claim=placed.claim,
        kind="invoice",
        content=io.BytesIO(PDF),
        filename="Facture F-INV-1.pdf",
        actor=Actor.system("tests"),
    )


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("who", ["agent", "creditor_user"])
def test_staff_and_the_creditors_users_list_and_download_evidence(world, evidence, who):
    user = getattr(world, who)
    client = _client(user)
    case = evidence.claim.case_link.case

    page = client.get(f"/bo/cases/{case.pk}/").content.decode()
    assert f'href="/bo/evidence/{evidence.pk}/"' in page
    assert "Facture F-INV-1.pdf" in page

    response = client.get(f"/bo/evidence/{evidence.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    (event,) = AuditEvent.objects.filter(verb="evidence.downloaded")
    assert event.actor == f"{'staff' if who == 'agent' else 'creditor'}:{user.pk}"
    assert event.data["evidence"] == evidence.pk


def test_another_creditors_user_gets_404_like_a_missing_file(world, evidence):
    client = _client(world.other_creditor_user)
    assert client.get(f"/bo/evidence/{evidence.pk}/").status_code == 404
    assert client.get(f"/bo/evidence/{evidence.pk + 1000}/").status_code == 404
    assert not AuditEvent.objects.filter(verb="evidence.downloaded").exists()


def test_downloading_requires_login(evidence):
    response = Client().get(f"/bo/evidence/{evidence.pk}/")
    assert response.status_code == 302
    assert response.url.startswith("/bo/login/")
