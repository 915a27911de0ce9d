"""API authentication: creditor API keys (hashed, scoped, revocable) and the scope check.

Every operation declares the scope it needs with ``auth=scoped("read" | "write" | "intake")``: the
scope is checked with the key, before the request body is even parsed, so a key without it gets 403
whatever it sends. The generic matrix test (tests/backoffice/test_permission_matrix.py) reads these
declarations and calls every operation with keys of every scope and of another creditor.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from relance.core.errors import PermissionDeniedError
from relance.tenancy.models import ApiKey
from relance.tenancy.permissions import API_SCOPES
from relance.tenancy.services import api_key_authenticate


def _check(key: ApiKey | None, scope: str | None) -> ApiKey | None:
    if key is not None and scope is not None and scope not in key.scopes:
        raise PermissionDeniedError(f"This API key lacks the {scope!r} scope.", scope=scope)
    return key


class ApiKeyAuth(APIKeyHeader):
    """``X-API-Key: rl_…`` header."""

    param_name = "X-API-Key"

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return _check(api_key_authenticate(key or ""), self.scope)


class BearerAuth(HttpBearer):
    """``Authorization: Bearer rl_…``, the same keys."""

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return _check(api_key_authenticate(token), self.scope)


def scoped(scope: str) -> list[ApiKeyAuth | BearerAuth]:
    """``auth=`` for an operation that needs ``scope`` (a key of ``permissions.API_SCOPES``)."""
    if scope not in API_SCOPES:
        raise ValueError(f"unknown API scope {scope!r}")
    return [ApiKeyAuth(scope), BearerAuth(scope)]


def scope_of(auth: object) -> str | None:
    """The scope an operation's ``auth`` declares (for the matrix test and the docs)."""
    scopes = {getattr(a, "scope", None) for a in (auth if isinstance(auth, list | tuple) else [auth])}
    return scopes.pop() if len(scopes) == 1 else None


def require_scope(request: HttpRequest, scope: str) -> ApiKey:
    key = request.auth  # type: ignore[attr-defined]
    if not isinstance(key, ApiKey):  # ninja only calls the view after an authenticator returned a key
        raise PermissionDeniedError("An API key is required.")
    if scope not in key.scopes:
        raise PermissionDeniedError(f"This API key lacks the {scope!r} scope.", scope=scope)
    return key
