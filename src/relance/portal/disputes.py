"""Portal: dispute the claim (reason, statement, files), announce a return of the goods, and the files.

A dispute stops chasing at once (invariant 5) and asks the creditor for evidence; a return puts the
case on hold until the creditor confirms it got the goods back. Both only after verification.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from relance.audit.services import audit_record
from relance.core.errors import DomainError
from relance.payments.disputes import dispute_open
from relance.payments.files import MAX_FILES
from relance.payments.models import Dispute, DisputeFile
from relance.payments.returns import return_policy, return_request, returnable_claims
from relance.portal.rendering import render
from relance.portal.views import _case_from_token, _verified
from relance.tenancy.actors import Actor


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class DisputeForm(forms.Form):
    reason = forms.ChoiceField(
        label=gettext_lazy("Why do you dispute this claim?"), choices=Dispute.Reason.choices, widget=forms.RadioSelect
    )
    statement = forms.CharField(
        label=gettext_lazy("Tell us what happened"), max_length=4000, widget=forms.Textarea(attrs={"rows": 6})
    )


@require_http_methods(["GET", "POST"])
def dispute(request: HttpRequest, token: str) -> HttpResponseBase:
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    open_dispute = Dispute.objects.filter(case=case, status=Dispute.Status.OPEN).first()
    form = DisputeForm(request.POST or None)
    if request.method == "POST" and open_dispute is None and form.is_valid():
        files = request.FILES.getlist("files")
        if len(files) > MAX_FILES:
            form.add_error(None, _("Send at most %(n)s files.") % {"n": MAX_FILES})
        else:
            try:
                dispute_open(
                    case=case,
                    reason=form.cleaned_data["reason"],
                    statement=form.cleaned_data["statement"],
                    files=[(f.name or "file", f) for f in files],
                    actor=Actor.for_debtor(case_id=case.pk),
                )
            except DomainError as exc:
                field = exc.fields.get("field")
                form.add_error(field if field in ("reason", "statement") else None, str(exc))
            else:
                messages.success(
                    request,
                    _("Your dispute is recorded. We stop all reminders and ask the creditor for evidence."),
                )
                return redirect("portal:case", token=token)
    return render(
        request,
        "portal/dispute.html",
        {
            "token": token,
            "case": case,
            "creditor": case.creditor,
            "form": form,
            "open_dispute": open_dispute,
            "max_files": MAX_FILES,
        },
        status=422 if form.errors else 200,
    )


class ReturnForm(forms.Form):
    claim = forms.TypedChoiceField(label=gettext_lazy("Invoice of the goods you send back"), coerce=int)
    note = forms.CharField(
        label=gettext_lazy("Message for the creditor (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@require_http_methods(["GET", "POST"])
def goods_return(request: HttpRequest, token: str) -> HttpResponseBase:
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    policy = return_policy(case.creditor_id)
    claims = returnable_claims(case=case)
    if policy is None or not claims:
        raise Http404("returns are not offered for this case")
    form = ReturnForm(request.POST or None)
    claim_field: forms.TypedChoiceField = form.fields["claim"]  # type: ignore[assignment]
    claim_field.choices = [(c.pk, f"{c.invoice_number} — {c.description or c.external_ref}") for c in claims]
    if request.method == "POST" and form.is_valid():
        try:
            return_request(
                case=case,
                claim_id=form.cleaned_data["claim"],
                note=form.cleaned_data["note"],
                actor=Actor.for_debtor(case_id=case.pk),
            )
        except DomainError as exc:
            form.add_error("claim", str(exc))
        else:
            messages.success(
                request, _("Your return is recorded. The claim is cancelled once the creditor has the goods back.")
            )
            return redirect("portal:case", token=token)
    return render(
        request,
        "portal/return.html",
        {"token": token, "case": case, "creditor": case.creditor, "form": form, "policy": policy},
        status=422 if form.errors else 200,
    )


@require_GET
def dispute_file(request: HttpRequest, token: str, file_id: int) -> HttpResponseBase:
    """A file of a dispute of this case (the debtor's own, or the creditor's evidence); audited."""
    case = _case_from_token(token)
    if not _verified(request, case):
        return redirect("portal:entry", token=token)
    f = DisputeFile.objects.filter(pk=file_id, dispute__case=case).first()
    if f is None:
        raise Http404("no such file")
    with transaction.atomic():
        audit_record(
            actor=Actor.for_debtor(case_id=case.pk),
            verb="dispute.file_downloaded",
            subject=case,
            data={"file": f.pk, "sha256": f.sha256},
        )
    response = FileResponse(
        f.file.open("rb"), as_attachment=True, filename=f.original_filename, content_type=f.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
