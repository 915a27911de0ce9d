"""Portal: pay by card through the configured PSP (in full or in part), and download receipts.

The debtor chooses the amount (the whole balance by default), we open a payment page at the PSP and
show a link to it: the debtor leaves for the provider's page (card details never reach us) and comes
back to a "being confirmed" page. The payment itself is recorded only from the provider's signed
webhook (``payments.webhooks``), never from the return URL, which anyone could open.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from relance.cases.selectors import case_outstanding_minor
from relance.core.errors import DomainError
from relance.core.money import Money, MoneyError
from relance.payments.card import card_checkout_start
from relance.payments.models import PspCheckout, Receipt
from relance.payments.psp import card_payments_enabled, psp_adapter
from relance.payments.receipts import receipt_pdf
from relance.portal.rendering import render
from relance.portal.views import _case_from_token, _locale, _verified
from relance.tenancy.actors import Actor


class CardPayForm(forms.Form):
    amount = forms.CharField(label=gettext_lazy("Amount to pay by card"), max_length=20)


PROVIDER_NAMES = {"stripe": "Stripe", "mollie": "Mollie"}


def _suggested(request: HttpRequest, outstanding: Money) -> Money:
    """The amount to offer: an instalment passed in the link (``?amount=<minor>&minor=1``), else the balance."""
    raw = request.GET.get("amount", "")
    if request.GET.get("minor") == "1" and raw.isdigit() and 0 < int(raw) <= outstanding.minor:
        return Money(int(raw), outstanding.currency)
    return outstanding


@require_http_methods(["GET", "POST"])
def card_pay(request: HttpRequest, token: str) -> HttpResponseBase:
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    if not card_payments_enabled():
        raise Http404("card payments are not configured")
    outstanding = Money(case_outstanding_minor(case=case), case.currency)
    if outstanding.minor <= 0:
        return redirect("portal:case", token=token)
    form = CardPayForm(request.POST or None, initial={"amount": _suggested(request, outstanding).to_decimal()})
    if request.method == "POST" and form.is_valid():
        try:
            amount = Money.parse(form.cleaned_data["amount"], case.currency)
            checkout = card_checkout_start(
                case=case,
                amount=amount,
                adapter=psp_adapter(),
                success_url=request.build_absolute_uri(reverse("portal:card_return", kwargs={"token": token})),
                cancel_url=request.build_absolute_uri(reverse("portal:case", kwargs={"token": token})),
                webhook_url=f"{settings.PUBLIC_BASE_URL}{reverse('psp_hooks:' + settings.RELANCE_CARD_PSP)}",
                locale=request.LANGUAGE_CODE or "fr",
                actor=Actor.for_debtor(case_id=case.pk),
            )
        except MoneyError:
            form.add_error("amount", _("Enter an amount such as 25.00."))
        except DomainError as exc:
            if exc.code == "payment.amount":
                form.add_error(
                    "amount",
                    _("Enter an amount between %(min)s and %(max)s.")
                    % {
                        "min": Money(min(100, outstanding.minor), case.currency).format(_locale(request)),
                        "max": outstanding.format(_locale(request)),
                    },
                )
            else:
                form.add_error(None, _("The payment service is not available right now. Please try again later."))
        else:
            return redirect("portal:card_go", token=token, checkout_id=checkout.pk)
    return render(
        request,
        "portal/pay_card.html",
        {
            "token": token,
            "case": case,
            "creditor": case.creditor,
            "form": form,
            "outstanding": outstanding.format(_locale(request)),
            "provider": PROVIDER_NAMES.get(settings.RELANCE_CARD_PSP, settings.RELANCE_CARD_PSP),
        },
        status=422 if form.errors else 200,
    )


@require_GET
def card_go(request: HttpRequest, token: str, checkout_id: int) -> HttpResponse:
    """The link to the provider's page (a plain link: the CSP allows forms to post to us only)."""
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    checkout = PspCheckout.objects.filter(pk=checkout_id, case=case).first()
    if checkout is None:
        raise Http404("no such payment page")
    return render(
        request,
        "portal/pay_card_go.html",
        {
            "token": token,
            "case": case,
            "creditor": case.creditor,
            "checkout": checkout,
            "amount": Money(checkout.amount_minor, checkout.currency).format(_locale(request)),
            "provider": PROVIDER_NAMES.get(checkout.provider, checkout.provider),
        },
    )


@require_GET
def card_return(request: HttpRequest, token: str) -> HttpResponse:
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    messages.info(
        request, _("Thank you. Your card payment is being confirmed by the payment provider; it appears here shortly.")
    )
    return redirect("portal:case", token=token)


@require_GET
def receipt_download(request: HttpRequest, token: str, receipt_id: int) -> HttpResponse:
    """The receipt (quittance) of one payment of this case, as PDF (FR-COL-13)."""
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    receipt = Receipt.objects.filter(pk=receipt_id, payment__case=case).select_related("payment__case").first()
    if receipt is None:
        raise Http404("no such receipt")
    response = HttpResponse(receipt_pdf(receipt), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{receipt.number}.pdf"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
