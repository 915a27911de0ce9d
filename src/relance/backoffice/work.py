"""Agents' work queues and the actions on a case page (issue 6).

Views stay thin: a form checks the input, a service in ``cases``/``comms``/``payments`` does the work,
and a domain error comes back to the agent as a message naming the field.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from relance.backoffice.case_forms import CASE_FORMS, ReasonForm
from relance.backoffice.views import _actor, case_or_404
from relance.cases.handling import (
    ACTING_ROLES,
    case_discount_decide,
    case_discount_grant,
    case_hold,
    case_note_add,
    case_recall,
    case_resume,
    case_return_to_creditor,
    case_write_off,
)
from relance.cases.models import Case, WorkItem
from relance.cases.queues import (
    QUEUE_ROLES,
    work_item_claim,
    work_item_claim_next,
    work_item_done,
    work_item_release,
    work_queue,
    work_queue_counts,
)
from relance.comms.calls import call_outcome_record
from relance.core.errors import DomainError, PermissionDeniedError
from relance.core.money import Money, MoneyError
from relance.payments.arrangements import plan_create, promise_create
from relance.payments.bank import bank_entry_ignore, bank_entry_match
from relance.payments.models import PaymentPlan, UnmatchedBankEntry
from relance.strategies.services import case_strategy_change
from relance.tenancy.access import requires
from relance.tenancy.actors import Actor


def _staff(request: HttpRequest) -> Actor:
    actor = _actor(request)
    if actor.kind != "staff" or actor.agency_id is None:
        raise Http404  # creditor users have no queues: "not yours" answers like "absent"
    return actor


def _agency(actor: Actor) -> int:
    assert actor.agency_id is not None  # noqa: S101 - _staff() let only agency staff through
    return actor.agency_id


@requires("queues.view")
@require_GET
def queues(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    counts = work_queue_counts(actor=actor)
    rows = [(kind, label, counts[kind], actor.role in QUEUE_ROLES[kind]) for kind, label in WorkItem.Kind.choices]
    return render(request, "backoffice/queues.html", {"rows": rows})


def _kind(kind: str) -> str:
    if kind not in WorkItem.Kind.values:
        raise Http404
    return kind


@requires("queues.view")
@require_GET
def queue(request: HttpRequest, kind: str) -> HttpResponse:
    actor = _staff(request)
    kind = _kind(kind)
    items = list(work_queue(actor=actor, kind=kind)[:200])
    return render(
        request,
        "backoffice/queue.html",
        {
            "kind": kind,
            "label": WorkItem.Kind(kind).label,
            "items": items,
            "can_work": actor.role in QUEUE_ROLES[kind],
            "now": timezone.now(),
            "me": int(actor.id),
        },
    )


def _target(item: WorkItem) -> str:
    if item.case_id is not None and item.kind != WorkItem.Kind.DISCOUNT_APPROVAL:
        return reverse("backoffice:case", args=[item.case_id]) + "#act"
    return reverse("backoffice:work_item", args=[item.pk])


def _fail(request: HttpRequest, error: DomainError) -> None:
    field = error.fields.get("field")
    messages.error(request, f"{field}: {error.message}" if field else error.message)


@requires("queues.work")
@require_POST
def queue_next(request: HttpRequest, kind: str) -> HttpResponse:
    actor = _staff(request)
    kind = _kind(kind)
    try:
        item = work_item_claim_next(actor=actor, kind=kind)
    except DomainError as error:
        _fail(request, error)
        return HttpResponseRedirect(reverse("backoffice:queue", args=[kind]))
    if item is None:
        messages.info(request, _("Nothing left in this queue."))
        return HttpResponseRedirect(reverse("backoffice:queue", args=[kind]))
    return HttpResponseRedirect(_target(item))


def _item(actor: Actor, item_id: int) -> WorkItem:
    item = WorkItem.objects.filter(pk=item_id, agency_id=_agency(actor)).select_related("case").first()
    if item is None:
        raise Http404
    return item


@requires("queues.view")
@require_GET
def work_item(request: HttpRequest, item_id: int) -> HttpResponse:
    actor = _staff(request)
    item = _item(actor, item_id)
    entry = None
    if item.kind == WorkItem.Kind.UNMATCHED_PAYMENT:
        entry = UnmatchedBankEntry.objects.filter(pk=item.data.get("entry"), agency_id=_agency(actor)).first()
    return render(
        request,
        "backoffice/work_item.html",
        {
            "item": item,
            "entry": entry,
            "amount": Money(item.amount_minor, item.case.currency if item.case else "EUR"),
            "mine": str(item.claimed_by_id) == actor.id,
        },
    )


class OutcomeForm(forms.Form):
    outcome = forms.CharField(label=gettext_lazy("What was done"), max_length=300)


class MatchForm(forms.Form):
    reference = forms.CharField(label=gettext_lazy("Case reference"), max_length=20)


@requires("queues.work")
@require_POST
def work_item_act(request: HttpRequest, item_id: int, verb: str) -> HttpResponse:
    actor = _staff(request)
    item = _item(actor, item_id)
    back = HttpResponseRedirect(reverse("backoffice:work_item", args=[item.pk]))
    try:
        if verb == "claim":
            work_item_claim(actor=actor, item_id=item.pk)
            return HttpResponseRedirect(_target(item))
        if verb == "release":
            work_item_release(actor=actor, item_id=item.pk)
            return HttpResponseRedirect(reverse("backoffice:queue", args=[item.kind]))
        if verb == "done":
            form = OutcomeForm(request.POST)
            if not form.is_valid():
                return _form_errors(request, form, back)
            work_item_done(actor=actor, item_id=item.pk, outcome=form.cleaned_data["outcome"])
            return HttpResponseRedirect(reverse("backoffice:queue", args=[item.kind]))
        if verb in {"approve", "refuse"}:
            case_discount_decide(
                item_id=item.pk, approve=verb == "approve", actor=actor, note=request.POST.get("note", "")
            )
            return HttpResponseRedirect(reverse("backoffice:queue", args=[item.kind]))
        if verb in {"match", "ignore"} and item.kind == WorkItem.Kind.UNMATCHED_PAYMENT:
            entry = UnmatchedBankEntry.objects.filter(pk=item.data.get("entry"), agency_id=_agency(actor)).first()
            if entry is None:
                raise Http404
            if verb == "match":
                match = MatchForm(request.POST)
                if not match.is_valid():
                    return _form_errors(request, match, back)
                case = Case.objects.filter(
                    reference=match.cleaned_data["reference"].strip().upper(), creditor__agency_id=_agency(actor)
                ).first()
                if case is None:
                    messages.error(request, _("reference: no case of the agency has this reference."))
                    return back
                bank_entry_match(entry=entry, case=case, actor=actor)
            else:
                reason = ReasonForm(request.POST)
                if not reason.is_valid():
                    return _form_errors(request, reason, back)
                bank_entry_ignore(entry=entry, reason=reason.cleaned_data["reason"], actor=actor)
            return HttpResponseRedirect(reverse("backoffice:queue", args=[item.kind]))
    except DomainError as error:
        _fail(request, error)
        return back
    raise Http404


def _form_errors(request: HttpRequest, form: forms.Form, response: HttpResponse) -> HttpResponse:
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(request, f"{field}: {error}")
    return response


# --- actions on a case page ------------------------------------------------------------------------


def _money(text: str, currency: str) -> int:
    try:
        return Money.parse(text.replace(" ", "").replace("\u202f", ""), currency).minor
    except (MoneyError, ValueError) as exc:
        raise DomainError(_("This is not an amount."), field="amount") from exc


@requires("cases.work")
@require_POST
def case_act(request: HttpRequest, case_id: int, verb: str) -> HttpResponse:
    actor = _staff(request)
    if verb not in CASE_FORMS:
        raise Http404
    case = case_or_404(actor, case_id)
    back = HttpResponseRedirect(reverse("backoffice:case", args=[case.pk]) + "#act")
    form = CASE_FORMS[verb](request.POST, prefix=verb)
    if not form.is_valid():
        return _form_errors(request, form, back)
    data = form.cleaned_data
    try:
        if verb == "note":
            case_note_add(case=case, text=data["text"], actor=actor)
        elif verb == "call":
            callback = data.get("callback_at")
            call_outcome_record(case=case, result=data["result"], note=data["note"], actor=actor, callback_at=callback)
        elif verb == "promise":
            if actor.role not in ACTING_ROLES:
                raise PermissionDeniedError("Only agents, supervisors and agency admins act on cases.")
            # Tracked like the debtor's own promises: kept or broken from the ledger (payments.arrangements).
            promise_create(
                case=case,
                on=data["on"],
                amount=Money(_money(data["amount"], case.currency), case.currency),
                actor=actor,
                enforce_policy=False,
            )
        elif verb == "plan":
            # Agreed on the phone, paid by transfer: a direct debit needs the debtor's own signed mandate
            # (the portal). Outside the creditor's policy it waits in the plan-proposals queue.
            plan = plan_create(
                case=case,
                months=data["months"],
                first_due=data["first_due"],
                method=PaymentPlan.Method.TRANSFER,
                source=PaymentPlan.Source.AGENT,
                actor=actor,
            )
            if plan.status == PaymentPlan.Status.PROPOSED:
                messages.info(request, _("Outside the creditor's policy: the plan waits for a decision."))
                return back
        elif verb == "hold":
            case_hold(case=case, until=data["until"], reason=data["reason"], actor=actor)
        elif verb == "resume":
            case_resume(case=case, actor=actor)
        elif verb == "strategy":
            case_strategy_change(case=case, key=data["key"], actor=actor, now=timezone.now())
        elif verb == "discount":
            pending = case_discount_grant(
                case=case, amount_minor=_money(data["amount"], case.currency), reason=data["reason"], actor=actor
            )
            if pending is not None:
                messages.info(request, _("Above your authority: the discount waits for a supervisor's approval."))
                return back
        elif verb == "return":
            case_return_to_creditor(case=case, reason=data["reason"], actor=actor)
        elif verb == "write_off":
            case_write_off(case=case, reason=data["reason"], actor=actor)
    except DomainError as error:
        _fail(request, error)
        return back
    messages.success(request, _("Done."))
    return back


@requires("cases.recall")
@require_POST
def case_recall_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """A creditor admin takes a case back (the creditor portal's "recall")."""
    actor = _actor(request)
    case = case_or_404(actor, case_id)
    back = HttpResponseRedirect(reverse("backoffice:case", args=[case.pk]))
    form = ReasonForm(request.POST, prefix="recall")
    if not form.is_valid():
        return _form_errors(request, form, back)
    try:
        case_recall(case=case, reason=form.cleaned_data["reason"], actor=actor)
    except DomainError as error:
        _fail(request, error)
        return back
    messages.success(request, _("The case is back with you: we no longer contact the debtor."))
    return back
