"""Creditor portal and back office: answer disputes, decide returns, report direct payments, read
notifications (FR-COL-12), and set the return policy.

Every page is scoped through the actor (a creditor's users see their own cases only; another
creditor's case answers 404 like a missing one). Writes are POST with CSRF; services check the role.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from relance.audit.services import audit_record
from relance.backoffice.views import _actor, case_or_404
from relance.cases.models import Case
from relance.core.errors import DomainError
from relance.core.money import Money, MoneyError
from relance.payments.direct import payment_creditor_reported
from relance.payments.disputes import dispute_reject, dispute_uphold
from relance.payments.models import (
    CreditorNotification,
    Dispute,
    DisputeFile,
    PspWebhookEvent,
    ReturnPolicy,
    ReturnRequest,
)
from relance.payments.returns import return_confirm_received, return_refuse
from relance.tenancy.access import requires


def _error(request: HttpRequest, exc: DomainError) -> None:
    messages.error(request, str(exc))


@requires("disputes.answer")
@require_POST
def dispute_answer(request: HttpRequest, case_id: int, dispute_id: int) -> HttpResponseBase:
    """Uphold (reduce or cancel) or reject with evidence files."""
    actor = _actor(request)
    case = case_or_404(actor, case_id)
    dispute = Dispute.objects.filter(pk=dispute_id, case=case).first()
    if dispute is None:
        raise Http404
    decision = request.POST.get("decision", "")
    note = request.POST.get("note", "")
    try:
        if decision == "reject":
            dispute_reject(
                dispute=dispute,
                note=note,
                files=[(f.name or "file", f) for f in request.FILES.getlist("files")],
                actor=actor,
            )
            messages.success(request, _("Your evidence is sent to the debtor; reminders resume."))
        elif decision in ("cancel", "reduce"):
            reduce_minor = None
            if decision == "reduce":
                reduce_minor = Money.parse(request.POST.get("amount", ""), case.currency).minor
            dispute_uphold(dispute=dispute, reduce_minor=reduce_minor, note=note, actor=actor)
            messages.success(request, _("The dispute is accepted and the claim is credited."))
        else:
            messages.error(request, _("Choose an answer."))
    except MoneyError:
        messages.error(request, _("Enter the amount of the reduction, such as 20.00."))
    except DomainError as exc:
        _error(request, exc)
    return redirect("backoffice:case", case_id=case.pk)


@requires("evidence.download")
@require_GET
def dispute_file(request: HttpRequest, file_id: int) -> FileResponse:
    actor = _actor(request)
    f = DisputeFile.objects.filter(pk=file_id, dispute__case__in=Case.objects.visible_to(actor)).first()
    if f is None:
        raise Http404
    with transaction.atomic():
        audit_record(
            actor=actor, verb="dispute.file_downloaded", subject=f.dispute.case, data={"file": f.pk, "sha256": f.sha256}
        )
    response = FileResponse(
        f.file.open("rb"), as_attachment=True, filename=f.original_filename, content_type=f.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@requires("returns.decide")
@require_POST
def return_decide(request: HttpRequest, case_id: int, return_id: int) -> HttpResponseBase:
    actor = _actor(request)
    case = case_or_404(actor, case_id)
    ret = ReturnRequest.objects.filter(pk=return_id, case=case).first()
    if ret is None:
        raise Http404
    try:
        if request.POST.get("decision") == "received":
            return_confirm_received(request=ret, actor=actor)
            messages.success(request, _("Goods received: the claim is cancelled."))
        else:
            return_refuse(request=ret, note=request.POST.get("note", ""), actor=actor)
            messages.success(request, _("Return refused: reminders resume."))
    except DomainError as exc:
        _error(request, exc)
    return redirect("backoffice:case", case_id=case.pk)


class DirectPaymentForm(forms.Form):
    amount = forms.CharField(label=gettext_lazy("Amount"), max_length=20)
    received_on = forms.DateField(label=gettext_lazy("Date received"), widget=forms.DateInput(attrs={"type": "date"}))
    reference = forms.CharField(label=gettext_lazy("Your reference"), max_length=80, required=False)


@requires("payments.report")
@require_POST
def payment_report(request: HttpRequest, case_id: int) -> HttpResponseBase:
    """A payment the debtor made to the creditor directly."""
    actor = _actor(request)
    case = case_or_404(actor, case_id)
    form = DirectPaymentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter the amount and the date of the payment."))
        return redirect("backoffice:case", case_id=case.pk)
    try:
        payment_creditor_reported(
            case_id=case.pk,
            amount=Money.parse(form.cleaned_data["amount"], case.currency),
            received_on=form.cleaned_data["received_on"],
            reference=form.cleaned_data["reference"],
            actor=actor,
        )
    except MoneyError:
        messages.error(request, _("Enter the amount, such as 25.00."))
    except DomainError as exc:
        _error(request, exc)
    else:
        messages.success(request, _("The payment is recorded."))
    return redirect("backoffice:case", case_id=case.pk)


@requires("notifications.view")
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """What the creditor is told of (R124-5, FR-COL-12): payments, reversals, disputes, proposals."""
    actor = _actor(request)
    qs = CreditorNotification.objects.select_related("case", "creditor").order_by("-created_at", "-pk")
    if actor.creditor_id is not None:
        qs = qs.filter(creditor_id=actor.creditor_id)
    elif not actor.is_staff:
        qs = qs.none()
    if request.method == "POST":
        qs.filter(read_at=None).update(read_at=timezone.now())
        return redirect("backoffice:notifications")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "backoffice/notifications.html", {"page": page, "unread": qs.filter(read_at=None).count()})


class ReturnPolicyForm(forms.ModelForm):
    class Meta:
        model = ReturnPolicy
        fields = ["returns_allowed", "instructions", "max_invoice_age_days"]
        labels = {
            "returns_allowed": gettext_lazy("Debtors may return the goods instead of paying"),
            "instructions": gettext_lazy("Return instructions shown to the debtor"),
            "max_invoice_age_days": gettext_lazy("Only for invoices at most this many days old (0: no limit)"),
        }


@requires("returns.settings")
@require_http_methods(["GET", "POST"])
def return_policy(request: HttpRequest) -> HttpResponse:
    """The creditor's return policy (creditor administrators only)."""
    actor = _actor(request)
    if actor.creditor_id is None or actor.role != "creditor_admin":
        raise Http404
    policy, _created = ReturnPolicy.objects.get_or_create(creditor_id=actor.creditor_id)
    form = ReturnPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            audit_record(
                actor=actor,
                verb="creditor.return_policy_changed",
                subject_type="tenancy.creditor",
                subject_id=actor.creditor_id,
                data={"returns_allowed": policy.returns_allowed, "max_invoice_age_days": policy.max_invoice_age_days},
            )
        messages.success(request, _("Saved."))
        return redirect("backoffice:return_policy")
    return render(request, "backoffice/return_policy.html", {"form": form})


@requires("payments.events")
@require_GET
def psp_events(request: HttpRequest) -> HttpResponse:
    """PSP webhook events for the agency's operators: what was ignored or still waits for its payment."""
    actor = _actor(request)
    if not actor.is_staff:
        raise Http404
    status = request.GET.get("status") or ""
    qs = PspWebhookEvent.objects.order_by("-received_at", "-pk")
    if status in PspWebhookEvent.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "backoffice/psp_events.html",
        {"page": page, "status": status, "statuses": PspWebhookEvent.Status.choices},
    )
