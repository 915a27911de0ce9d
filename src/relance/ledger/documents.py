"""Remittance statements and fee invoices as HTML and PDF (WeasyPrint), from stored figures only.

Nothing is recomputed here: a statement or an invoice shows what the run wrote, so the document
downloaded in ten years is the one issued (retention: 10 years, DOMAIN-RULES §4.4).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string
from django.utils import translation

from relance.core.money import Money
from relance.ledger.models import FeeInvoice, Remittance

LANGS = ("fr", "en-gb")
_LOCALES = {"fr": "fr_FR", "en-gb": "en_GB"}


def _lang(lang: str) -> str:
    return lang if lang in LANGS else "fr"


def _fmt(minor: int, currency: str, lang: str) -> str:
    return Money(minor, currency).format(_LOCALES[lang])


def _rate(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


def _group_iban(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def remittance_statement_html(remittance: Remittance, *, lang: str = "fr") -> str:
    """The relevé de reversement (FR-COL-14 [D]): per case collected, rate, commission; totals."""
    lang = _lang(lang)
    cur = remittance.currency
    invoice = FeeInvoice.objects.filter(remittance=remittance).first()
    context: dict[str, Any] = {
        "lang": lang,
        "r": remittance,
        "agency": remittance.agency,
        "creditor": remittance.creditor,
        "invoice": invoice,
        "iban": _group_iban(remittance.payee_iban),
        "lines": [
            {
                "reference": line.reference,
                "creditor_refs": line.creditor_refs,
                "segment": line.segment.upper(),
                "age_days": line.age_days,
                "collected": _fmt(line.collected_minor, cur, lang),
                "rate": _rate(line.rate),
                "commission": _fmt(line.commission_minor, cur, lang),
                "net": _fmt(line.collected_minor - line.commission_minor, cur, lang),
                "minimum": line.minimum_applied,
            }
            for line in remittance.lines.order_by("reference")
        ],
        "vat_rate": _rate(remittance.vat_rate),
        "collected": _fmt(remittance.collected_minor, cur, lang),
        "commission": _fmt(remittance.commission_minor, cur, lang),
        "vat": _fmt(remittance.vat_minor, cur, lang),
        "ttc": _fmt(remittance.commission_minor + remittance.vat_minor, cur, lang),
        "deducted": _fmt(remittance.deducted_minor, cur, lang),
        "transfer": _fmt(remittance.transfer_minor, cur, lang),
        "receivable": _fmt(remittance.receivable_minor, cur, lang),
    }
    with translation.override(lang):
        return render_to_string("ledger/remittance_statement.html", context)


def fee_invoice_html(invoice: FeeInvoice, *, lang: str = "fr") -> str:
    """The success-fee invoice with the French mentions (CGI art. 242 nonies A; C. com. L441-9/10)."""
    lang = _lang(lang)
    cur = invoice.currency
    remittance = invoice.remittance
    context: dict[str, Any] = {
        "lang": lang,
        "inv": invoice,
        "seller": invoice.seller,
        "buyer": invoice.buyer,
        "cases": remittance.lines.count(),
        "collected": _fmt(remittance.collected_minor, cur, lang),
        "vat_rate": _rate(invoice.vat_rate),
        "ht": _fmt(invoice.amount_ht_minor, cur, lang),
        "vat": _fmt(invoice.vat_minor, cur, lang),
        "ttc": _fmt(invoice.amount_ttc_minor, cur, lang),
        "deducted": _fmt(invoice.deducted_minor, cur, lang),
        "due": _fmt(invoice.due_minor, cur, lang),
        "due_minor": invoice.due_minor,
    }
    with translation.override(lang):
        return render_to_string("ledger/fee_invoice.html", context)


def html_pdf(html: str) -> bytes:
    """WeasyPrint: HTML → PDF bytes, with system fonts only (nothing is downloaded)."""
    from weasyprint import HTML  # noqa: PLC0415 - loads Pango; only document downloads need it

    pdf = HTML(string=html, base_url=None).write_pdf()
    if not isinstance(pdf, bytes):
        raise TypeError("WeasyPrint returned no PDF")
    return pdf
