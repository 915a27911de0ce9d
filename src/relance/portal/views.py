"""Debtor portal: personal link → verification (postcode) → the case → pay (sandbox for now).

No personal data is shown before verification; five failed tries lock the link (the agency can
unlock); a verification lasts 30 minutes after the last page (a signed cookie: ``portal.access``).
"""

from __future__ import annotations

import uuid
from datetime import date
from functools import lru_cache
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models import F
from django.dispatch import receiver
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.cache import get_conditional_response
from django.utils.formats import date_format
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from relance.audit.services import audit_record
from relance.cases.links import portal_token_read
from relance.cases.models import Case
from relance.claims.selectors import EvidenceNotFoundError, evidence_get_for_actor
from relance.core.errors import DomainError
from relance.core.money import Money, MoneyError
from relance.payments.models import Payment
from relance.payments.portal_models import Dispute
from relance.payments.psp import card_payments_enabled
from relance.payments.services import payment_record
from relance.payments.transfer import transfer_details
from relance.portal import access
from relance.portal.links import case_links
from relance.portal.rendering import render
from relance.portal.selectors import portal_case_for_link, portal_case_lines_for_link, portal_case_page_for_link
from relance.tenancy.actors import Actor

_OPEN_PLAN = frozenset({"active", "proposed"})  # an instalment plan the case page links to


class VerifyForm(forms.Form):
    postcode = forms.CharField(label=gettext_lazy("Postcode of your billing address"), max_length=12)


_POSTCODE_LABEL = VerifyForm.base_fields["postcode"].label


class SandboxPayForm(forms.Form):
    amount = forms.CharField(label=gettext_lazy("Amount to pay"), max_length=20)


def _case_from_token(token: str, *, lean: bool = False) -> Case:
    """The case of a signed link, with its creditor, agency and debtor; ``lean``: only the fields the
    landing and case pages show, in one fixed query (``portal_case_for_link``)."""
    read = portal_token_read(token)
    if read is None:
        raise Http404("link invalid or expired")
    case_id, reference = read
    if lean:
        case = portal_case_for_link(case_id=case_id, reference=reference)
    else:
        # The one choke point for case reads (invariant 6): the debtor's actor sees this case only.
        visible = Case.objects.visible_to(Actor.for_debtor(case_id=case_id))
        case = visible.select_related("creditor__agency", "debtor").filter(pk=case_id, reference=reference).first()
    if case is None:
        raise Http404("link invalid or expired")
    return case


def _verified(request: HttpRequest, case: Case) -> bool:
    return _verified_for(request, case.pk)


def _verified_for(request: HttpRequest, case_id: int) -> bool:
    """Whether this browser's signed cookie says it verified ``case_id`` (``portal.access``): no query."""
    return access.is_verified(request, case_id)


def _link_verified(request: HttpRequest, token: str) -> tuple[int, str] | None:
    """The (case id, reference) of a valid link whose case this browser has verified; ``None`` if the
    link is valid but not verified here (404 if the link is invalid or names no case, as before)."""
    read = portal_token_read(token)
    if read is None:
        raise Http404("link invalid or expired")
    if not _verified_for(request, read[0]):
        _case_from_token(token, lean=True)  # 404 for a link to no case, whether verified or not
        return None
    return read


def _normalise(postcode: str) -> str:
    return "".join(postcode.split()).upper()


@require_http_methods(["GET", "POST"])
def entry(request: HttpRequest, token: str) -> HttpResponse:
    case = _case_from_token(token, lean=True)
    if _verified(request, case):
        return redirect("portal:case", token=token)
    locked = case.portal_failed_attempts >= settings.RELANCE_PORTAL_MAX_FAILED_VERIFICATIONS
    # A GET shows the empty field: no form instance to build (its fields are deep-copied) for that.
    form = VerifyForm(request.POST) if request.method == "POST" else None
    if form is not None and not locked and form.is_valid():
        ok = _normalise(form.cleaned_data["postcode"]) == _normalise(case.debtor.postcode)
        with transaction.atomic():
            actor = Actor.for_debtor(case_id=case.pk)
            if ok:
                Case.objects.filter(pk=case.pk).update(portal_failed_attempts=0)
                audit_record(actor=actor, verb="portal.verified", subject=case)
            else:
                # F(): concurrent wrong guesses each count (no lost update past the lockout).
                Case.objects.filter(pk=case.pk).update(portal_failed_attempts=F("portal_failed_attempts") + 1)
                audit_record(actor=actor, verb="portal.verification_failed", subject=case)
        if ok:
            access.grant(request, case.pk)  # the response carries the newly signed cookie
            return redirect("portal:case", token=token)
        case.portal_failed_attempts += 1
        locked = case.portal_failed_attempts >= settings.RELANCE_PORTAL_MAX_FAILED_VERIFICATIONS
        form.add_error("postcode", _("This postcode does not match our records."))
    errors = form.errors.get("postcode") if form is not None else None
    return render(
        request,
        "portal/verify.html",
        {
            "postcode_label": _POSTCODE_LABEL,
            "postcode_error": errors[0] if errors else "",
            "creditor": case.creditor,
            "locked": locked,
            "tries_left": max(0, settings.RELANCE_PORTAL_MAX_FAILED_VERIFICATIONS - case.portal_failed_attempts),
        },
        status=403 if locked else 200,
    )


