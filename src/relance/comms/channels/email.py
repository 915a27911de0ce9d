"""E-mail through Django's e-mail backends (SMTP by default; any backend by settings)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from relance.claims.models import Debtor
from relance.comms.channels.base import SendContext, Sent
from relance.comms.models import Action
from relance.comms.render import render_message


class EmailSender:
    def blocked(self, action: Action, debtor: Debtor) -> str:
        if not debtor.email:
            return "debtor has no e-mail address"
        if debtor.email_opt_out:
            return "debtor opted out of e-mail"
        if debtor.email_bounced:
            return "debtor's e-mail address bounced"
        return ""

    def send(self, action: Action, context: SendContext) -> Sent:
        connection = context.resources.get("email_connection")
        if connection is None:
            connection = context.resources["email_connection"] = get_connection()
        rendered = render_message(case=action.case, channel="email", template=action.template)
        creditor = action.case.creditor
        # The action id in the Message-ID lets a provider or a mailbox de-duplicate a resend.
        message_id = f"<action-{action.pk}@{settings.DEFAULT_FROM_EMAIL.split('@')[-1]}>"
        msg = EmailMultiAlternatives(
            subject=rendered.subject,
            body=rendered.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[action.case.debtor.email],
            reply_to=[creditor.support_email] if creditor.support_email else None,
            headers={"Message-ID": message_id, "X-Relance-Action": str(action.pk)},
            connection=connection,
        )
        msg.attach_alternative(rendered.html, "text/html")
        msg.send()
        return Sent(
            to_address=action.case.debtor.email,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            content_hash=rendered.content_hash,
            provider_message_id=message_id,
        )
