"""Mollie Payments API v2: a hosted card payment, and Mollie's webhook (an id to fetch).

Wire format, as documented by Mollie (docs.mollie.com/reference/create-payment,
docs.mollie.com/reference/get-payment, docs.mollie.com/reference/webhooks):

* ``POST https://api.mollie.com/v2/payments``, JSON ``{"amount": {"currency": "EUR", "value": "120.50"},
  "description", "redirectUrl", "cancelUrl", "webhookUrl", "locale", "method": "creditcard",
  "metadata": {...}}`` — the value is a string with exactly the currency's decimals;
  ``Authorization: Bearer <live_/test_ key>``; ``Idempotency-Key`` header. Answer 201: the Payment
  ``{"resource": "payment", "id": "tr_…", "status": "open", "_links": {"checkout": {"href": …}}}``;
  errors as ``application/hal+json`` ``{"status", "title", "detail", "field"}``.
* Webhook: Mollie POSTs ``id=tr_…`` (form-encoded) and nothing else — no signature. Its authenticity
  comes from fetching the payment with our key (``GET /v2/payments/{id}``): what we apply is what the
  API says, never what the request said. An unknown id is answered 200 and ignored (Mollie's advice:
  never reveal which ids exist).

The fetched payment gives the current truth: ``status == "paid"`` (or a ``paidAt``), and the cumulative
``amountRefunded`` and ``amountChargedBack``. Each state becomes an event whose id names that state
(``tr_…:paid``, ``tr_…:refunded:5.00``), so a webhook repeated, or states seen out of order, are applied once.

Chargebacks are fetched with the payment (``?embed=chargebacks``, docs.mollie.com/reference/get-payment:
``_embedded.chargebacks[]`` of ``{"resource": "chargeback", "id": "chb_…", "amount", "createdAt",
"reversedAt"}``). A chargeback the merchant won has a ``reversedAt``: the money comes back, as a new
payment of the case (``payment.reinstated``, as for Stripe's ``charge.dispute.funds_reinstated``). The
charged-back total applied is the larger of ``amountChargedBack`` and the sum of the embedded
chargebacks, reversed ones included, so that a reversal seen before its chargeback is never counted
as money twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx

from relance.core.money import Money, MoneyError
from relance.payments.psp.base import (
    TIMEOUT,
    CheckoutRequest,
    CheckoutSession,
    PspError,
    PspEvent,
    WebhookSignatureError,
    error_message,
)

MOLLIE_API = "https://api.mollie.com"


def mollie_value(amount: Money) -> str:
    """Mollie's amount ``value``: a string with exactly the currency's decimals ("120.50")."""
    return str(amount.to_decimal())


def _locale(lang: str) -> str:
    return "fr_FR" if lang.startswith("fr") else "en_GB" if lang.startswith("en") else "fr_FR"


def _amount(raw: object) -> Money | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Money.parse(str(raw.get("value", "")), str(raw.get("currency", "")))
    except (MoneyError, ValueError):
        return None


def _when(raw: object, default: datetime) -> datetime:
    if isinstance(raw, str) and raw:
        try:
            return datetime.fromisoformat(raw).astimezone(UTC)
        except ValueError:
            return default
    return default


class MollieAdapter:
    name = "mollie"

    def __init__(
        self, *, api_key: str, api_base: str = MOLLIE_API, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._client = httpx.Client(
            base_url=api_base.rstrip("/"),
            transport=transport,
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    def checkout_create(self, request: CheckoutRequest) -> CheckoutSession:
        body: dict[str, Any] = {
            "amount": {"currency": request.amount.currency, "value": mollie_value(request.amount)},
            "description": request.description[:255],
            "redirectUrl": request.success_url,
            "cancelUrl": request.cancel_url,
            "webhookUrl": request.webhook_url,
            "locale": _locale(request.locale),
            "method": "creditcard",
            "metadata": {"case_id": str(request.case_id), "case_reference": request.case_reference},
        }
        try:
            response = self._client.post(
                "/v2/payments", json=body, headers={"Idempotency-Key": request.idempotency_key}
            )
        except httpx.HTTPError as exc:
            raise PspError(f"Mollie could not be reached: {type(exc).__name__}", provider="mollie") from exc
        if response.status_code not in (200, 201):
            message, code = error_message(response)
            raise PspError(f"Mollie refused the payment: {message}", provider="mollie", provider_code=code)
        payment = response.json()
        href = ((payment.get("_links") or {}).get("checkout") or {}).get("href")
        if not isinstance(payment.get("id"), str) or not isinstance(href, str):
            raise PspError("Mollie answered without a payment id or checkout link", provider="mollie")
        return CheckoutSession(
            provider="mollie", session_id=payment["id"], payment_ref=payment["id"], redirect_url=href
        )

    def payment_get(self, payment_id: str) -> dict[str, Any] | None:
        """The payment as Mollie knows it now; ``None`` when Mollie does not know this id."""
        try:
            response = self._client.get(f"/v2/payments/{payment_id}", params={"embed": "chargebacks"})
        except httpx.HTTPError as exc:
            raise PspError(f"Mollie could not be reached: {type(exc).__name__}", provider="mollie") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            message, code = error_message(response)
            raise PspError(f"Mollie refused to show the payment: {message}", provider="mollie", provider_code=code)
        data = response.json()
        return data if isinstance(data, dict) else None

    def webhook_events(self, *, body: bytes, headers: dict[str, str], now: datetime) -> list[PspEvent]:
        ids = parse_qs(body.decode("utf-8", "replace")).get("id", [])
        payment_id = ids[0].strip() if ids else ""
        if not payment_id.startswith("tr_") or len(payment_id) > 64:
            raise WebhookSignatureError("a Mollie webhook carries the id of a payment (tr_…)", provider="mollie")
        payment = self.payment_get(payment_id)
        if payment is None:
            return []
        return mollie_events(payment, now=now)


def mollie_events(payment: dict[str, Any], *, now: datetime) -> list[PspEvent]:
    """Events for the current state of a fetched Mollie payment (paid, refunded, charged back)."""
    payment_id = str(payment.get("id", ""))
    raw_case = (payment.get("metadata") or {}).get("case_id", "") if isinstance(payment.get("metadata"), dict) else ""
    case_id = int(raw_case) if isinstance(raw_case, str) and raw_case.isdigit() else None
    status = str(payment.get("status", ""))
    events: list[PspEvent] = []
    paid = status == "paid" or bool(payment.get("paidAt"))
    amount = _amount(payment.get("amount"))
    common: dict[str, Any] = {"provider": "mollie", "payment_ref": payment_id, "case_id": case_id, "raw_type": status}
    if paid and amount is not None:
        events.append(
            PspEvent(
                event_id=f"{payment_id}:paid",
                kind="payment.succeeded",
                amount=amount,
                occurred_at=_when(payment.get("paidAt"), now),
                session_id=payment_id,
                payload={"status": status},
                **common,
            )
        )
    if status in ("failed", "canceled", "expired"):
        events.append(
            PspEvent(
                event_id=f"{payment_id}:{status}",
                kind="payment.failed",
                amount=None,
                occurred_at=now,
                session_id=payment_id,
                **common,
            )
        )
    refunded = _amount(payment.get("amountRefunded"))
    if paid and refunded is not None and refunded.minor > 0:
        events.append(
            PspEvent(
                event_id=f"{payment_id}:refunded:{mollie_value(refunded)}",
                kind="payment.refunded",
                amount=refunded,
                occurred_at=now,
                payload={"amountRefunded": mollie_value(refunded)},
                **common,
            )
        )
    chargebacks = [c for c in ((payment.get("_embedded") or {}).get("chargebacks") or []) if isinstance(c, dict)]
    charged_back = _amount(payment.get("amountChargedBack"))
    amounts = [a for a in (_amount(c.get("amount")) for c in chargebacks) if a is not None]
    if amounts and len({a.currency for a in amounts}) == 1:
        embedded = Money(sum(a.minor for a in amounts), amounts[0].currency)
        if charged_back is None or (embedded.currency == charged_back.currency and embedded.minor > charged_back.minor):
            charged_back = embedded
    if paid and charged_back is not None and charged_back.minor > 0:
        events.append(
            PspEvent(
                event_id=f"{payment_id}:chargeback:{mollie_value(charged_back)}",
                kind="payment.chargeback",
                amount=charged_back,
                occurred_at=now,
                payload={"amountChargedBack": mollie_value(charged_back)},
                **common,
            )
        )
    for chargeback in chargebacks:
        won = _amount(chargeback.get("amount"))
        chargeback_id = str(chargeback.get("id", ""))
        if paid and chargeback.get("reversedAt") and won is not None and won.minor > 0 and chargeback_id:
            events.append(
                PspEvent(
                    event_id=f"{payment_id}:chargeback_reversed:{chargeback_id}",
                    kind="payment.reinstated",
                    amount=won,
                    occurred_at=_when(chargeback.get("reversedAt"), now),
                    payload={"dispute": chargeback_id, "reversedAt": str(chargeback.get("reversedAt"))},
                    **common,
                )
            )
    return events
