"""PSP adapters (Stripe Checkout, Mollie) chosen by settings; see ``base`` for the interface."""

from __future__ import annotations

import httpx
from django.conf import settings

from relance.payments.psp.base import (
    CheckoutRequest,
    CheckoutSession,
    PspAdapter,
    PspError,
    PspEvent,
    PspNotConfiguredError,
    WebhookSignatureError,
)

PROVIDERS = ("stripe", "mollie")


def psp_adapter(name: str | None = None, *, transport: httpx.BaseTransport | None = None) -> PspAdapter:
    """The adapter for ``name`` (default: ``RELANCE_CARD_PSP``), with its keys from settings.

    Keys come from the environment only; an adapter without its keys is not configured.
    """
    from relance.payments.psp.mollie import MollieAdapter  # noqa: PLC0415 - keep imports light
    from relance.payments.psp.stripe import StripeAdapter  # noqa: PLC0415

    name = name if name is not None else settings.RELANCE_CARD_PSP
    if name == "stripe" and settings.STRIPE_SECRET_KEY:
        return StripeAdapter(
            secret_key=settings.STRIPE_SECRET_KEY,
            webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
            api_base=settings.STRIPE_API_BASE,
            transport=transport,
        )
    if name == "mollie" and settings.MOLLIE_API_KEY:
        return MollieAdapter(api_key=settings.MOLLIE_API_KEY, api_base=settings.MOLLIE_API_BASE, transport=transport)
    raise PspNotConfiguredError(f"card payments through {name or 'no provider'} are not configured", provider=name)


def card_payments_enabled() -> bool:
    name = settings.RELANCE_CARD_PSP
    return (name == "stripe" and bool(settings.STRIPE_SECRET_KEY)) or (
        name == "mollie" and bool(settings.MOLLIE_API_KEY)
    )


__all__ = [
    "PROVIDERS",
    "CheckoutRequest",
    "CheckoutSession",
    "PspAdapter",
    "PspError",
    "PspEvent",
    "PspNotConfiguredError",
    "WebhookSignatureError",
    "card_payments_enabled",
    "psp_adapter",
]
