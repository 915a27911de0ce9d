"""ESP e-mail event webhooks through django-anymail: Brevo, Mailjet and Amazon SES (issue 4).

anymail parses each ESP's documented payload into one normalised ``AnymailTrackingEvent`` and checks
the request: HTTP basic auth against ``ANYMAIL["WEBHOOK_SECRET"]`` for all three (Brevo and Mailjet
only offer that; SES posts through SNS, whose URL carries the same credentials). Without a secret
configured these hooks answer 403 to everything rather than trust anyone on the web.

Each event is mapped onto the action it is about (the ``action`` metadata we attach when sending, or
else the provider's message id) by ``comms.services.email_event_record``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from anymail.signals import AnymailTrackingEvent, tracking
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from relance.comms.services import email_event_record
from relance.tenancy.actors import Actor


def _secured(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @csrf_exempt
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
            return HttpResponseForbidden("e-mail webhooks need ANYMAIL_WEBHOOK_SECRET")
        return view(request, *args, **kwargs)

    return guarded


brevo_tracking = _secured(BrevoTrackingWebhookView.as_view())
mailjet_tracking = _secured(MailjetTrackingWebhookView.as_view())
ses_tracking = _secured(AmazonSESTrackingWebhookView.as_view())


def _action_id(event: AnymailTrackingEvent) -> int | None:
    raw = str((event.metadata or {}).get("action", ""))
    return int(raw) if raw.isdigit() else None


@receiver(tracking, dispatch_uid="relance.comms.email_tracking")
def on_tracking(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    occurred = event.timestamp or timezone.now()
    message_id = str(event.message_id or "")
    # Brevo and Mailjet give no event id: the same (type, message, instant) is the same event.
    same = f"{event.event_type}|{message_id}|{occurred.isoformat()}"
    event_id = event.event_id or hashlib.sha256(same.encode()).hexdigest()
    detail = " ".join(str(x) for x in (event.reject_reason, event.description, event.mta_response) if x)
    email_event_record(
        action_id=_action_id(event),
        message_id=message_id,
        provider=esp_name.lower().replace(" ", "_"),
        kind=str(event.event_type),
        event_id=str(event_id)[:200],
        occurred_at=occurred,
        detail=detail,
        actor=Actor.system(f"webhook:{esp_name}"),
    )