def _sandbox_enabled() -> bool:
    return bool(settings.RELANCE_SANDBOX_PAYMENTS) and not settings.PRODUCTION


@lru_cache(maxsize=4096)
def _date_text(value: date | None, language: str | None) -> str:
    """``{{ value|date:"SHORT_DATE_FORMAT" }}`` in the active language, remembered per process (a pure
    function of the date, the language and the format settings; dropped when a test changes a setting)."""
    del language  # the cache key: date_format() reads the active language itself
    return "" if value is None else date_format(value, "SHORT_DATE_FORMAT")


@receiver(setting_changed)
def _forget_dates(**kwargs: Any) -> None:
    _date_text.cache_clear()


_CASE_STATUS_LABELS = dict(Case._meta.get_field("status").flatchoices)


def _status_label(status: str) -> str:
    """``case.get_status_display()`` without rebuilding the choices' dict on every page."""
    return str(_CASE_STATUS_LABELS.get(status, status))


@lru_cache(maxsize=4096)
def _money_text(minor: int, currency: str, locale: str) -> str:
    """``Money.format`` (Babel's CLDR formatting, a pure function of its arguments), remembered per process."""
    return Money(minor, currency).format(locale)


def _locale(request: HttpRequest) -> str:
    return "en_GB" if (request.LANGUAGE_CODE or "fr").startswith("en") else "fr_FR"


@require_http_methods(["GET"])
def case_page(request: HttpRequest, token: str) -> HttpResponse:
    read = _link_verified(request, token)  # the cookie first: its case id is in the signed link
    if read is None:
        return redirect("portal:entry", token=token)
    # The debtor's own case (invariant 6), with everything every section shows, in one statement.
    page = portal_case_page_for_link(case_id=read[0], reference=read[1])
    if page is None:
        raise Http404("link invalid or expired")
    case = page.case
    locale = _locale(request)
    language = get_language()
    currency = case.currency
    outstanding = Money(page.outstanding_minor, currency)
    agency = case.creditor.agency

    def money(minor: int) -> str:
        return _money_text(minor, currency, locale)

    # FR-COL-02: the agency's trust account, and only when its IBAN is valid; RF reference of the case.
    transfer = transfer_details(
        holder=agency.legal_name, iban=agency.trust_iban, amount=outstanding, case_reference=case.reference
    )
    credited = page.credited_minor
    card_enabled = card_payments_enabled()
    sandbox = _sandbox_enabled()  # never in production: no sandbox form to build there
    return render(
        request,
        "portal/case.html",
        {
            "token": token,
            "links": case_links(token),
            "case": case,
            "status_label": _status_label(case.status),
            "creditor": case.creditor,
            "agency": agency,
            "claims": [
                {
                    "claim": line.claim,
                    "invoice_date": _date_text(line.claim.invoice_date, language),
                    "due_date": _date_text(line.claim.due_date, language),
                    "original": money(line.claim.original_amount_minor),
                    "paid": money(line.paid_minor),
                    "outstanding": money(line.outstanding_minor),
                }
                for line in page.lines
            ],
            "outstanding": money(outstanding.minor),
            "outstanding_minor": outstanding.minor,
            "outstanding_decimal": outstanding.to_decimal(),
            "payments": [(p, money(p.amount_minor)) for p in page.payments],
            "evidence": page.evidence,
            "pay_form": SandboxPayForm(initial={"amount": outstanding.to_decimal()}) if sandbox else None,
            "sandbox": sandbox,
            "transfer": transfer,
            "transfer_amount": money(transfer.amount.minor) if transfer else "",
            "transfer_qr_version": transfer.qr_etag[:16] if transfer else "",
            "card_on": card_enabled,
            # The arrangements card: plan, promise and hardship links.
            "plan": page.plan,
            "plan_open": page.plan is not None and page.plan.status in _OPEN_PLAN,
            "promise": page.promise,
            "hidden": page.arrangements_hidden,
            # The sections below: card payment, disputes, returns, receipts, contact history.
            "card_enabled": card_enabled and outstanding.minor > 0,
            "can_dispute": not case.is_closed and not any(d.status == Dispute.Status.OPEN for d in page.disputes),
            "can_return": bool(page.returnable),
            "disputes": page.disputes,
            "returns": page.returns,
            "receipts": [(r, money(r.payment.amount_minor)) for r in page.receipts],
            "reversals": [(rv, _money_text(rv.amount_minor, rv.currency, locale)) for rv in page.reversals],
            "split": {
                "principal": money(page.principal_minor),
                "interest": money(0),
                "other": money(0),
                "credited": money(credited) if credited else "",
                "paid": money(page.principal_minor - credited - outstanding.minor),
                "left": money(outstanding.minor),
            },
            "history": page.history,
        },
    )


