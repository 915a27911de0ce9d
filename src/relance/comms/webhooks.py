"""Provider webhooks for SMS: delivery receipts and inbound messages (STOP).

These are the only CSRF-exempt views: no session or cookie is involved, and each request is
authenticated by the provider instead. Twilio signs every webhook (X-Twilio-Signature, verified
against the public URL we gave it, which for receipts carries the action id); a missing or forged
signature gets 403. OVHcloud does not sign its callbacks, so its URL carries a secret token
(OVH_SMS_WEBHOOK_TOKEN) compared in constant time; without one configured the hook refuses all.
"""

from __future__ import annotations

import hmac

import phonenumbers
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from relance.comms.services import email_opt_out_record, sms_opt_out_record, sms_receipt_record
from relance.comms.sms import is_stop_request
from relance.comms.sms_providers import twilio_signature_valid
from relance.comms.unsubscribe import unsubscribe_debtor_id
from relance.tenancy.actors import Actor

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _public_url(request: HttpRequest) -> str:
    """The URL the provider called, as we published it (a proxy may change scheme and host)."""
    return settings.PUBLIC_BASE_URL + request.get_full_path()


def _twilio_verified(request: HttpRequest) -> bool:
    params = {name: request.POST.getlist(name) for name in request.POST}
    return twilio_signature_valid(
        auth_token=settings.TWILIO_AUTH_TOKEN,
        url=_public_url(request),
        params=params,
        signature=request.headers.get("X-Twilio-Signature", ""),
    )


def _e164(raw: str) -> str:
    try:
        number = phonenumbers.parse(raw.strip(), "FR")
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio's StatusCallback: MessageSid, MessageStatus, ErrorCode; ``?action=`` names the action."""
    if not _twilio_verified(request):
        return HttpResponseForbidden("invalid signature")
    action_id = request.GET.get("action", "")
    if action_id.isdigit():
        sms_receipt_record(
            action_id=int(action_id),
            provider="twilio",
            provider_message_id=request.POST.get("MessageSid", ""),
            status=request.POST.get("MessageStatus", "").lower(),
            error_code=request.POST.get("ErrorCode", ""),
            actor=Actor.system("twilio"),
        )
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """An SMS a debtor sent to our Twilio number: From, Body (and OptOutType with Advanced Opt-Out)."""
    if not _twilio_verified(request):
        return HttpResponseForbidden("invalid signature")
    body = request.POST.get("Body", "")
    if is_stop_request(body) or request.POST.get("OptOutType", "").upper() == "STOP":
        sms_opt_out_record(
            phone=_e164(request.POST.get("From", "")), provider="twilio", message=body, actor=Actor.system("twilio")
        )
    # An empty TwiML answer: Twilio sends no reply of ours (its own opt-out confirmation still applies).
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def ovh_inbound(request: HttpRequest) -> HttpResponse:
    """An answer to an OVHcloud short number: ``senderid``, ``message``, ``id``, ``tag`` (GET or POST)."""
    expected = settings.OVH_SMS_WEBHOOK_TOKEN
    given = request.GET.get("token", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return HttpResponseForbidden("invalid token")
    data = request.POST if request.method == "POST" else request.GET
    message = data.get("message", "")
    if is_stop_request(message):
        sms_opt_out_record(
            phone=_e164(data.get("senderid", "")), provider="ovh", message=message, actor=Actor.system("ovh")
        )
    return HttpResponse("OK", content_type="text/plain")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def email_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The List-Unsubscribe URL: a POST (one-click from the mail client, RFC 8058, or the page's button)
    records the opt-out; a GET only shows the button, so link scanners never unsubscribe anyone.

    CSRF-exempt: mail clients post without a session; the signed token is the authentication.
    """
    debtor_id = unsubscribe_debtor_id(token)
    if debtor_id is None:
        return HttpResponseNotFound(_("This unsubscribe link is not valid."))
    done = request.method == "POST"
    if done:
        email_opt_out_record(debtor_id=debtor_id, source="list-unsubscribe", actor=Actor.system("unsubscribe"))
    return render(request, "comms/unsubscribe.html", {"done": done})
