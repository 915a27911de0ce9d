"""Upload pages: a creditor (or an agent for a creditor) uploads a file and follows its import live."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django import forms
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from relance.audit.services import audit_record
from relance.backoffice.views import _actor
from relance.intake import parse
from relance.intake.imports import import_create, import_error_report
from relance.intake.models import ImportBatch
from relance.intake.tasks import import_run_task
from relance.tenancy.access import requires
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor
from relance.tenancy.permissions import allowed


class UploadForm(forms.Form):
    creditor = forms.ModelChoiceField(queryset=Creditor.objects.none(), label=_("Creditor"))
    file = forms.FileField(label=_("File (CSV or XLSX)"))
    mode = forms.ChoiceField(choices=ImportBatch.Mode.choices, initial=ImportBatch.Mode.VALID_ROWS, label=_("Mode"))

    def __init__(self, *args: object, actor: Actor, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["creditor"]
        if isinstance(field, forms.ModelChoiceField):
            field.queryset = _creditors(actor)
        if actor.creditor_id is not None:
            field.initial = actor.creditor_id
            field.widget = forms.HiddenInput()

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".xlsx", ".xlsm")):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        return upload


def _creditors(actor: Actor) -> QuerySet[Creditor]:
    if actor.creditor_id is not None:
        return Creditor.objects.filter(pk=actor.creditor_id)
    if actor.is_staff and actor.agency_id is not None:
        return Creditor.objects.filter(agency_id=actor.agency_id)
    return Creditor.objects.none()


def _imports(actor: Actor) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.filter(creditor__in=_creditors(actor)).select_related("creditor")


def _can_upload(request: HttpRequest) -> bool:
    return allowed(_actor(request), "imports.upload")


@requires("imports.view")
@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    form = UploadForm(request.POST or None, request.FILES or None, actor=actor)
    if request.method == "POST":
        if not _can_upload(request):
            raise Http404
        if form.is_valid():
            upload = form.cleaned_data["file"]
            batch = import_create(
                creditor=form.cleaned_data["creditor"],
                content=upload.file,
                filename=upload.name,
                actor=actor,
                mode=form.cleaned_data["mode"],
            )
            transaction.on_commit(lambda: import_run_task.enqueue(batch.pk))
            return redirect("backoffice:import", import_id=batch.pk)
    return render(
        request,
        "backoffice/imports.html",
        {"form": form, "imports": _imports(actor).order_by("-pk")[:50], "can_upload": _can_upload(request)},
    )


def _get(request: HttpRequest, import_id: int) -> ImportBatch:
    batch = _imports(_actor(request)).filter(pk=import_id).first()
    if batch is None:
        raise Http404
    return batch


@dataclass(frozen=True, slots=True)
class FileReading:
    """How the file was read: the layout used, the CSV dialect, and the columns nobody reads."""

    layout: str
    encoding: str
    delimiter: str
    decimal: str
    unknown: tuple[str, ...]


def _file_reading(batch: ImportBatch) -> FileReading | None:
    """Read the stored file's header again (bounded: the header and a sample of rows, never the file)."""
    mapping = parse.ColumnMapping.from_dict(batch.mapping) if batch.mapping else None
    try:
        with batch.file.open("rb") as raw:
            if batch.filename.lower().endswith((".xlsx", ".xlsm")):
                stream = parse.read_xlsx_rows(raw, sheet=batch.sheet or None, mapping=mapping)
            else:
                stream = parse.read_rows(raw, mapping=mapping)
            return FileReading(
                layout=stream.mapping.name,
                encoding=stream.encoding,
                delimiter={"\t": "tab"}.get(stream.delimiter, stream.delimiter),
                decimal=stream.decimal or "",
                unknown=stream.unknown_columns,
            )
    except (parse.IntakeFileError, OSError, ValueError):
        return None  # the import's own message says why the file cannot be read


@requires("imports.view")
@require_GET
def import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    batch = _get(request, import_id)
    issues = batch.issues.order_by("row", "pk")[:200]
    if request.headers.get("HX-Request"):
        return render(request, "backoffice/_import_status.html", {"batch": batch, "issues": issues})
    return render(
        request, "backoffice/import.html", {"batch": batch, "issues": issues, "reading": _file_reading(batch)}
    )


@requires("imports.view")
@require_GET
def import_errors(request: HttpRequest, import_id: int) -> HttpResponse:
    batch = _get(request, import_id)
    out = io.StringIO()
    import_error_report(batch=batch, out=out)
    with transaction.atomic():  # the report quotes rows of the file: debtors' personal data (invariant 6)
        audit_record(actor=_actor(request), verb="import_report.downloaded", subject=batch, data={})
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{batch.pk}-errors.csv"'
    return response
