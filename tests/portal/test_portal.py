"""The debtor portal through HTTP: signed links, verification first, lockout, payments.

Invariant 6: a debtor sees only their own case, and only after verification (postcode).
"""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client
from django.urls import reverse

from relance.audit.models import AuditEvent
from relance.cases.links import portal_token
from relance.cases.selectors import case_outstanding_minor
from relance.payments.models import Payment

pytestmark = pytest.mark.django_db

PERSONAL = [b"Jeanne", b"Martin", b"jeanne.martin", b"rue des Lilas", b"33000", b"120,50", b"INV-1"]


def _path(case, token: str | None = None, page: str = "entry") -> str:
    token = token or portal_token(case_id=case.pk, reference=case.reference)
    return reverse(f"portal:{page}", kwargs={"token": token})


def _verified_client(case) -> Client:
    client = Client()
    assert client.post(_path(case), {"postcode": "33000"}).status_code == 302
    return client


def _tamper(token: str, case_id: int) -> str:
    """Swap the case id inside a signed token, keeping the original signature."""
    payload, rest = token.split(":", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["c"] = case_id
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{forged}:{rest}"


def test_a_valid_link_shows_a_verification_form_without_personal_data(place):
    case = place("INV-1", "120.50").case
    response = Client().get(_path(case))
    assert response.status_code == 200
    assert b'name="postcode"' in response.content
    for secret in PERSONAL:
        assert secret not in response.content, secret
    # The dossier itself is not reachable yet.
    assert Client().get(_path(case, page="case")).status_code == 302


@pytest.mark.parametrize("page", ["entry", "case"])
def test_a_link_with_a_bad_signature_is_404(place, page):
    case = place("INV-1", "120.50").case
    token = portal_token(case_id=case.pk, reference=case.reference)
    assert Client().get(_path(case, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), page)).status_code == 404
    assert Client().get(_path(case, "not-a-token", page)).status_code == 404


def test_a_token_with_a_tampered_case_id_is_404(place):
    mine = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul.durand@example.fr", last_name="Durand").case
    token = portal_token(case_id=mine.pk, reference=mine.reference)
    forged = _tamper(token, other.pk)
    assert forged != token
    assert Client().get(_path(mine, forged)).status_code == 404
    assert Client().post(_path(mine, forged), {"postcode": "33000"}).status_code == 404


def test_an_expired_link_is_404(place, settings):
    case = place("INV-1", "120.50").case
    settings.RELANCE_PORTAL_LINK_MAX_AGE = -1
    assert Client().get(_path(case)).status_code == 404


def test_right_postcode_opens_the_case(place):
    case = place("INV-1", "120.50").case
    client = Client()
    response = client.post(_path(case), {"postcode": " 33 000 "})
    assert response.status_code == 302
    page = client.get(_path(case, page="case"))
    assert page.status_code == 200
    assert "120,50" in page.content.decode()
    assert AuditEvent.objects.filter(verb="portal.verified", subject_id=str(case.pk)).count() == 1


def test_five_wrong_postcodes_lock_the_link_even_for_the_right_one(place):
    case = place("INV-1", "120.50").case
    client = Client()
    statuses = [client.post(_path(case), {"postcode": "75001"}).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 403]

    right = Client().post(_path(case), {"postcode": "33000"})
    assert right.status_code == 403
    for secret in PERSONAL:
        assert secret not in right.content
    assert Client().get(_path(case)).status_code == 403
    assert client.get(_path(case, page="case")).status_code == 302
    case.refresh_from_db()
    assert case.portal_failed_attempts == 5
    assert AuditEvent.objects.filter(verb="portal.verification_failed", subject_id=str(case.pk)).count() == 5
    assert not AuditEvent.objects.filter(verb="portal.verified").exists()


def test_a_verified_session_for_one_case_does_not_open_another(place):
    case_a = place("INV-1", "120.50").case
    case_b = place("INV-2", "80.00", email="paul.durand@example.fr", last_name="Durand", postcode="33000").case
    assert case_a.pk != case_b.pk
    client = _verified_client(case_a)

    assert client.get(_path(case_a, page="case")).status_code == 200
    entry_b = client.get(_path(case_b))
    assert entry_b.status_code == 200
    assert b"Durand" not in entry_b.content
    assert b"80,00" not in entry_b.content
    assert client.get(_path(case_b, page="case")).status_code == 302
    assert client.post(_path(case_b, page="pay_sandbox"), {"amount": "80,00"}).status_code == 302
    assert not Payment.objects.exists()
    assert case_outstanding_minor(case=case_b) == 8000


def test_sandbox_payment_records_a_payment(place):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)

    response = client.post(_path(case, page="pay_sandbox"), {"amount": "50,00"})

    assert response.status_code == 302
    payment = Payment.objects.get()
    assert (payment.case_id, payment.amount_minor, payment.method) == (case.pk, 5000, "sandbox")
    assert case_outstanding_minor(case=case) == 7050
    event = AuditEvent.objects.get(verb="payment.received")
    assert event.actor == f"debtor:case-{case.pk}"
    page = client.get(_path(case, page="case")).content.decode()
    assert "70,50" in page


def test_an_invalid_sandbox_amount_records_nothing(place):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)
    for amount in ("abc", "-5", "0", "1,001", "1e30"):
        assert client.post(_path(case, page="pay_sandbox"), {"amount": amount}).status_code == 302
    assert not Payment.objects.exists()
    assert case_outstanding_minor(case=case) == 12050


def test_pay_without_verification_records_nothing(place):
    case = place("INV-1", "120.50").case
    token = portal_token(case_id=case.pk, reference=case.reference)  # one token: signed links carry the second
    response = Client().post(_path(case, token, page="pay_sandbox"), {"amount": "120,50"})
    assert response.status_code == 302
    assert response.url == _path(case, token)
    assert not Payment.objects.exists()


def test_sandbox_payment_is_refused_in_production(place, settings):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)
    settings.PRODUCTION = True

    client.post(_path(case, page="pay_sandbox"), {"amount": "120,50"})

    assert not Payment.objects.exists()
    case.refresh_from_db()
    assert case.status != "paid"
