"""Writes on agencies, creditors, users and API keys."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.tenancy.actors import Actor
from relance.tenancy.models import ApiKey, Creditor


@transaction.atomic
def api_key_create(*, creditor: Creditor, name: str, scopes: Iterable[str], actor: Actor) -> tuple[ApiKey, str]:
    """Create a key; the secret is returned once and only its SHA-256 is stored."""
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    secret = ApiKey.generate_secret()
    key = ApiKey.objects.create(
        creditor=creditor,
        name=name,
        key_prefix=secret[:10],
        key_hash=ApiKey.hash_secret(secret),
        scopes=scopes,
    )
    audit_record(actor=actor, verb="api_key.created", subject=key, data={"creditor": creditor.pk, "scopes": scopes})
    return key, secret


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The live key for ``secret``, or ``None``; comparison is on the hash (constant-time lookup)."""
    if not secret.startswith(ApiKey.PREFIX):
        return None
    key = (
        ApiKey.objects.select_related("creditor")
        .filter(key_hash=ApiKey.hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
    if key is not None:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key
