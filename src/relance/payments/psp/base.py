"""What every PSP adapter provides: open a card payment page, and read its signed webhooks.

Adapters speak the provider's real wire format through an ``httpx`` transport given at construction,
so tests swap in ``httpx.MockTransport`` and check the exact requests without any network. Webhooks
are turned into provider-neutral ``PspEvent`` values after their authenticity is checked; nothing
from an unverified request is ever applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx

from relance.core.errors import DomainError
from relance.core.money import Money

TIMEOUT = httpx.Timeout(20.0, connect=5.0)

EventKind = Literal[
    "payment.succeeded", "payment.failed", "payment.refunded", "payment.chargeback", "payment.reinstated", "ignored"
]


class PspError(DomainError):
    """The provider refused a request or could not be reached; ``provider_code`` is the provider's."""

    code = "psp.error"
    status = 502
    title = "The payment provider could not take the request"


class PspNotConfiguredError(DomainError):
    code = "psp.not_configured"
    status = 404
    title = "Card payment is not configured"


class WebhookSignatureError(DomainError):
    code = "psp.bad_signature"
    status = 403
    title = "The webhook signature is missing or wrong"


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """One card payment page for a case: the amount (full or part) and where the debtor comes back."""

    case_id: int
    case_reference: str
    amount: Money
    description: str
    success_url: str
    cancel_url: str
    webhook_url: str
    idempotency_key: str
    locale: str = "fr"
    customer_email: str = ""


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    provider: str
    session_id: str
    payment_ref: str  # may be empty until the provider creates the payment (Stripe)
    redirect_url: str


@dataclass(frozen=True, slots=True)
class PspEvent:
    """A provider event in our words. ``amount`` is the amount of *this* movement (payment, refund,
    chargeback); ``event_id`` is unique per provider and is what deduplication keys on."""

    provider: str
    event_id: str
    kind: EventKind
    payment_ref: str
    amount: Money | None
    occurred_at: datetime
    case_id: int | None = None
    session_id: str = ""
    raw_type: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


class PspAdapter(Protocol):
    name: str

    def checkout_create(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a payment page at the provider; raises ``PspError``."""
        ...

    def webhook_events(self, *, body: bytes, headers: dict[str, str], now: datetime) -> list[PspEvent]:
        """Verify a webhook and return its events; raises ``WebhookSignatureError``."""
        ...


def error_message(response: httpx.Response) -> tuple[str, str]:
    """(message, provider code) from a provider's JSON error body, whatever its shape."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}", ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # Stripe: {"error": {"message", "code", "type"}}
            return str(err.get("message", ""))[:300], str(err.get("code") or err.get("type") or "")
        # Mollie: application/problem+json {"status", "title", "detail", "field"}
        return str(body.get("detail") or body.get("title") or "")[:300], str(body.get("title") or "")
    return f"HTTP {response.status_code}", ""
