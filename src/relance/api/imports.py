"""Import endpoints: upload a file, follow its status, download its error report."""

from __future__ import annotations

import io
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from relance.api.auth import require_scope, scoped
from relance.audit.services import audit_record
from relance.core.errors import NotFoundError, ValidationError
from relance.intake import parse
from relance.intake.imports import import_create, import_error_report
from relance.intake.models import ImportBatch
from relance.intake.tasks import import_run_task
from relance.tenancy.actors import Actor
from relance.tenancy.models import ApiKey, Creditor

router = Router(tags=["imports"])

MAX_UPLOAD_BYTES = 2 * 1024**3


class ImportNotFoundError(NotFoundError):
    code = "import.not_found"
    title = "Import not found"


class ImportOut(Schema):
    id: int
    status: str
    filename: str
    mode: str
    sha256: str
    rows_total: int
    rows_done: int
    created: int
    unchanged: int
    credited: int
    to_review: int
    invalid: int
    message: str
    errors_url: str


def _out(request: HttpRequest, batch: ImportBatch) -> ImportOut:
    return ImportOut(
        id=batch.pk,
        status=batch.status,
        filename=batch.filename,
        mode=batch.mode,
        sha256=batch.sha256,
        rows_total=batch.rows_total,
        rows_done=batch.rows_done,
        created=batch.rows_created,
        unchanged=batch.rows_unchanged,
        credited=batch.rows_credited,
        to_review=batch.rows_review,
        invalid=batch.rows_invalid,
        message=batch.message,
        errors_url=request.build_absolute_uri(reverse("api:imports_errors", kwargs={"import_id": batch.pk})),
    )


def _batch(request: HttpRequest, import_id: int) -> ImportBatch:
    key = require_scope(request, ApiKey.Scope.READ)
    batch = ImportBatch.objects.filter(pk=import_id, creditor_id=key.creditor_id).first()
    if batch is None:
        raise ImportNotFoundError(import_id=import_id)  # same answer for absent and not yours
    return batch


class MappingIn(Schema):
    preset: str = ""
    columns: dict[str, str] = {}


class MappingOut(Schema):
    mapping: dict[str, Any]
    presets: list[str]
    fields: list[str]


def _mapping_out(creditor: Creditor) -> MappingOut:
    return MappingOut(mapping=creditor.import_mapping or {}, presets=sorted(parse.PRESETS), fields=list(parse.FIELDS))


@router.get("/mapping", response=MappingOut, summary="The saved column mapping for file imports", auth=scoped("read"))
def mapping_get(request: HttpRequest) -> MappingOut:
    """Empty means: recognise the file (Relance template or a shop preset) from its header."""
    return _mapping_out(require_scope(request, ApiKey.Scope.READ).creditor)


@router.put("/mapping", response=MappingOut, summary="Save the column mapping for file imports", auth=scoped("intake"))
def mapping_put(request: HttpRequest, payload: MappingIn) -> MappingOut:
    """Either a preset (`{"preset": "shopify"}`) or your columns (`{"columns": {"N° commande": "external_ref"}}`).

    Send `{}` to go back to automatic recognition.
    """
    key = require_scope(request, ApiKey.Scope.INTAKE)
    if payload.preset and payload.preset not in parse.PRESETS:
        raise ValidationError(f"Unknown preset; one of {', '.join(sorted(parse.PRESETS))}.", field="preset")
    stored: dict[str, Any] = {"preset": payload.preset} if payload.preset else {}
    if payload.columns:
        try:
            parse.ColumnMapping.from_dict({"columns": payload.columns})
        except ValueError as exc:
            raise ValidationError(str(exc), field="columns") from None
        stored = {"columns": payload.columns}
    with transaction.atomic():
        creditor = Creditor.objects.select_for_update().get(pk=key.creditor_id)
        creditor.import_mapping = stored
        creditor.save(update_fields=["import_mapping", "updated_at"])
        audit_record(actor=Actor.for_api_key(key), verb="creditor.import_mapping_saved", subject=creditor, data=stored)
    return _mapping_out(creditor)


@router.post("", response={202: ImportOut}, summary="Upload a file of claims (CSV or XLSX)", auth=scoped("intake"))
def imports_create(
    request: HttpRequest,
    file: File[UploadedFile],
    mode: Form[str] = ImportBatch.Mode.VALID_ROWS,
    sheet: Form[str] = "",
) -> Status[ImportOut]:
    """Store the file and import it in the background; poll `GET /imports/{id}` for progress."""
    key = require_scope(request, ApiKey.Scope.INTAKE)
    if mode not in ImportBatch.Mode.values:
        raise ValidationError(f"mode must be one of {', '.join(ImportBatch.Mode.values)}", field="mode")
    if file.size is not None and file.size > MAX_UPLOAD_BYTES:
        raise ValidationError("File too large (2 GiB at most).", field="file")
    name = file.name or "upload.csv"
    if file.file is None:
        raise ValidationError("Empty upload.", field="file")
    if not name.lower().endswith((".csv", ".txt", ".xlsx", ".xlsm")):
        raise ValidationError("Upload a .csv or .xlsx file.", field="file")
    batch = import_create(
        creditor=key.creditor, content=file.file, filename=name, actor=Actor.for_api_key(key), mode=mode, sheet=sheet
    )
    transaction.on_commit(lambda: import_run_task.enqueue(batch.pk))
    return Status(202, _out(request, batch))


@router.get("/{import_id}", response=ImportOut, summary="Status and counts of an import", auth=scoped("read"))
def imports_get(request: HttpRequest, import_id: int) -> ImportOut:
    return _out(request, _batch(request, import_id))


@router.get("/{import_id}/errors.csv", url_name="imports_errors", summary="Error report (CSV)", auth=scoped("read"))
def imports_errors(request: HttpRequest, import_id: int) -> HttpResponse:
    """CSV with one line per problem: row, column, value, code, message."""
    batch = _batch(request, import_id)
    out = io.StringIO()
    import_error_report(batch=batch, out=out)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{batch.pk}-errors.csv"'
    return response
