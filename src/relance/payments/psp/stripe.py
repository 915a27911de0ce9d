"""Stripe Checkout: a hosted card payment page, and Stripe's signed webhooks.

Wire format, as documented by Stripe (docs.stripe.com/api/checkout/sessions/create,
docs.stripe.com/webhooks#verify-manually, stripe-python ``WebhookSignature``):

* ``POST https://api.stripe.com/v1/checkout/sessions``, ``application/x-www-form-urlencoded`` with
  bracketed keys (``line_items[0][price_data][unit_amount]=12050`` — the amount in the currency's
  smallest unit), ``mode=payment``, ``success_url``, ``cancel_url``, ``client_reference_id``,
  ``metadata[...]`` and ``payment_intent_data[metadata][...]`` (so charges, refunds and disputes carry
  the case too); ``Authorization: Bearer <secret key>``; ``Idempotency-Key`` header. Answer: the
  Session object, JSON, with ``id`` (``cs_…``) and ``url``.
* Webhooks: ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=…][,v0=…]``, where v1 is
  HMAC-SHA256(endpoint secret, ``"<t>.<raw body>"``); any v1 may match (secret rotation); events older
  than the tolerance (300 s) are refused against replays. Body: an Event
  ``{"id": "evt_…", "type", "created", "data": {"object": {…}}}``.

Events used: ``checkout.session.completed`` (and ``…async_payment_succeeded``) with
``payment_status == "paid"``; ``checkout.session.expired`` / ``…async_payment_failed`` (the page is
closed unpaid); ``charge.refunded`` (``amount_refunded`` is the cumulative refunded
amount); ``charge.dispute.created`` (a chargeback: the disputed amount is taken back from us at once;
a charge can be disputed only once); ``charge.dispute.funds_reinstated`` (the dispute was won: the
money comes back, recorded as a new card payment of the case).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from relance.core.money import Money
from relance.payments.psp.base import (
    TIMEOUT,
    CheckoutRequest,
    CheckoutSession,
    PspError,
    PspEvent,
    WebhookSignatureError,
    error_message,
)

STRIPE_API = "https://api.stripe.com"
TOLERANCE_SECONDS = 300
_PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}


def stripe_signature_header(*, secret: str, payload: bytes, timestamp: int) -> str:
    """The header Stripe would send for ``payload`` at ``timestamp`` (used by tests and the demo)."""
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def stripe_signature_valid(*, secret: str, payload: bytes, header: str, now: datetime) -> bool:
    """Check ``Stripe-Signature`` against ``payload``: a v1 HMAC matches and ``t`` is recent enough."""
    if not secret or not header:
        return False
    timestamp = ""
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if not timestamp.isdigit() or not signatures:
        return False
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, sig) for sig in signatures)


def _locale(lang: str) -> str:
    return "fr" if lang.startswith("fr") else "en-GB" if lang.startswith("en") else "auto"


class StripeAdapter:
    name = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        api_base: str = STRIPE_API,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._client = httpx.Client(base_url=api_base.rstrip("/"), transport=transport, timeout=TIMEOUT)

    def checkout_create(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {"case_id": str(request.case_id), "case_reference": request.case_reference}
        form: dict[str, str] = {
            "mode": "payment",
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.case_reference,
            "locale": _locale(request.locale),
            "payment_method_types[0]": "card",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": request.amount.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(request.amount.minor),
            "line_items[0][price_data][product_data][name]": request.description[:250],
        }
        for key, value in metadata.items():
            form[f"metadata[{key}]"] = value
            form[f"payment_intent_data[metadata][{key}]"] = value
        if request.customer_email:
            form["customer_email"] = request.customer_email
        try:
            response = self._client.post(
                "/v1/checkout/sessions",
                data=form,
                headers={
                    "Authorization": f"Bearer {self._secret_key}",
                    "Idempotency-Key": request.idempotency_key,
                    "Stripe-Version": "2024-06-20",
                },
            )
        except httpx.HTTPError as exc:
            raise PspError(f"Stripe could not be reached: {type(exc).__name__}", provider="stripe") from exc
        if response.status_code != 200:
            message, code = error_message(response)
            raise PspError(f"Stripe refused the payment page: {message}", provider="stripe", provider_code=code)
        body = response.json()
        session_id, url = body.get("id"), body.get("url")
        if not isinstance(session_id, str) or not isinstance(url, str):
            raise PspError("Stripe answered without a session id or URL", provider="stripe")
        return CheckoutSession(
            provider="stripe",
            session_id=session_id,
            payment_ref=str(body.get("payment_intent") or ""),
            redirect_url=url,
        )

    def webhook_events(self, *, body: bytes, headers: dict[str, str], now: datetime) -> list[PspEvent]:
        header = headers.get("stripe-signature", "")
        if not stripe_signature_valid(secret=self._webhook_secret, payload=body, header=header, now=now):
            raise WebhookSignatureError("Stripe-Signature does not match this endpoint's secret", provider="stripe")
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookSignatureError("the signed body is not JSON", provider="stripe") from None
        return [stripe_event(event)]


def _case_id(obj: dict[str, Any]) -> int | None:
    raw = (obj.get("metadata") or {}).get("case_id", "")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def _ref(value: object) -> str:
    """An expandable Stripe field: an id, or the object itself when expanded."""
    if isinstance(value, dict):
        return str(value.get("id", ""))
    return str(value or "")


def stripe_event(event: dict[str, Any]) -> PspEvent:
    """A verified Stripe Event as a ``PspEvent`` (``ignored`` for types we do not act on)."""
    kind = str(event.get("type", ""))
    obj = (event.get("data") or {}).get("object") or {}
    occurred = datetime.fromtimestamp(int(event.get("created") or 0), tz=UTC)
    common: dict[str, Any] = {
        "provider": "stripe",
        "event_id": str(event.get("id", "")),
        "occurred_at": occurred,
        "raw_type": kind,
    }
    currency = str(obj.get("currency", "")).upper()
    if kind in _PAID_EVENTS and obj.get("payment_status") == "paid":
        return PspEvent(
            kind="payment.succeeded",
            payment_ref=_ref(obj.get("payment_intent")),
            amount=Money(int(obj["amount_total"]), currency),
            case_id=_case_id(obj),
            session_id=str(obj.get("id", "")),
            payload={"session": obj.get("id"), "payment_intent": _ref(obj.get("payment_intent"))},
            **common,
        )
    if kind in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        return PspEvent(
            kind="payment.failed",
            payment_ref=_ref(obj.get("payment_intent")),
            amount=None,
            case_id=_case_id(obj),
            session_id=str(obj.get("id", "")),
            **common,
        )
    if kind == "charge.refunded":
        return PspEvent(
            kind="payment.refunded",
            payment_ref=_ref(obj.get("payment_intent")),
            amount=Money(int(obj.get("amount_refunded") or 0), currency),
            case_id=_case_id(obj),
            payload={"charge": obj.get("id"), "amount_refunded": obj.get("amount_refunded")},
            **common,
        )
    if kind == "charge.dispute.created":
        return PspEvent(
            kind="payment.chargeback",
            payment_ref=_ref(obj.get("payment_intent")),
            amount=Money(int(obj.get("amount") or 0), currency),
            case_id=_case_id(obj),
            payload={"dispute": obj.get("id"), "charge": _ref(obj.get("charge")), "reason": obj.get("reason")},
            **common,
        )
    if kind == "charge.dispute.funds_reinstated":
        # The merchant won the dispute: the charged-back money comes back to us.
        return PspEvent(
            kind="payment.reinstated",
            payment_ref=_ref(obj.get("payment_intent")),
            amount=Money(int(obj.get("amount") or 0), currency),
            case_id=_case_id(obj),
            payload={"dispute": obj.get("id"), "status": obj.get("status")},
            **common,
        )
    return PspEvent(kind="ignored", payment_ref="", amount=None, payload={"type": kind}, **common)
