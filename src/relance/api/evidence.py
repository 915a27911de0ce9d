"""Evidence endpoints: attach a file to a claim, or many files at once in a ZIP with a manifest.

Issue 3 item 7 and invariant 5 ("evidence first"). Both need the ``intake`` scope; a claim of another
creditor answers 404 exactly like a missing one (invariant 6).
"""

from __future__ import annotations

from typing import IO

from django.http import HttpRequest
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from relance.api.auth import require_scope, scoped
from relance.claims.selectors import claim_get_for_actor
from relance.claims.services import evidence_attach_or_get
from relance.core.errors import ValidationError
from relance.intake.evidence_zip import evidence_import_zip
from relance.tenancy.actors import Actor
from relance.tenancy.models import ApiKey

router = Router(tags=["evidence"])

MAX_ZIP_UPLOAD_BYTES = 1024**3


class EvidenceOut(Schema):
    id: int
    kind: str
    sha256: str
    size: int


class EvidenceRowErrorOut(Schema):
    row: int
    column: str
    code: str
    message: str
    value: str


class EvidenceZipOut(Schema):
    rows: int
    attached: int
    unchanged: int
    invalid: int
    errors: list[EvidenceRowErrorOut]


def _content(file: UploadedFile | None) -> IO[bytes]:
    if file is None or file.file is None:
        raise ValidationError("file: send the file (multipart field `file`) / fichier manquant", field="file")
    return file.file


@router.post(
    "/claims/{path:external_ref}/evidence",
    response={200: EvidenceOut, 201: EvidenceOut},
    summary="Attach a file of evidence to a claim",
    auth=scoped("intake"),
)
def evidence_create(
    request: HttpRequest,
    external_ref: str,
    file: File[UploadedFile | None] = None,
    kind: Form[str] = "",
) -> Status[EvidenceOut]:
    """Multipart upload (`file`, `kind`). The same content again for the same claim returns the
    existing record (200) instead of a new one (201)."""
    # `file` and `kind` are checked here rather than by the schema so that a missing one gets the same
    # field-level problem as a wrong one.
    key = require_scope(request, ApiKey.Scope.INTAKE)
    actor = Actor.for_api_key(key)
    claim = claim_get_for_actor(actor=actor, external_ref=external_ref)
    content = _content(file)
    filename = (file.name if file else "") or ""
    evidence, created = evidence_attach_or_get(claim=claim, kind=kind, content=content, filename=filename, actor=actor)
    out = EvidenceOut(id=evidence.pk, kind=evidence.kind, sha256=evidence.sha256, size=evidence.size)
    return Status(201 if created else 200, out)


@router.post(
    "/evidence/zip",
    response=EvidenceZipOut,
    summary="Attach many files: a ZIP with manifest.csv",
    auth=scoped("intake"),
)
def evidence_zip(request: HttpRequest, file: File[UploadedFile | None] = None) -> EvidenceZipOut:
    """`manifest.csv` (columns `external_ref;kind;filename`) names the claim and kind of each file.
    Valid rows are attached; every other row is reported with its manifest row number."""
    key = require_scope(request, ApiKey.Scope.INTAKE)
    if file is not None and file.size is not None and file.size > MAX_ZIP_UPLOAD_BYTES:
        raise ValidationError("file: the ZIP is larger than 1 GiB / le ZIP dépasse 1 Gio", field="file")
    report = evidence_import_zip(creditor=key.creditor, zip_file=_content(file), actor=Actor.for_api_key(key))
    return EvidenceZipOut(
        rows=report.rows,
        attached=report.attached,
        unchanged=report.unchanged,
        invalid=report.invalid_rows,
        errors=[
            EvidenceRowErrorOut(row=e.row, column=e.column, code=e.code, message=e.message, value=e.value)
            for e in report.errors
        ],
    )
