"""Signed one-click e-mail opt-out links (List-Unsubscribe, RFC 8058).

The token is the debtor id signed with the project's secret (``django.core.signing``, its own salt):
it cannot be forged or pointed at another debtor, is the same in every e-mail to that debtor, and never
expires (an old e-mail's link still works).
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "relance.comms.email-unsubscribe"


def unsubscribe_token(*, debtor_id: int) -> str:
    return signing.Signer(salt=_SALT).sign_object(debtor_id)


def unsubscribe_debtor_id(token: str) -> int | None:
    """The debtor a token was made for, or ``None`` when it is not one of ours."""
    try:
        value = signing.Signer(salt=_SALT).unsign_object(token)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None


def unsubscribe_url(*, debtor_id: int) -> str:
    path = reverse("hooks:email_unsubscribe", kwargs={"token": unsubscribe_token(debtor_id=debtor_id)})
    return settings.PUBLIC_BASE_URL + path
