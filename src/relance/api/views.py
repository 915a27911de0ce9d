"""Webhook pages of the back office (served under /bo/webhooks/): endpoints, delivery log, replay.

Creditor admins configure their creditor's endpoints; agency admins any creditor's of the agency;
viewers read the log. The signing secret is shown once, on the page that creates the endpoint.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from relance.api.models import WebhookDelivery
from relance.api.webhooks import (
    EVENT_TYPES,
    webhook_deliveries_for,
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_set_active,
    webhook_endpoints_for,
)
from relance.core.errors import ValidationError
from relance.tenancy.access import actor_of, requires
from relance.tenancy.models import Creditor
from relance.tenancy.permissions import allowed
from relance.tenancy.selectors import creditors_managed_by


class EndpointForm(forms.Form):
    creditor = forms.ModelChoiceField(queryset=Creditor.objects.none(), label=gettext_lazy("Creditor"))
    url = forms.URLField(max_length=500, label=gettext_lazy("URL that receives the events"), assume_scheme="https")
    description = forms.CharField(max_length=200, required=False, label=gettext_lazy("Description"))
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES], widget=forms.CheckboxSelectMultiple, label=gettext_lazy("Events")
    )

    def __init__(self, *args: object, creditors: QuerySet[Creditor], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["creditor"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101
        field.queryset = creditors
        if creditors.count() == 1:
            field.initial = creditors.get().pk
            field.widget = forms.HiddenInput()


NEW_SECRET = "relance_new_webhook_secret"  # noqa: S105 - a session key, not a secret


def _page(request: HttpRequest, form: EndpointForm) -> HttpResponse:
    actor = actor_of(request)
    creditors = creditors_managed_by(actor)
    return render(
        request,
        "api/webhooks.html",
        {
            "form": form,
            "new_secret": request.session.pop(NEW_SECRET, None),
            "endpoints": webhook_endpoints_for(creditors=creditors),
            "deliveries": webhook_deliveries_for(creditors=creditors)[:20],
            "can_manage": allowed(actor, "webhooks.manage"),
        },
    )


@never_cache
@requires("webhooks.view")
@require_GET
def webhooks(request: HttpRequest) -> HttpResponse:
    return _page(request, EndpointForm(creditors=creditors_managed_by(actor_of(request))))


@never_cache
@requires("webhooks.manage")
@require_POST
def endpoint_create(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    form = EndpointForm(request.POST, creditors=creditors_managed_by(actor))
    if form.is_valid():
        try:
            _, secret = webhook_endpoint_create(
                creditor=form.cleaned_data["creditor"],
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                description=form.cleaned_data["description"],
                actor=actor,
            )
        except ValidationError as exc:
            form.add_error(exc.fields.get("field") or None, exc.message)
        else:
            request.session[NEW_SECRET] = secret  # shown once, on the page we redirect to
            return redirect("webhooks:list")
    return _page(request, form)


@requires("webhooks.manage")
@require_POST
def endpoint_active(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    actor = actor_of(request)
    endpoint = webhook_endpoints_for(creditors=creditors_managed_by(actor)).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404
    webhook_endpoint_set_active(endpoint=endpoint, active=request.POST.get("active") == "1", actor=actor)
    return redirect("webhooks:list")


@requires("webhooks.view")
@require_GET
def deliveries(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    qs = webhook_deliveries_for(creditors=creditors_managed_by(actor))
    status = request.GET.get("status", "")
    if status in WebhookDelivery.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "api/deliveries.html",
        {"page": page, "status": status, "statuses": WebhookDelivery.Status.choices},
    )


def _delivery(request: HttpRequest, delivery_id: int) -> WebhookDelivery:
    delivery = webhook_deliveries_for(creditors=creditors_managed_by(actor_of(request))).filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404  # same answer for absent and not yours
    return delivery


@requires("webhooks.view")
@require_GET
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery(request, delivery_id)
    return render(
        request,
        "api/delivery.html",
        {
            "delivery": delivery,
            "attempts": delivery.attempt_log.all(),
            "can_manage": allowed(actor_of(request), "webhooks.manage"),
        },
    )


@requires("webhooks.manage")
@require_POST
def delivery_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    replay = webhook_delivery_replay(delivery=_delivery(request, delivery_id), actor=actor_of(request))
    messages.success(request, _("The event is queued for delivery again."))
    return redirect("webhooks:delivery", delivery_id=replay.pk)
