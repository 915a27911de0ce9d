"""Idempotency-Key handling for API writes (the request's hash guards against key reuse)."""

from __future__ import annotations

import hashlib
from typing import Any

from relance.api.models import IdempotencyRecord
from relance.core.errors import ConflictError
from relance.tenancy.models import Creditor


class IdempotencyKeyReusedError(ConflictError):
    code = "idempotency.key_reused"
    title = "Idempotency-Key already used for another request"


def _hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def idempotency_replay(*, creditor: Creditor, key: str, body: bytes) -> IdempotencyRecord | None:
    """The stored response for this key, or ``None``; a different body under the same key is a conflict."""
    record = IdempotencyRecord.objects.filter(creditor=creditor, key=key[:255]).first()
    if record is None:
        return None
    if record.request_hash != _hash(body):
        raise IdempotencyKeyReusedError("This Idempotency-Key was used with a different request body.", key=key)
    return record


def idempotency_store(*, creditor: Creditor, key: str, body: bytes, status: int, response: dict[str, Any]) -> None:
    """Remember the response, in the transaction of the effect it describes."""
    IdempotencyRecord.objects.create(
        creditor=creditor, key=key[:255], request_hash=_hash(body), status=status, body=response
    )
