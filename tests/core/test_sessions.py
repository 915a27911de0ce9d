"""Sessions keep the idle timeout without a database write on every request (relance.core.sessions).

The back office's sessions (the debtor portal keeps its verification in a signed cookie instead:
tests/portal/test_portal_access.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from relance.core.sessions import SessionStore

pytestmark = pytest.mark.django_db

PAGE = "/bo/"


def _logged_in(world) -> Client:
    client = Client()
    client.force_login(world.agent)
    assert client.get(PAGE).status_code == 200
    return client


def test_a_page_read_soon_after_the_last_refresh_does_not_rewrite_the_session(world):
    client = _logged_in(world)
    stored = Session.objects.get().expire_date
    assert client.get(PAGE).status_code == 200
    assert Session.objects.get().expire_date == stored


def test_the_expiry_moves_forward_once_the_last_refresh_is_a_minute_old(world):
    client = _logged_in(world)
    age = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    older = timezone.now() + age - timedelta(seconds=90)  # refreshed 90 s ago
    Session.objects.update(expire_date=older)
    assert client.get(PAGE).status_code == 200
    refreshed = Session.objects.get().expire_date
    assert refreshed > older + timedelta(seconds=60)
    assert refreshed <= timezone.now() + age


def test_an_idle_session_still_ends(world):
    client = _logged_in(world)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(PAGE)
    assert response.status_code == 302 and response.url.startswith("/bo/login/")


def test_a_changed_session_is_saved_at_once(world):
    client = _logged_in(world)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    stored = Session.objects.get().expire_date
    session = SessionStore(key)
    session["note"] = "changed"  # within the minute: written all the same, not skipped
    session.save()
    assert SessionStore(key)["note"] == "changed"
    assert Session.objects.count() == 1
    assert Session.objects.get().expire_date >= stored
