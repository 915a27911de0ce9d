"""E-mail through Django's e-mail backends (SMTP by default; django-anymail for ESPs by settings).

One connection serves a whole dispatch batch. With ``comms.mail.HandoverSMTPBackend`` (the SMTP
default) the dispatcher records the hand-over just before the server can accept the message, so a
crash never sends it twice. Every message carries ``List-Unsubscribe`` (a signed one-click URL, RFC
8058, and a mailto) so the debtor can stop e-mail from their mail client (FR-COL-16).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from relance.claims.models import Debtor
from relance.comms.channels.base import SendContext, Sent
from relance.comms.mail import alternative_message
from relance.comms.models import Action
from relance.comms.render import Rendered, TokenPath, render_message
from relance.comms.unsubscribe import unsubscribe_tokens

# What the dispatcher reads of each claimed e-mail, in one narrow query per batch: the action's own
# columns, the case's and the debtor's that the last checks (case status, contact policy, e-mail
# blocks), this sender and the documented template variables (docs/strategies.md) use. Any other
# field still loads when something reads it (a query each: correct, only slower).
EMAIL_BATCH_FIELDS = (
    "id",
    "case_id",
    "debtor_id",
    "channel",
    "template",
    "attempts",
    "case__id",
    "case__creditor_id",
    "case__debtor_id",
    "case__reference",
    "case__currency",
    "case__status",
    "case__debtor__id",
    "case__debtor__kind",
    "case__debtor__first_name",
    "case__debtor__last_name",
    "case__debtor__company_name",
    "case__debtor__email",
    "case__debtor__language",
    "case__debtor__timezone",
    "case__debtor__email_opt_out",
    "case__debtor__email_bounced",
)


def action_message_id(action_id: int) -> str:
    """The Message-ID of an action's e-mail: the action id, so a resend is recognisable everywhere."""
    return f"<action-{action_id}@{settings.DEFAULT_FROM_EMAIL.split('@')[-1]}>"


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
            connection.open()  # kept open for the batch; the dispatcher closes it
            context.resources["email_connection_opened"] = connection
        rendered = render_message(
            case=action.case,
            channel="email",
            template=action.template,
            prefetch=context.resources.get("render_prefetch"),
        )
        creditor, debtor = action.case.creditor, action.case.debtor
        message_id = action_message_id(action.pk)
        opt_out_path = context.resources.get("unsubscribe_path")
        if opt_out_path is None:  # per batch: the URL's path reversed once, the signer's key derived once
            opt_out_path = context.resources["unsubscribe_path"] = TokenPath("hooks:email_unsubscribe")
            context.resources["unsubscribe_token"] = unsubscribe_tokens()
        opt_out = settings.PUBLIC_BASE_URL + opt_out_path(context.resources["unsubscribe_token"](debtor.pk))
        headers = {
            "Message-ID": message_id,
            "X-Relance-Action": str(action.pk),
            "List-Unsubscribe": f"<{opt_out}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        reply_to = [creditor.support_email] if creditor.support_email else []
        sent = Sent(
            to_address=debtor.email,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            content_hash=rendered.content_hash,
            provider_message_id=message_id,
        )
        handover = context.resources.get("handover")
        send_with_handover = getattr(connection, "send_with_handover", None)
        if handover is not None and send_with_handover is not None:
            # Written directly (the same bytes as Django's EmailMultiAlternatives, tested), else by Django.
            raw = alternative_message(
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[debtor.email],
                reply_to=reply_to,
                headers=list(headers.items()),
            )
            message = raw or _django_message(rendered, debtor.email, reply_to, headers, connection)
            send_with_handover(message, lambda: handover(action, sent))
            return replace(sent, handed_over=True)
        msg = _django_message(rendered, debtor.email, reply_to, headers, connection)
        # anymail passes metadata to the ESP, which returns it in every webhook event (comms.email_webhooks).
        msg.metadata = {"action": str(action.pk)}  # type: ignore[attr-defined]
        msg.send()
        return sent


def _django_message(
    rendered: Rendered, to: str, reply_to: list[str], headers: dict[str, str], connection: Any
) -> EmailMultiAlternatives:
    msg = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=reply_to or None,
        headers=headers,
        connection=connection,
    )
    msg.attach_alternative(rendered.html, "text/html")
    return msg
