"""Receipts (quittances): one for every payment (R124-6 al. 1, FR-COL-13).

The receipt's facts — number, date, payer, amount, method, allocation per invoice, overpayment,
remaining balance, case reference, collector identity — are fixed in the transaction that records the
payment (``receipt_issue``). The PDF is rendered from them with WeasyPrint, stored once with its
SHA-256 (``receipt_pdf``), downloadable in the portal and e-mailed to the debtor after commit
(``receipt_deliver``). Simulated payments of the demo world get a receipt but no e-mail.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from relance.cases.selectors import ClaimBalance
from relance.core.money import Money
from relance.ledger.allocate import Allocation
from relance.payments.portal_models import Receipt

log = logging.getLogger("relance.payments")


def receipt_number(payment_id: int, when: datetime) -> str:
    """``Q-2026-00000042``: the year it was issued and the payment's id (unique, never reused)."""
    return f"Q-{when.year}-{payment_id:08d}"


def receipt_issue(
    *,
    payment_id: int,
    received_at: datetime,
    balances: Sequence[ClaimBalance],
    allocations: Sequence[Allocation],
    overpayment_minor: int,
    remaining_minor: int,
) -> Receipt:
    """Fix the receipt's facts (inside the payment's transaction)."""
    by_key = {b.claim.ledger_key: b.claim for b in balances}
    lines = [
        {
            "claim": by_key[a.key].pk,
            "invoice": by_key[a.key].invoice_number,
            # C. civ. 1343-1: interest first, then principal; no interest or fees are charged yet.
            "interest": 0,
            "fees": 0,
            "principal": a.amount,
        }
        for a in allocations
        if a.key in by_key
    ]
    return Receipt.objects.create(
        payment_id=payment_id,
        number=receipt_number(payment_id, received_at),
        issued_at=timezone.now(),
        allocation=lines,
        overpayment_minor=overpayment_minor,
        remaining_minor=remaining_minor,
    )


def receipt_context(receipt: Receipt, *, locale: str = "fr_FR") -> dict[str, object]:
    payment = receipt.payment
    case = payment.case
    cur = payment.currency
    return {
        "receipt": receipt,
        "payment": payment,
        "case": case,
        "debtor": case.debtor,
        "creditor": case.creditor,
        "agency": case.creditor.agency,
        "amount": Money(payment.amount_minor, cur).format(locale),
        "lines": [
            {
                "invoice": line["invoice"],
                "interest": Money(int(line.get("interest", 0)), cur).format(locale),
                "fees": Money(int(line.get("fees", 0)), cur).format(locale),
                "principal": Money(int(line["principal"]), cur).format(locale),
            }
            for line in receipt.allocation
        ],
        "overpayment": Money(receipt.overpayment_minor, cur).format(locale) if receipt.overpayment_minor else "",
        "remaining": Money(receipt.remaining_minor, cur).format(locale),
    }


def _render_pdf(receipt: Receipt) -> bytes:
    from weasyprint import HTML  # noqa: PLC0415 - loads Pango; only receipts and letters need it

    language = receipt.payment.case.debtor.language or "fr"
    with translation.override(language):
        html = render_to_string(
            "payments/receipt.html", receipt_context(receipt, locale="fr_FR" if language.startswith("fr") else "en_GB")
        )
    pdf = HTML(string=html, base_url=None).write_pdf()
    if not isinstance(pdf, bytes):
        raise TypeError("WeasyPrint returned no PDF")
    return pdf


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt's PDF: rendered and stored (with its SHA-256) the first time, read back afterwards."""
    if receipt.pdf:
        with receipt.pdf.open("rb") as fh:
            return fh.read()
    pdf = _render_pdf(receipt)
    digest = hashlib.sha256(pdf).hexdigest()
    receipt.pdf.save(f"{receipt.number}-{digest[:12]}.pdf", ContentFile(pdf), save=False)
    receipt.pdf_sha256 = digest
    # Only the first render is kept: a concurrent one that lost leaves its file unused.
    Receipt.objects.filter(pk=receipt.pk, pdf="").update(pdf=receipt.pdf.name, pdf_sha256=digest)
    return pdf


def receipt_deliver(receipt_id: int) -> bool:
    """E-mail the receipt PDF to the debtor (after commit); ``False`` when there is nobody to send to."""
    receipt = Receipt.objects.select_related("payment__case__debtor", "payment__case__creditor__agency").get(
        pk=receipt_id
    )
    debtor = receipt.payment.case.debtor
    if receipt.emailed_at is not None or not debtor.email or debtor.email_bounced:
        return False
    pdf = receipt_pdf(receipt)
    creditor = receipt.payment.case.creditor
    with translation.override(debtor.language or "fr"):
        context = receipt_context(receipt, locale="fr_FR" if (debtor.language or "fr").startswith("fr") else "en_GB")
        message = EmailMessage(
            subject=_("Receipt %(number)s for your payment of %(amount)s")
            % {"number": receipt.number, "amount": context["amount"]},
            body=render_to_string("payments/receipt_email.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[debtor.email],
            reply_to=[creditor.support_email] if creditor.support_email else None,
            headers={"X-Relance-Receipt": receipt.number},
        )
        message.attach(f"{receipt.number}.pdf", pdf, "application/pdf")
    message.send()
    Receipt.objects.filter(pk=receipt.pk).update(emailed_at=timezone.now())
    return True


def receipt_deliver_on_commit(receipt_id: int) -> None:
    def deliver() -> None:
        try:
            receipt_deliver(receipt_id)
        except Exception:  # an SMTP failure must not undo a recorded payment; it is logged
            log.exception("receipt %s could not be e-mailed", receipt_id)

    transaction.on_commit(deliver)


def receipts_deliver_pending(*, limit: int = 100, older_than: timedelta = timedelta(minutes=10)) -> int:
    """E-mail receipts whose e-mail after commit did not go (SMTP down, crash): the scheduler's sweep.

    Only receipts older than ``older_than`` (the after-commit send had its chance), of payments made
    to us (not simulated, not reported by the creditor), for debtors with a working address.
    """
    from relance.payments.models import Payment  # noqa: PLC0415 - models import this module's neighbours

    due = (
        Receipt.objects.filter(emailed_at=None, issued_at__lt=timezone.now() - older_than)
        .exclude(payment__method__in=[Payment.Method.SIMULATED, Payment.Method.CREDITOR_REPORTED])
        .exclude(payment__case__debtor__email="")
        .filter(payment__case__debtor__email_bounced=False)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for receipt_id in list(due):
        try:
            sent += receipt_deliver(receipt_id)
        except Exception:
            log.exception("receipt %s could not be e-mailed", receipt_id)
    return sent
