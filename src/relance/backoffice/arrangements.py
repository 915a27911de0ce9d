"""Back office: debtor proposals an adviser decides — plans outside the creditor's policy, and
hardship statements flagged as vulnerable (agency staff only; every decision audited by the service).
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from relance.audit.services import audit_record
from relance.backoffice.views import _actor
from relance.core.errors import DomainError
from relance.core.money import Money
from relance.payments.arrangement_models import HardshipStatement, PaymentPlan
from relance.payments.arrangement_selectors import proposals_for_agency
from relance.payments.arrangements import hardship_review, plan_decide
from relance.tenancy.access import requires


@requires("queues.view")
@require_GET
def proposals(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    if not actor.is_staff or actor.agency_id is None:
        raise Http404
    plans, statements = proposals_for_agency(actor=actor)
    with transaction.atomic():
        audit_record(actor=actor, verb="proposals.viewed", subject_type="payments.paymentplan", data={})
    return render(
        request,
        "backoffice/proposals.html",
        {
            "plans": [(p, Money(p.total_minor, p.currency).format()) for p in plans],
            "statements": [
                (
                    s,
                    Money(s.income_minor, s.case.currency).format(),
                    Money(s.fixed_charges_minor, s.case.currency).format(),
                    Money(s.proposed_instalment_minor, s.case.currency).format(),
                )
                for s in statements
            ],
        },
    )


@requires("queues.work")
@require_POST
def plan_decision(request: HttpRequest, plan_id: int) -> HttpResponse:
    actor = _actor(request)
    if not actor.is_staff or actor.agency_id is None:
        raise Http404
    plan = PaymentPlan.objects.filter(pk=plan_id, case__creditor__agency_id=actor.agency_id).first()
    if plan is None:
        raise Http404
    try:
        plan_decide(
            plan=plan, accept=request.POST.get("decision") == "accept", actor=actor, note=request.POST.get("note", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Decision recorded for case %(ref)s.") % {"ref": plan.case.reference})
    return redirect("backoffice:proposals")


@requires("queues.work")
@require_POST
def hardship_reviewed(request: HttpRequest, statement_id: int) -> HttpResponse:
    actor = _actor(request)
    if not actor.is_staff or actor.agency_id is None:
        raise Http404
    statement = HardshipStatement.objects.filter(pk=statement_id, case__creditor__agency_id=actor.agency_id).first()
    if statement is None:
        raise Http404
    try:
        hardship_review(statement=statement, note=request.POST.get("note", ""), actor=actor)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("backoffice:proposals")
