"""SMS through the configured provider (a JSON-lines file by default; Twilio or OVHcloud by settings).

The text is rendered from ``comms/sms/<template>.<lang>.txt``, made GSM-friendly (one line, plain
spaces and quotes, so it stays in 160-character GSM-7 parts where it can), sized and priced, and
stored on the Action exactly as handed to the provider. The action id is the idempotency key.
Sundays and public holidays are refused upstream by the contact policy (FR-COL-19); once the case's
first letter has left, the SMS recalls its reference and date (FR-COL-06).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.utils import timezone

from relance.claims.models import Debtor
from relance.comms.channels.base import SendContext, Sent
from relance.comms.models import Action
from relance.comms.render import render_message
from relance.comms.sms import sms_cost_minor, sms_normalize, sms_size
from relance.comms.sms_providers import SmsProvider, SmsRequest, sms_provider_from_settings


class SmsSender:
    def blocked(self, action: Action, debtor: Debtor) -> str:
        if not debtor.phone:
            return "debtor has no phone number for SMS"
        if debtor.sms_opt_out:
            return "debtor opted out of SMS (STOP)"
        return ""

    def send(self, action: Action, context: SendContext) -> Sent:
        provider: SmsProvider | None = context.resources.get("sms_provider")
        if provider is None:
            provider = context.resources["sms_provider"] = sms_provider_from_settings()
        # FR-COL-06: once the first letter has left, every SMS recalls its reference and date.
        first_letter = (
            Action.objects.filter(case_id=action.case_id, channel=Action.Channel.LETTER, sent_at__isnull=False)
            .order_by("sent_at")
            .values_list("sent_at", flat=True)
            .first()
        )
        rendered = render_message(
            case=action.case,
            channel="sms",
            template=action.template,
            extra={"first_letter_on": timezone.localdate(first_letter) if first_letter else None},
        )
        body = sms_normalize(rendered.text)
        size = sms_size(body)
        phone = action.case.debtor.phone
        accepted = provider.send(
            SmsRequest(to=phone, body=body, reference=str(action.pk), encoding=size.encoding, segments=size.segments)
        )
        price = settings.SMS_SEGMENT_PRICE_MINOR.get(provider.name, 0)
        return Sent(
            to_address=phone,
            subject="",
            body_text=body,
            body_html="",
            content_hash=hashlib.sha256(body.encode()).hexdigest(),
            provider_message_id=accepted.message_id,
            meta={
                "provider": provider.name,
                "encoding": size.encoding,
                "segments": size.segments,
                "cost_minor": sms_cost_minor(body, segment_price_minor=price),
                "cost_currency": settings.SMS_PRICE_CURRENCY,
            },
        )
