"""The portal's own links of a case, built once per request from one prefix instead of one ``reverse()``
each (a ``{% url %}`` costs tens of microseconds; the case page has up to ten of them).

The result is exactly what ``reverse()`` gives (tested for every name): the token is a signed value
(base64url characters and ``:``, nothing ``reverse()`` would quote), and each page's path below the
link is read from the URLconf itself, once per process, script prefix and URLconf.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

# The pages the case page links to (no argument but the token).
CASE_LINKS = (
    "entry",
    "case",
    "transfer_qr",
    "pay_sandbox",
    "card_pay",
    "dispute",
    "return",
    "contact",
    "plan",
    "plan_done",
    "promise",
    "hardship",
)
_PLACEHOLDER = "T0KEN"
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_\-:]+")


@lru_cache(maxsize=16)
def _parts(script_prefix: str, urlconf: str) -> tuple[str, dict[str, str]]:
    """(the path before the token, each page's path after it), from ``reverse()`` itself."""
    del script_prefix, urlconf  # the cache key: reverse() reads them from the thread and the settings
    before, after = {}, {}
    for name in CASE_LINKS:
        url = reverse(f"portal:{name}", kwargs={"token": _PLACEHOLDER})
        head, _, tail = url.partition(_PLACEHOLDER)
        before[name], after[name] = head, tail
    heads = set(before.values())
    if len(heads) != 1:  # every page under the same prefix, or no shortcut
        raise LookupError("portal pages are not under one prefix")
    return heads.pop(), after


def case_links(token: str) -> dict[str, str]:
    """``{name: reverse("portal:<name>", kwargs={"token": token})}`` for every name in ``CASE_LINKS``."""
    if not _SAFE_TOKEN.fullmatch(token):
        return {name: reverse(f"portal:{name}", kwargs={"token": token}) for name in CASE_LINKS}
    head, tails = _parts(get_script_prefix(), urlconf_key())
    start = head + token
    return {name: start + tail for name, tail in tails.items()}


def urlconf_key() -> str:
    """Which URLconf ``reverse()`` uses now (the request's own, else the settings')."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return urlconf if isinstance(urlconf, str) else getattr(urlconf, "__name__", repr(urlconf))


def portal_prefix() -> str:
    """The path every portal page starts with (``/p/`` under the script prefix), from ``reverse()``."""
    return _parts(get_script_prefix(), urlconf_key())[0]
