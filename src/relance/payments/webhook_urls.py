"""PSP webhooks, mounted under /hooks/psp/ (see payments.webhooks)."""

from __future__ import annotations

from django.urls import path

from relance.payments import webhooks

app_name = "psp_hooks"

urlpatterns = [
    path("stripe", webhooks.stripe_webhook, name="stripe"),
    path("mollie", webhooks.mollie_webhook, name="mollie"),
]
