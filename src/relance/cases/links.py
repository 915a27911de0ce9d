"""Personal portal links: signed, expiring tokens that name one case and nothing else.

The token carries the case id and a per-case salt part (its reference), signed with SECRET_KEY; it
grants nothing by itself: the debtor still has to verify (postcode) before seeing any personal data.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "relance.portal.link"


def portal_token(*, case_id: int, reference: str) -> str:
    return signing.dumps({"c": case_id, "r": reference}, salt=_SALT, compress=False)


def portal_token_read(token: str) -> tuple[int, str] | None:
    """The (case id, reference) a valid, unexpired token names; ``None`` otherwise."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.RELANCE_PORTAL_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        return None
    return data["c"], str(data.get("r", ""))


def portal_url(*, case_id: int, reference: str) -> str:
    path = reverse("portal:entry", kwargs={"token": portal_token(case_id=case_id, reference=reference)})
    return f"{settings.PUBLIC_BASE_URL}{path}"
