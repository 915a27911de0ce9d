"""Provider webhooks, mounted under /hooks/ (signed or token-authenticated; see comms.webhooks)."""

from __future__ import annotations

from django.urls import path

from relance.comms import webhooks

app_name = "hooks"

urlpatterns = [
    path("sms/twilio/status", webhooks.twilio_status, name="sms_twilio_status"),
    path("sms/twilio/inbound", webhooks.twilio_inbound, name="sms_twilio_inbound"),
    path("sms/ovh/inbound", webhooks.ovh_inbound, name="sms_ovh_inbound"),
]
