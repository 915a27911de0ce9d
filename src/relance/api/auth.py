"""API authentication: creditor API keys (hashed, scoped, revocable) and the scope check."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from relance.core.errors import PermissionDeniedError
from relance.tenancy.models import ApiKey
from relance.tenancy.services import api_key_authenticate


class ApiKeyAuth(APIKeyHeader):
    """``X-API-Key: rl_…`` header."""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return api_key_authenticate(key or "")


class BearerAuth(HttpBearer):
    """``Authorization: Bearer rl_…``, the same keys."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_key_authenticate(token)


def require_scope(request: HttpRequest, scope: str) -> ApiKey:
    key = request.auth  # type: ignore[attr-defined]
    if not isinstance(key, ApiKey):  # ninja only calls the view after an authenticator returned a key
        raise PermissionDeniedError("An API key is required.")
    if scope not in key.scopes:
        raise PermissionDeniedError(f"This API key lacks the {scope!r} scope.", scope=scope)
    return key
