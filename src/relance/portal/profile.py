"""Portal: the debtor's contact details and channel preferences (opt out of e-mail or SMS reminders)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from relance.claims.contact import ContactDetails, debtor_contact_update
from relance.core.errors import DomainError
from relance.portal.rendering import render
from relance.portal.views import _case_from_token, _verified
from relance.tenancy.actors import Actor


class ContactForm(forms.Form):
    email = forms.CharField(label=gettext_lazy("E-mail address"), required=False, max_length=254)
    phone = forms.CharField(label=gettext_lazy("Mobile phone"), required=False, max_length=30)
    address_line1 = forms.CharField(label=gettext_lazy("Address"), max_length=200)
    address_line2 = forms.CharField(label=gettext_lazy("Address (continued)"), required=False, max_length=200)
    postcode = forms.CharField(label=gettext_lazy("Postcode"), max_length=12)
    city = forms.CharField(label=gettext_lazy("City"), required=False, max_length=100)
    email_opt_out = forms.BooleanField(label=gettext_lazy("No reminders by e-mail"), required=False)
    sms_opt_out = forms.BooleanField(label=gettext_lazy("No reminders by SMS"), required=False)


@require_http_methods(["GET", "POST"])
def contact(request: HttpRequest, token: str) -> HttpResponseBase:
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    debtor = case.debtor
    initial = {name: getattr(debtor, name) for name in ContactForm.base_fields}
    form = ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            changed = debtor_contact_update(
                debtor=debtor, details=ContactDetails(**form.cleaned_data), actor=Actor.for_debtor(case_id=case.pk)
            )
        except DomainError as exc:
            field = exc.fields.get("field")
            form.add_error(field if field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Your details are saved.") if changed else _("Nothing changed."))
            return redirect("portal:case", token=token)
    return render(
        request,
        "portal/contact.html",
        {"token": token, "case": case, "creditor": case.creditor, "form": form},
        status=422 if form.errors else 200,
    )
