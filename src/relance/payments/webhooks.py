"""PSP webhooks (Stripe, Mollie), mounted under /hooks/psp/.

CSRF-exempt like the SMS hooks: no cookie or session is involved; each request is authenticated by the
provider instead — Stripe by its ``Stripe-Signature`` HMAC (403 when missing or wrong), Mollie by our
fetching the payment it names with our API key (its request carries only an id). A provider that is
not configured answers 404. Applying is idempotent (see ``payments.card``), so the provider's retries
are harmless; an answer other than 2xx makes the provider retry later.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from relance.payments.card import psp_events_apply
from relance.payments.psp import PspError, PspNotConfiguredError, WebhookSignatureError, psp_adapter
from relance.tenancy.actors import Actor


def _receive(request: HttpRequest, provider: str) -> HttpResponse:
    try:
        adapter = psp_adapter(provider)
    except PspNotConfiguredError:
        return HttpResponseNotFound("not configured")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        events = adapter.webhook_events(body=request.body, headers=headers, now=timezone.now())
    except WebhookSignatureError:
        return HttpResponseForbidden("invalid signature")
    except PspError:
        return HttpResponse("provider unreachable, retry later", status=503, content_type="text/plain")
    outcomes = psp_events_apply(events=events, actor=Actor.system(provider))
    return HttpResponse(",".join(outcomes) or "ok", content_type="text/plain")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    return _receive(request, "stripe")


@csrf_exempt
@require_POST
def mollie_webhook(request: HttpRequest) -> HttpResponse:
    return _receive(request, "mollie")
