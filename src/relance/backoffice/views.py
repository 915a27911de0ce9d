"""Back office (agency staff) and creditor portal: one set of pages, scoped by the actor.

Every page that shows a debtor's personal data records an access audit event (invariant 6).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from relance.audit.selectors import audit_events_for
from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.selectors import CaseNotFoundError, case_claim_balances, case_get_for_actor, case_list
from relance.cases.status import Status
from relance.comms.models import Action
from relance.core.money import Money
from relance.payments.models import Payment
from relance.tenancy.actors import Actor
from relance.tenancy.models import User


def _actor(request: HttpRequest) -> Actor:
    user = request.user
    if not isinstance(user, User):  # every view here is behind login_required
        raise PermissionDenied
    return Actor.for_user(user)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    status = request.GET.get("status") or None
    if status and status not in {s.value for s in Status}:
        status = None
    cases = case_list(actor=actor, status=status)
    counts = dict(
        Case.objects.visible_to(actor).values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    page = Paginator(cases, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "backoffice/cases.html",
        {
            "page": page,
            "status": status,
            "statuses": [(s.value, s.value.replace("_", " "), counts.get(s.value, 0)) for s in Status],
            "total": sum(counts.values()),
        },
    )


@login_required
@require_GET
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    actor = _actor(request)
    try:
        case = case_get_for_actor(actor=actor, case_id=case_id)
    except CaseNotFoundError:
        raise Http404 from None
    with transaction.atomic():
        audit_record(actor=actor, verb="case.viewed", subject=case, data={"page": "case_detail"})
    balances = case_claim_balances(case=case)
    events = audit_events_for(subjects={"cases.case": [case.pk], "claims.claim": [b.claim.pk for b in balances]})
    if not actor.is_staff:
        events = events.exclude(verb="case.viewed")
    return render(
        request,
        "backoffice/case.html",
        {
            "case": case,
            "debtor": case.debtor,
            "claims": [
                (b, Money(b.claim.original_amount_minor, case.currency), Money(b.outstanding_minor, case.currency))
                for b in balances
            ],
            "outstanding": Money(sum(b.outstanding_minor for b in balances), case.currency),
            "events": events,
            "actions": Action.objects.filter(case=case).order_by("scheduled_at", "pk"),
            "payments": [
                (p, Money(p.amount_minor, p.currency))
                for p in Payment.objects.filter(case=case).order_by("received_at")
            ],
        },
    )


@login_required
@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    actions = (
        Action.objects.filter(case__in=Case.objects.visible_to(actor)).select_related("case", "debtor").order_by("-pk")
    )
    page = Paginator(actions, 50).get_page(request.GET.get("page"))
    return render(request, "backoffice/outbox.html", {"page": page})


@login_required
@require_GET
def message_detail(request: HttpRequest, action_id: int) -> HttpResponse:
    actor = _actor(request)
    action = (
        Action.objects.filter(case__in=Case.objects.visible_to(actor))
        .select_related("case", "debtor")
        .filter(pk=action_id)
        .first()
    )
    if action is None:
        raise Http404
    with transaction.atomic():
        audit_record(actor=actor, verb="message.viewed", subject=action.case, data={"action": action.pk})
    return render(request, "backoffice/message.html", {"action": action})
