"""The auditor's search of access events: who read which debtor's data, when, and why (issue 6)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from relance.audit.selectors import access_events_search
from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.tenancy.access import actor_of, requires
from relance.tenancy.models import User


class AccessSearchForm(forms.Form):
    user = forms.CharField(required=False, label=_("User (username)"))
    case = forms.CharField(required=False, label=_("Case reference"))
    since = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label=_("To (inclusive)"), widget=forms.DateInput(attrs={"type": "date"}))


def _day(value: object, *, plus: int = 0) -> datetime | None:
    if value is None:
        return None
    return timezone.make_aware(datetime.combine(value, time.min)) + timedelta(days=plus)  # type: ignore[arg-type]


@requires("audit.search")
@require_GET
def access_search(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    form = AccessSearchForm(request.GET or None)
    events = access_events_search()
    if form.is_valid():
        data = form.cleaned_data
        actors = None
        if data["user"]:
            users = User.objects.filter(username__iexact=data["user"].strip())
            actors = [f"{'creditor' if u.is_creditor_user else 'staff'}:{u.pk}" for u in users]
        subjects = None
        if data["case"]:
            case = Case.objects.filter(reference__iexact=data["case"].strip()).first()
            subjects = (
                {"cases.case": [case.pk], "claims.claim": list(case.claims.values_list("pk", flat=True))}
                if case
                else {}
            )
        events = access_events_search(
            actors=actors, subjects=subjects, since=_day(data["since"]), until=_day(data["until"], plus=1)
        )
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    labels = {e.actor for e in page}
    ids = [int(label.split(":", 1)[1]) for label in labels if label.split(":", 1)[1].isdigit()]
    names = {u.pk: u.username for u in User.objects.filter(pk__in=ids)}
    rows = [
        (e, names.get(int(e.actor.split(":", 1)[1]) if e.actor.split(":", 1)[1].isdigit() else -1, e.actor))
        for e in page
    ]
    with transaction.atomic():  # the auditor's own searches are on the record too
        audit_record(
            actor=actor, verb="audit.searched", subject_type="audit.auditevent", data=dict(request.GET.items())
        )
    return render(request, "backoffice/access_search.html", {"form": form, "page": page, "rows": rows})