@require_http_methods(["GET", "HEAD"])
def transfer_qr(request: HttpRequest, token: str) -> HttpResponse:
    """The EPC QR code of the case page, as its own image: drawn once per browser, not in every page.

    Same access as the case page (the verification of THIS case only); the image carries the same
    details as the page (the agency's trust account, what is left to pay, the case's RF reference). Its
    ETag is a digest of those details, and the page links it with that digest in the query string, so a
    browser keeps it (privately) until the amount, the account or the reference changes.
    """
    read = _link_verified(request, token)
    if read is None:
        raise PermissionDenied("not verified for this case")
    found = portal_case_lines_for_link(case_id=read[0], reference=read[1])
    if found is None:
        raise Http404("link invalid or expired")
    case, lines = found
    agency = case.creditor.agency
    transfer = transfer_details(
        holder=agency.legal_name,
        iban=agency.trust_iban,
        amount=Money(sum(line.outstanding_minor for line in lines), case.currency),
        case_reference=case.reference,
    )
    if transfer is None:
        raise Http404("no transfer to offer")
    etag = f'"{transfer.qr_etag}"'
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        transfer.qr_svg(), content_type="image/svg+xml"
    )
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = f"private, max-age={access.VERIFIED_SECONDS}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@require_http_methods(["GET"])
def evidence_download(request: HttpRequest, token: str, evidence_id: int) -> HttpResponseBase:
    """A file of evidence of the debtor's own case, only after verification; audited."""
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    actor = Actor.for_debtor(case_id=case.pk)
    try:
        evidence = evidence_get_for_actor(actor=actor, evidence_id=evidence_id)
    except EvidenceNotFoundError:
        raise Http404("no such document") from None
    with transaction.atomic():
        audit_record(
            actor=actor,
            verb="evidence.downloaded",
            subject=evidence.claim,
            data={"evidence": evidence.pk, "kind": evidence.kind, "sha256": evidence.sha256},
        )
    response = FileResponse(
        evidence.file.open("rb"),
        as_attachment=True,
        filename=evidence.original_filename,
        content_type=evidence.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
def pay_sandbox(request: HttpRequest, token: str) -> HttpResponse:
    """Sandbox payment: records a payment exactly like a PSP webhook would, with no real money."""
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    if not _sandbox_enabled():
        # Never in production: a sandbox payment records money that was not received.
        raise Http404("sandbox payments are disabled")
    form = SandboxPayForm(request.POST)
    if form.is_valid():
        try:
            amount = Money.parse(form.cleaned_data["amount"], case.currency)
            payment_record(
                case=case,
                amount=amount,
                method=Payment.Method.SANDBOX,
                external_ref=f"sandbox-{uuid.uuid4()}",
                actor=Actor.for_debtor(case_id=case.pk),
            )
        except (MoneyError, DomainError) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _("Thank you: your payment of %(amount)s is recorded.") % {"amount": amount.format(_locale(request))},
            )
    else:
        messages.error(request, _("Please enter an amount."))
    return redirect("portal:case", token=token)
