"""Personal portal links: signed, expiring tokens that name one case and nothing else.

The token carries the case id and a per-case salt part (its reference), signed with SECRET_KEY; it
grants nothing by itself: the debtor still has to verify (postcode) before seeing any personal data.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import reverse

_SALT = "relance.portal.link"
_MEMO_SIZE = 4096  # links remembered per process once their signature checked (ids and references only)


def portal_token(*, case_id: int, reference: str) -> str:
    return signing.dumps({"c": case_id, "r": reference}, salt=_SALT, compress=False)


def portal_token_read(token: str) -> tuple[int, str] | None:
    """The (case id, reference) a valid, unexpired token names; ``None`` otherwise.

    The signature check (``signing.loads`` without its expiry) is remembered per process for the
    ``_MEMO_SIZE`` most recent tokens that passed it; the expiry is checked on every call against the
    signed timestamp, as Django does (``max_age``). A token that fails is never remembered."""
    try:
        named, issued = _signed(token)
    except (signing.BadSignature, ValueError):  # tampered, other key, malformed, not a case link
        return None
    max_age: Any = settings.RELANCE_PORTAL_LINK_MAX_AGE
    if max_age is not None:
        if isinstance(max_age, timedelta):
            max_age = max_age.total_seconds()
        if time.time() - issued > max_age:  # Django's SignatureExpired
            return None
    return named


@lru_cache(maxsize=_MEMO_SIZE)
def _signed(token: str) -> tuple[tuple[int, str], int]:
    """The (case id, reference) of a token whose signature is good, and when it was signed; raises
    ``BadSignature``/``ValueError`` otherwise (``lru_cache`` keeps no exception: failures are redone)."""
    signer = signing.TimestampSigner(salt=_SALT)  # as signing.loads: SECRET_KEY and its fallbacks
    data = signer.unsign_object(token)  # no max_age: checked by the caller on every call
    issued = signing.b62_decode(token.rsplit(signer.sep, 2)[-2])
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        raise ValueError("not a case link")
    return (data["c"], str(data.get("r", ""))), issued


@receiver(setting_changed)
def _forget_signed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"SECRET_KEY", "SECRET_KEY_FALLBACKS", "RELANCE_PORTAL_LINK_MAX_AGE"}:
        _signed.cache_clear()


def portal_url(*, case_id: int, reference: str) -> str:
    path = reverse("portal:entry", kwargs={"token": portal_token(case_id=case_id, reference=reference)})
    return f"{settings.PUBLIC_BASE_URL}{path}"
