"""API keys page (issue 6): created in the UI, shown once, stored hashed, scoped, revocable."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.test import Client

from relance.audit.models import AuditEvent
from relance.tenancy.models import ApiKey
from support import api_claim_payload

pytestmark = pytest.mark.django_db


def _admin(world) -> Client:
    client = Client()
    client.force_login(world.creditor_user)
    return client


def create(client: Client, creditor_id: int, name: str, scopes: list[str]) -> str:
    page = client.post("/bo/api-keys/", {"creditor": creditor_id, "name": name, "scopes": scopes}, follow=True)
    assert page.redirect_chain == [("/bo/api-keys/", 302)]
    assert page["Cache-Control"].startswith("max-age=0")  # never cached: the key is on it
    return re.search(r'id="api-key-secret">(rl_[\w-]+)<', page.content.decode()).group(1)


def test_a_key_is_shown_once_stored_hashed_scoped_and_revocable(world):
    client = _admin(world)
    secret = create(client, world.creditor.pk, "ERP", ["read"])
    key = ApiKey.objects.get(name="ERP")
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())  # only the hash is kept
    listing = client.get("/bo/api-keys/").content.decode()
    assert key.key_prefix in listing and secret not in listing

    api = Client()
    case_id = 0
    assert api.get(f"/api/v1/cases/{case_id}", HTTP_X_API_KEY=secret).status_code == 404  # read: allowed
    placed = api.post("/api/v1/claims", api_claim_payload(), content_type="application/json", HTTP_X_API_KEY=secret)
    assert placed.status_code == 403 and placed.json()["code"] == "forbidden"  # no intake scope

    assert client.post(f"/bo/api-keys/{key.pk}/revoke/").status_code == 302
    assert api.get(f"/api/v1/cases/{case_id}", HTTP_X_API_KEY=secret).status_code == 401
    assert AuditEvent.objects.filter(verb="api_key.revoked", subject_id=str(key.pk)).exists()


def test_an_intake_key_places_claims(world):
    secret = create(_admin(world), world.creditor.pk, "Shop", ["intake", "read"])
    response = Client().post(
        "/api/v1/claims", api_claim_payload(), content_type="application/json", HTTP_X_API_KEY=secret
    )
    assert response.status_code == 201


def test_a_creditor_admin_manages_only_their_creditors_keys(world):
    client = _admin(world)
    page = client.post("/bo/api-keys/", {"creditor": world.other_creditor.pk, "name": "x", "scopes": ["read"]})
    assert page.status_code == 200 and b"api-key-secret" not in page.content
    assert not ApiKey.objects.filter(name="x").exists()
    theirs = ApiKey.objects.get(creditor=world.other_creditor)
    assert client.post(f"/bo/api-keys/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert "other" not in client.get("/bo/api-keys/").content.decode().split('id="api-keys"')[1]


def test_a_key_needs_a_name_and_a_scope(world):
    page = _admin(world).post("/bo/api-keys/", {"creditor": world.creditor.pk, "name": "", "scopes": []})
    assert page.content.decode().count('class="errorlist"') == 2
