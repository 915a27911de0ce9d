"""Back office (agency staff) and creditor portal: one set of pages, scoped by the actor.

Every page that shows a debtor's personal data records an access audit event (invariant 6).
"""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from relance.audit.selectors import audit_events_for
from relance.audit.services import audit_record
from relance.backoffice.case_forms import case_forms
from relance.cases.handling import ACTING_ROLES
from relance.cases.models import STATUS_LABELS, Case
from relance.cases.queues import work_items_for_case
from relance.cases.selectors import CaseNotFoundError, case_claim_balances, case_get_for_actor, case_list
from relance.cases.status import CHASEABLE, TERMINAL, Status
from relance.claims.models import DebtorMatchReview, Evidence
from relance.claims.selectors import (
    EvidenceNotFoundError,
    evidence_get_for_actor,
    evidence_list_for_case,
    evidence_missing_for_case,
)
from relance.comms.models import Action
from relance.core.money import Money
from relance.intake.debtor_review import DECIDING_ROLES
from relance.payments.models import Payment
from relance.strategies.decide import evidence_missing_reason
from relance.tenancy.access import actor_of, requires
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor, User

# Timeline entries a creditor never sees: staff reads, staff notes, the agents' own work.
STAFF_ONLY_VERBS = (
    "case.viewed",
    "case.note",
    "message.viewed",
    "work_item.opened",
    "work_item.claimed",
    "work_item.released",
    "work_item.closed",
)


def case_or_404(actor: Actor, case_id: int) -> Case:
    """The case the actor may see; absent and not yours are the same 404 (invariant 6)."""
    try:
        return case_get_for_actor(actor=actor, case_id=case_id)
    except CaseNotFoundError:
        raise Http404 from None


def _actor(request: HttpRequest) -> Actor:
    """The actor of a request (kept for older imports; new code uses ``tenancy.access.actor_of``)."""
    return actor_of(request)


class CaseFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=100)
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    creditor = forms.ModelChoiceField(label=gettext_lazy("Creditor"), queryset=Creditor.objects.none(), required=False)
    placed_from = forms.DateField(
        label=gettext_lazy("Placed from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    placed_to = forms.DateField(
        label=gettext_lazy("Placed until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: object, actor: Actor, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["status"].choices = [("", "—")] + [(s.value, STATUS_LABELS[s]) for s in Status]  # type: ignore[attr-defined]
        if actor.kind == "staff" and actor.agency_id is not None:
            self.fields["creditor"].queryset = Creditor.objects.filter(  # type: ignore[attr-defined]
                agency_id=actor.agency_id
            ).order_by("legal_name")
        else:
            del self.fields["creditor"]


@requires("cases.view")
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    form = CaseFilterForm(request.GET or None, actor=actor)
    filters: dict[str, object] = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "status": data["status"] or None,
            "query": data["q"],
            "creditor_id": data["creditor"].pk if data.get("creditor") else None,
            "placed_from": data["placed_from"],
            "placed_to": data["placed_to"],
        }
    cases = case_list(actor=actor, **filters)  # type: ignore[arg-type]
    if filters.get("query") and actor.is_staff:
        with transaction.atomic():  # a search by name or e-mail reads personal data (invariant 6)
            audit_record(
                actor=actor, verb="cases.searched", subject_type="cases.case", data={"query": filters["query"]}
            )
    counts = dict(
        Case.objects.visible_to(actor).values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    page = Paginator(cases, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "backoffice/cases.html",
        {
            "page": page,
            "form": form,
            "status": filters.get("status"),
            "filtered": any(v for v in filters.values()),
            "query": query.urlencode(),
            "statuses": [(s.value, STATUS_LABELS[s], counts.get(s.value, 0)) for s in Status],
            "total": sum(counts.values()),
        },
    )


@requires("cases.view")
@require_GET
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    actor = _actor(request)
    case = case_or_404(actor, case_id)
    with transaction.atomic():
        # "why, when asked": a queue or a link may say why the case is opened (?why=...), kept with the read.
        why = request.GET.get("why", "").strip()[:200]
        audit_record(
            actor=actor, verb="case.viewed", subject=case, data={"page": "case_detail", **({"why": why} if why else {})}
        )
    balances = case_claim_balances(case=case)
    events = audit_events_for(subjects={"cases.case": [case.pk], "claims.claim": [b.claim.pk for b in balances]})
    if not actor.is_staff:
        events = events.exclude(verb__in=STAFF_ONLY_VERBS)
    # Invariant 5: say why a chaseable case is not chased (the same reason the engine records).
    missing: tuple[str, ...] = ()
    if Status(case.status) in CHASEABLE:
        missing = evidence_missing_for_case(case_id=case.pk, required=case.creditor.required_evidence)
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
            "evidence": evidence_list_for_case(case=case),
            "missing_evidence": [Evidence.Kind(k).label for k in missing],
            "missing_reason": evidence_missing_reason(missing) if missing else "",
            "can_act": actor.kind == "staff" and actor.role in ACTING_ROLES,
            "can_recall": actor.kind == "creditor"
            and actor.role == User.Role.CREDITOR_ADMIN
            and Status(case.status) not in TERMINAL,
            "forms": case_forms() if actor.kind == "staff" else {},
            "work_items": work_items_for_case(case=case) if actor.kind == "staff" else [],
        },
    )


@requires("evidence.download")
@require_GET
def evidence_download(request: HttpRequest, evidence_id: int) -> FileResponse:
    """A file of evidence, for whoever may see its case; every download is audited (invariant 6)."""
    actor = _actor(request)
    try:
        evidence = evidence_get_for_actor(actor=actor, evidence_id=evidence_id)
    except EvidenceNotFoundError:
        raise Http404 from None
    with transaction.atomic():
        audit_record(
            actor=actor,
            verb="evidence.downloaded",
            subject=evidence.claim,
            data={"evidence": evidence.pk, "kind": evidence.kind, "sha256": evidence.sha256},
        )
    return evidence_response(evidence)


def evidence_response(evidence: Evidence) -> FileResponse:
    """Always an attachment, with the content type we chose at upload (never sniffed, never inline)."""
    response = FileResponse(
        evidence.file.open("rb"),
        as_attachment=True,
        filename=evidence.original_filename,
        content_type=evidence.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@requires("outbox.view")
@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    actions = (
        Action.objects.filter(case__in=Case.objects.visible_to(actor)).select_related("case", "debtor").order_by("-pk")
    )
    page = Paginator(actions, 50).get_page(request.GET.get("page"))
    return render(request, "backoffice/outbox.html", {"page": page})


@requires("outbox.view")
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


@requires("debtors.review")
@require_GET
def debtor_reviews(request: HttpRequest) -> HttpResponse:
    """Possible duplicate debtors found at intake (agency staff only; never merged automatically)."""
    actor = _actor(request)
    if not actor.is_staff or actor.agency_id is None:
        raise Http404
    reviews = (
        DebtorMatchReview.objects.filter(status=DebtorMatchReview.Status.OPEN, debtor__agency_id=actor.agency_id)
        .select_related("debtor", "candidate")
        .annotate(debtor_claims=Count("debtor__claims", distinct=True))
        .order_by("-pk")
    )
    page = Paginator(reviews, 50).get_page(request.GET.get("page"))
    with transaction.atomic():
        audit_record(
            actor=actor, verb="debtor_reviews.viewed", subject_type="claims.debtor", data={"page": page.number}
        )
    return render(
        request,
        "backoffice/debtor_reviews.html",
        {"page": page, "can_decide": actor.role in DECIDING_ROLES},
    )
