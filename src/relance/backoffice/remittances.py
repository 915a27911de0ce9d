"""Remittance pages: agency staff list remittances and payout files; creditors download their own
statements and fee invoices (issue 5 and 6). Every download is audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.views.decorators.http import require_GET, require_POST

from relance.audit.services import audit_record
from relance.backoffice.views import _actor
from relance.core.errors import NotFoundError
from relance.core.money import Money
from relance.ledger.documents import fee_invoice_html, html_pdf, remittance_statement_html
from relance.ledger.selectors import (
    fee_invoice_get_for_actor,
    payout_batch_get_for_actor,
    payout_batch_list,
    remittance_get_for_actor,
    remittance_list,
)
from relance.payments.remittances import payout_batch_paid
from relance.tenancy.access import requires
from relance.tenancy.permissions import allowed

T = TypeVar("T")


def _download(body: bytes, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _lang() -> str:
    return "en-gb" if (translation.get_language() or "fr").lower().startswith("en") else "fr"


@requires("remittances.view")
@require_GET
def remittances(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    rows = [
        (
            r,
            Money(r.collected_minor, r.currency),
            Money(r.commission_minor + r.vat_minor, r.currency),
            Money(r.transfer_minor, r.currency),
        )
        for r in remittance_list(actor=actor)[:500]
    ]
    batches = [(b, Money(b.control_sum_minor, b.currency)) for b in payout_batch_list(actor=actor)[:100]]
    return render(
        request,
        "backoffice/remittances.html",
        {"rows": rows, "batches": batches, "can_confirm": _can_confirm(request)},
    )


def _found(get: Callable[..., T], **kwargs: Any) -> T:
    """The object the actor may see, or 404 (absent and not yours answer alike)."""
    try:
        return get(**kwargs)
    except NotFoundError:
        raise Http404 from None


def _audited_download(
    request: HttpRequest, subject: Model, verb: str, body: bytes, *, filename: str, content_type: str
) -> HttpResponse:
    """Every download of a statement, an invoice or a payout file leaves an access audit event."""
    with transaction.atomic():
        audit_record(actor=_actor(request), verb=verb, subject=subject)
    return _download(body, filename=filename, content_type=content_type)


@requires("remittances.view")
@require_GET
def remittance_statement(request: HttpRequest, remittance_id: int) -> HttpResponse:
    remittance = _found(remittance_get_for_actor, actor=_actor(request), remittance_id=remittance_id)
    pdf = html_pdf(remittance_statement_html(remittance, lang=_lang()))
    return _audited_download(
        request,
        remittance,
        "remittance.statement_downloaded",
        pdf,
        filename=f"releve-{remittance.end_to_end_id}.pdf",
        content_type="application/pdf",
    )


@requires("remittances.view")
@require_GET
def remittance_invoice(request: HttpRequest, remittance_id: int) -> HttpResponse:
    invoice = _found(fee_invoice_get_for_actor, actor=_actor(request), remittance_id=remittance_id)
    pdf = html_pdf(fee_invoice_html(invoice, lang=_lang()))
    return _audited_download(
        request,
        invoice,
        "fee_invoice.downloaded",
        pdf,
        filename=f"facture-{invoice.number}.pdf",
        content_type="application/pdf",
    )


@requires("remittances.files")
@require_GET
def payout_file(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _found(payout_batch_get_for_actor, actor=_actor(request), batch_id=batch_id)
    return _audited_download(
        request,
        batch,
        "payout_batch.downloaded",
        batch.xml.encode("utf-8"),
        filename=f"{batch.msg_id}.xml",
        content_type="application/xml",
    )


def _can_confirm(request: HttpRequest) -> bool:
    return allowed(_actor(request), "remittances.manage")  # the same matrix row as the button's view


@requires("remittances.manage")
@require_POST
def payout_file_paid(request: HttpRequest, batch_id: int) -> HttpResponse:
    """An agency admin or supervisor confirms the bank executed the file (posts ``remittance.paid``)."""
    actor = _actor(request)  # @requires checked the role (the permission matrix)
    batch = _found(payout_batch_get_for_actor, actor=actor, batch_id=batch_id)
    payout_batch_paid(batch=batch, paid_on=timezone.localdate(), actor=actor)
    return redirect("backoffice:remittances")
