"""Provider webhooks, mounted under /hooks/ (signed or token-authenticated; see comms.webhooks)."""

from __future__ import annotations

from django.urls import path

from relance.comms import email_webhooks, webhooks

app_name = "hooks"

urlpatterns = [
    path("sms/twilio/status", webhooks.twilio_status, name="sms_twilio_status"),
    path("sms/twilio/inbound", webhooks.twilio_inbound, name="sms_twilio_inbound"),
    path("sms/ovh/inbound", webhooks.ovh_inbound, name="sms_ovh_inbound"),
    path("email/brevo/tracking/", email_webhooks.brevo_tracking, name="email_brevo_tracking"),
    path("email/mailjet/tracking/", email_webhooks.mailjet_tracking, name="email_mailjet_tracking"),
    path("email/amazon_ses/tracking/", email_webhooks.ses_tracking, name="email_ses_tracking"),
    path("email/unsubscribe/<str:token>/", webhooks.email_unsubscribe, name="email_unsubscribe"),
]
