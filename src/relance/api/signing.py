"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"`` (pure functions, no Django).

Header ``Relance-Signature: t=<unix seconds>,v1=<hex digest>``. A receiver recomputes the digest with
its endpoint secret, compares in constant time, and refuses a timestamp older than a few minutes
(replay protection). docs/api.md shows the same check in a few lines of Python.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Relance-Signature"
TOLERANCE_SECONDS = 300


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The ``Relance-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={signature(secret=secret, timestamp=timestamp, body=body)}"


def verify(*, secret: str, header: str, body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` of ``now``."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret=secret, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))
