"""API keys page: create (the secret is shown once), list, revoke. Issue 6.

Creditor admins manage their creditor's keys; agency admins any creditor's of the agency. Only a
SHA-256 of each key is stored (``tenancy.ApiKey``); scopes are enforced by the API's authentication.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from relance.tenancy.access import actor_of, requires
from relance.tenancy.models import Creditor
from relance.tenancy.permissions import API_SCOPES
from relance.tenancy.selectors import api_key_list, creditors_managed_by
from relance.tenancy.services import api_key_create, api_key_revoke

NEW_SECRET = "relance_new_api_key"  # noqa: S105 - a session key, not a secret

SCOPE_LABELS = {
    "read": gettext_lazy("read — read cases, imports and mappings"),
    "write": gettext_lazy("write — act on cases"),
    "intake": gettext_lazy("intake — place claims, upload files and evidence"),
}


class ApiKeyForm(forms.Form):
    creditor = forms.ModelChoiceField(queryset=Creditor.objects.none(), label=gettext_lazy("Creditor"))
    name = forms.CharField(max_length=100, label=gettext_lazy("Name (what uses this key)"))
    scopes = forms.MultipleChoiceField(
        choices=[(s, SCOPE_LABELS.get(s, s)) for s in API_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Scopes"),
    )

    def __init__(self, *args: object, creditors: QuerySet[Creditor], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["creditor"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101
        field.queryset = creditors
        if creditors.count() == 1:
            field.initial = creditors.get().pk
            field.widget = forms.HiddenInput()


@never_cache
@requires("api_keys.manage")
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    form = ApiKeyForm(request.POST or None, creditors=creditors_managed_by(actor))
    if request.method == "POST" and form.is_valid():
        _, secret = api_key_create(
            creditor=form.cleaned_data["creditor"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            actor=actor,
        )
        # Post/redirect/get: the secret rides in the session to the next page, once (a reload creates nothing).
        request.session[NEW_SECRET] = secret
        return redirect("backoffice:api_keys")
    return render(
        request,
        "backoffice/api_keys.html",
        {"form": form, "keys": api_key_list(actor=actor), "new_secret": request.session.pop(NEW_SECRET, None)},
    )


@requires("api_keys.manage")
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    actor = actor_of(request)
    key = api_key_list(actor=actor).filter(pk=key_id).first()
    if key is None:
        raise Http404  # same answer for absent and not yours
    api_key_revoke(key=key, actor=actor)
    messages.success(request, _("Key %(prefix)s… is revoked.") % {"prefix": key.key_prefix})
    return redirect("backoffice:api_keys")
