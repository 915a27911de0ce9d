"""Rendering a message for one case: the words, the amounts and the portal link.

Templates live in ``comms/templates/comms/<channel>/<template>.<lang>.(subject|txt|html)``.
Mode B messages carry the R124-4 mentions (FR-COL-05..07); every rendered text is checked against
the forbidden wording of FR-COL-15/17 before it can leave.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import translation

from relance.cases.links import portal_url
from relance.cases.models import Case
from relance.cases.selectors import case_claim_balances
from relance.compliance import fr
from relance.core.errors import ValidationError
from relance.core.money import Money
from relance.tenancy.models import Creditor


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256("\x1f".join((self.subject, self.text, self.html)).encode()).hexdigest()


def _language(case: Case) -> str:
    return "en" if case.debtor.language.startswith("en") else "fr"


def render_message(*, case: Case, channel: str, template: str) -> Rendered:
    lang = _language(case)
    locale = "en_GB" if lang == "en" else "fr_FR"
    balances = case_claim_balances(case=case)
    outstanding = Money(sum(b.outstanding_minor for b in balances), case.currency)
    creditor = case.creditor
    context = {
        "case": case,
        "debtor": case.debtor,
        "creditor": creditor,
        "agency": creditor.agency,
        "agency_mode": creditor.mode == Creditor.Mode.AGENCY,
        "claims": [
            {
                "invoice_number": b.claim.invoice_number,
                "invoice_date": b.claim.invoice_date,
                "due_date": b.claim.due_date,
                "original": Money(b.claim.original_amount_minor, b.claim.currency).format(locale),
                "outstanding": Money(b.outstanding_minor, b.claim.currency).format(locale),
            }
            for b in balances
        ],
        "outstanding": outstanding.format(locale),
        "zero": Money.zero(case.currency).format(locale),
        "portal_url": portal_url(case_id=case.pk, reference=case.reference),
        "l111_8": fr.L111_8_PARAGRAPHS,
        "amicable_statement": fr.AMICABLE_COLLECTION_STATEMENT,
    }
    base = f"comms/{channel}/{template}.{lang}"
    with translation.override(lang):
        subject = " ".join(render_to_string(f"{base}.subject", context).split())
        text = render_to_string(f"{base}.txt", context).strip() + "\n"
        html = render_to_string(f"{base}.html", context)
    # The L111-8 paragraphs are mandated verbatim (FR-COL-07) and may name what the rest may not.
    own_words = text
    for paragraph in fr.L111_8_PARAGRAPHS:
        own_words = own_words.replace(paragraph, "")
    bad = fr.forbidden_words_in(subject + "\n" + own_words)
    if bad:
        raise ValidationError(
            f"Template {base} uses forbidden wording (FR-COL-15/17): {', '.join(bad)}.", template=base
        )
    return Rendered(subject=subject, text=text, html=html)
