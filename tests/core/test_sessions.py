"""Sessions keep the idle timeout without a database write on every request (relance.core.sessions)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from relance.cases.links import portal_token

pytestmark = pytest.mark.django_db


def _verified(place) -> tuple[Client, str]:
    case = place("INV-1", "120.50").case
    token = portal_token(case_id=case.pk, reference=case.reference)
    client = Client()
    assert client.post(f"/p/{token}/", {"postcode": "33000"}).status_code == 302
    return client, f"/p/{token}/dossier/"


def test_a_page_read_soon_after_the_last_refresh_does_not_rewrite_the_session(place):
    client, page = _verified(place)
    stored = Session.objects.get().expire_date
    assert client.get(page).status_code == 200
    assert Session.objects.get().expire_date == stored


def test_the_expiry_moves_forward_once_the_last_refresh_is_a_minute_old(place):
    client, page = _verified(place)
    older = timezone.now() + timedelta(minutes=30) - timedelta(seconds=90)  # refreshed 90 s ago (30 min sessions)
    Session.objects.update(expire_date=older)
    assert client.get(page).status_code == 200
    refreshed = Session.objects.get().expire_date
    assert refreshed > older + timedelta(seconds=60)
    assert refreshed <= timezone.now() + timedelta(minutes=30)


def test_an_idle_portal_session_still_ends(place):
    client, page = _verified(place)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(page)
    assert response.status_code == 302 and response.url.endswith(page.replace("dossier/", ""))


def test_a_changed_session_is_saved_at_once(place):
    client, _ = _verified(place)
    other = place("INV-2", "80.00", email="paul@example.fr").case
    token = portal_token(case_id=other.pk, reference=other.reference)
    # A second verification within the minute changes the session: it is written, not skipped.
    assert client.post(f"/p/{token}/", {"postcode": "33000"}).status_code == 302
    assert client.get(f"/p/{token}/dossier/").status_code == 200
    assert Session.objects.count() == 1
