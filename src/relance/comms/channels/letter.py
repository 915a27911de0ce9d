"""Postal letters: one PDF per action, kept in Django's default storage for the daily print batch.

The action id is the idempotency key: the PDF's name depends on the action alone
(``letters/<day>/action-<id>.pdf``) and a complete PDF already there is the letter, so a dispatch
repeated after a crash neither writes a second file nor prints a second, different letter. What the
debtor receives is identified by the SHA-256 of that PDF (kept as the action's ``content_hash``).
"""

from __future__ import annotations

import hashlib

from django.utils import timezone

from relance.claims.models import Debtor
from relance.comms.channels.base import SendContext, Sent
from relance.comms.letters import (
    debtor_address_missing,
    debtor_postal_lines,
    first_letter_date,
    letter_pdf,
    letter_render,
    letter_storage_name,
    letter_store_pdf,
    letter_stored_pdf,
)
from relance.comms.models import Action


class LetterSender:
    def blocked(self, action: Action, debtor: Debtor) -> str:
        if debtor.address_invalid:
            since = (
                f" since {timezone.localdate(debtor.address_invalid_at):%Y-%m-%d}" if debtor.address_invalid_at else ""
            )
            why = f": {debtor.address_invalid_reason}" if debtor.address_invalid_reason else ""
            return f"debtor's postal address is invalid (letter returned{since}{why})"
        missing = debtor_address_missing(debtor)
        if missing:
            return f"debtor's postal address is incomplete (missing {', '.join(missing)})"
        return ""

    def send(self, action: Action, context: SendContext) -> Sent:
        case = action.case
        today = timezone.localdate(context.now)
        letter = letter_render(
            case=case,
            template=action.template,
            letter_date=today,
            first_letter_on=first_letter_date(case=case, default=today, exclude_action_id=action.pk),
        )
        name = letter_storage_name(action)
        pdf = letter_stored_pdf(name)
        if pdf is None:
            letter_store_pdf(name, letter_pdf(letter.html))
            pdf = letter_stored_pdf(name)
            if pdf is None:
                raise OSError(f"letter PDF {name} could not be stored")
        return Sent(
            to_address=", ".join(debtor_postal_lines(case.debtor))[:254],
            subject=letter.subject[:300],
            body_text=letter.text,
            body_html=letter.html,
            content_hash=hashlib.sha256(pdf).hexdigest(),
            provider_message_id=name,
        )
