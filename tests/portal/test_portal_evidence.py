"""The debtor sees the evidence of their own case on the portal, only after verification
(issue 3 item 7; invariants 5 and 6). Downloads are audited.
"""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.urls import reverse

from relance.audit.models import AuditEvent
from relance.cases.links import portal_token
from relance.claims.services import evidence_attach
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _attach(claim, content: bytes = PDF, filename: str = "facture.pdf"):
    return evidence_attach(
        claim=claim, kind="invoice", content=io.BytesIO(content), filename=filename, actor=Actor.system("tests")
    )


_TOKENS: dict[tuple[int, str], str] = {}


def _token(case) -> str:
    # One token per case: a signed token carries its timestamp, so two signed a second apart differ.
    key = (case.pk, case.reference)
    if key not in _TOKENS:
        _TOKENS[key] = portal_token(case_id=case.pk, reference=case.reference)
    return _TOKENS[key]


def _verified_client(case) -> Client:
    client = Client()
    assert (
        client.post(reverse("portal:entry", kwargs={"token": _token(case)}), {"postcode": "33000"}).status_code == 302
    )
    return client


def _download(client: Client, case, evidence_id: int):
    return client.get(reverse("portal:evidence", kwargs={"token": _token(case), "evidence_id": evidence_id}))


def test_the_verified_debtor_lists_and_downloads_the_evidence(place):
    placed = place("INV-1")
    evidence = _attach(placed.claim)
    client = _verified_client(placed.case)

    page = client.get(reverse("portal:case", kwargs={"token": _token(placed.case)})).content.decode()
    url = reverse("portal:evidence", kwargs={"token": _token(placed.case), "evidence_id": evidence.pk})
    assert f'href="{url}"' in page
    assert "facture.pdf" in page

    response = _download(client, placed.case, evidence.pk)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Disposition"].startswith("attachment;")
    (event,) = AuditEvent.objects.filter(verb="evidence.downloaded")
    assert event.actor == f"debtor:case-{placed.case.pk}"


def test_no_download_before_verification(place):
    placed = place("INV-1")
    evidence = _attach(placed.claim)
    response = _download(Client(), placed.case, evidence.pk)
    assert response.status_code == 302
    assert response.url == reverse("portal:entry", kwargs={"token": _token(placed.case)})
    assert not AuditEvent.objects.filter(verb="evidence.downloaded").exists()


def test_a_debtor_cannot_download_another_cases_evidence(world, place):
    mine = place("INV-1")
    other = place("OTHER-1", creditor=world.other_creditor, email="paul@example.fr", last_name="Durand")
    theirs = _attach(other.claim, PDF + b"other", filename="autre-dossier.pdf")
    client = _verified_client(mine.case)

    assert _download(client, mine.case, theirs.pk).status_code == 404
    page = client.get(reverse("portal:case", kwargs={"token": _token(mine.case)})).content.decode()
    assert "autre-dossier.pdf" not in page
