"""A debtor's verification, carried in a signed, expiring cookie instead of the database session.

After the right postcode (``views.entry``) the response sets ``relance_portal``: the ids of the cases
this browser has verified (the most recent ``MAX_CASES``), signed with Django's ``TimestampSigner``
(``SECRET_KEY``, a salt of its own) and accepted for ``VERIFIED_SECONDS`` after it was issued. Every
portal page of a case checks that its link's case id is in it (invariant 6: this case only); nothing is
read from the database for that. The cookie is issued again (a new timestamp: the idle timeout slides)
by a page that finds it more than ``REFRESH_AFTER_SECONDS`` old, as ``relance.core.sessions`` does for
the session row. A tampered, expired or unreadable cookie counts as no verification (and is deleted).
Decision record: docs/decisions/0004-portalfast4-verified-cookie.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers

from relance.portal.links import portal_prefix

COOKIE_NAME = "relance_portal"
SALT = "relance.portal.verified-cases"
VERIFIED_SECONDS = 30 * 60  # a verification lasts 30 minutes without a request (docs/portal.md)
REFRESH_AFTER_SECONDS = 60  # a page re-issues the cookie when the last issue is older than this
MAX_CASES = 20  # the most recent verified cases a browser keeps
_MEMO_SIZE = 4096  # cookies remembered per process once their signature checked (decision 0004)

_STATE = "_relance_portal_access"  # on the request: (case ids, issued at, what the response must do)


class _State:
    __slots__ = ("cases", "drop", "issued", "write")

    def __init__(self, cases: tuple[int, ...], issued: float | None, *, drop: bool) -> None:
        self.cases = cases
        self.issued = issued
        self.write = False
        self.drop = drop


def sign(cases: list[int] | tuple[int, ...]) -> str:
    """A cookie value for ``cases`` (ids), issued now."""
    return _signer().sign(".".join(str(int(case)) for case in cases[-MAX_CASES:]))


def _signer() -> signing.TimestampSigner:
    """``SECRET_KEY`` (and ``SECRET_KEY_FALLBACKS`` while keys rotate), read when it is made."""
    return signing.TimestampSigner(salt=SALT)


def _read(value: str | None) -> _State:
    if not value:
        return _State((), None, drop=False)
    try:
        cases, issued = _signed(value)
    except (signing.BadSignature, ValueError):  # tampered, other key, malformed
        return _State((), None, drop=True)
    if time.time() - issued > VERIFIED_SECONDS:  # expired: Django's SignatureExpired, checked every time
        return _State((), None, drop=True)
    return _State(cases, float(issued), drop=False)


@lru_cache(maxsize=_MEMO_SIZE)
def _signed(value: str) -> tuple[tuple[int, ...], int]:
    """The case ids of a cookie whose signature is good, and when it was issued; raises ``BadSignature``
    or ``ValueError`` otherwise. Remembered per process for the ``_MEMO_SIZE`` most recent good cookies
    (ids and a timestamp: nothing personal); ``lru_cache`` keeps no exception, so a failure is redone."""
    signer = _signer()
    payload = signer.unsign(value)  # no max_age: the expiry is checked by ``_read`` on every request
    # The signature covers "payload:timestamp": the timestamp is read only once it is checked.
    issued = signing.b62_decode(value.rsplit(signer.sep, 2)[-2])
    cases = tuple(int(part) for part in payload.split(".")) if payload else ()
    return cases, issued


@receiver(setting_changed)
def _forget_signed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"SECRET_KEY", "SECRET_KEY_FALLBACKS"}:
        _signed.cache_clear()


def _state(request: HttpRequest) -> _State:
    state = getattr(request, _STATE, None)
    if state is None:
        state = _read(request.COOKIES.get(COOKIE_NAME))
        setattr(request, _STATE, state)
    return state


def is_verified(request: HttpRequest, case_id: int) -> bool:
    """Whether this browser verified ``case_id`` less than ``VERIFIED_SECONDS`` ago (since its last page);
    a page that says so also has the cookie re-issued when it is more than a minute old."""
    state = _state(request)
    if case_id not in state.cases:
        return False
    if state.issued is not None and time.time() - state.issued > REFRESH_AFTER_SECONDS:
        state.write = True
    return True


def grant(request: HttpRequest, case_id: int) -> None:
    """Record a successful verification of ``case_id``: the response carries a new cookie with it."""
    state = _state(request)
    state.cases = (*(case for case in state.cases if case != case_id), case_id)[-MAX_CASES:]
    state.write = True
    state.drop = False


def verified_cookie(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Wrap a portal view: when the view read the cookie, its response varies on ``Cookie`` and is
    ``private``; it sets the cookie when the view granted a case or found it more than a minute old, and
    deletes a cookie that failed its check."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        state = getattr(request, _STATE, None)
        if state is None:
            return response
        # The response depends on this browser's cookie: never from a shared cache, never to another.
        patch_vary_headers(response, ("Cookie",))
        patch_cache_control(response, private=True)
        if response.status_code >= 500:
            return response
        path = cookie_path()
        if state.write:
            response.set_cookie(
                COOKIE_NAME,
                sign(state.cases),
                max_age=VERIFIED_SECONDS,
                path=path,
                secure=bool(settings.SESSION_COOKIE_SECURE),
                httponly=True,
                samesite="Lax",
            )
        elif state.drop:
            response.delete_cookie(COOKIE_NAME, path=path, samesite="Lax")
        return response

    return wrapper


def cookie_path() -> str:
    """The portal's prefix (``/p/`` under the script prefix): the cookie goes to no other page."""
    return portal_prefix()
