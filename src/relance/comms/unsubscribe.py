"""Signed one-click e-mail opt-out links (List-Unsubscribe, RFC 8058).

The token is the debtor id signed with the project's secret (``django.core.signing``, its own salt):
it cannot be forged or pointed at another debtor, is the same in every e-mail to that debtor, and never
expires (an old e-mail's link still works).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes

_SALT = "relance.comms.email-unsubscribe"


def unsubscribe_token(*, debtor_id: int) -> str:
    return signing.Signer(salt=_SALT).sign_object(debtor_id)


class _KeyedSigner(signing.Signer):
    """``signing.Signer`` with its HMAC key derived once (``salted_hmac`` derives it on every call)."""

    def __init__(self, *, salt: str) -> None:
        super().__init__(salt=salt)
        self._mac = salted_hmac(salt + "signer", b"", self.key, algorithm=self.algorithm)  # as Signer.signature

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        if key is not None and key != self.key:
            return str(super().signature(value, key))
        mac = self._mac.copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


def unsubscribe_tokens() -> Callable[[int], str]:
    """``unsubscribe_token`` for many debtors (a dispatch batch): one signer, one derived key (same tokens)."""
    signer = _KeyedSigner(salt=_SALT)
    return signer.sign_object


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
