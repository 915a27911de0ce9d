"""Writes on debtors, claims and evidence. A claim enters the ledger the moment it exists.

Evidence (invariant 5, "evidence first"; issue 3 item 7): files are hashed (SHA-256) while they are
read, in chunks, never held whole in memory; a file over ``MAX_EVIDENCE_BYTES`` is refused as soon as
the limit is passed, without reading further. The type is checked by extension *and* by content (magic
bytes), and the stored content type comes from our table, never from the client. The same content on
the same claim is one record. Attaching the last missing kind re-arms a case the engine paused.
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import IO

from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.status import Status
from relance.claims.models import Claim, Evidence
from relance.claims.selectors import evidence_missing_for_case
from relance.core.errors import ValidationError
from relance.ledger.models import Account
from relance.ledger.services import account_ensure
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor


def creditor_claims_account(creditor: Creditor, currency: str) -> str:
    """Contra account of the receivables a creditor placed with us (claims under management)."""
    key = f"creditor:{creditor.pk}:claims:{currency}"
    account_ensure(
        key=key, name=f"Claims placed by {creditor.legal_name}", kind=Account.Kind.LIABILITY, currency=currency
    )
    return key


# --------------------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------------------

MAX_EVIDENCE_BYTES = 25 * 1024 * 1024
_CHUNK = 64 * 1024
_SPOOL_IN_MEMORY = 1024 * 1024

# Extension -> (content type we serve it with, accepted leading bytes).
_BINARY_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
}
_TEXT_TYPES: dict[str, str] = {
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".json": "application/json",
    ".xml": "application/xml",
}
# Plain-text records (an order export, a consent or acceptance log) prove these kinds; an invoice or a
# proof of delivery is a document: PDF or an image of it.
TEXT_KINDS = frozenset(
    {Evidence.Kind.ORDER, Evidence.Kind.TERMS_ACCEPTED, Evidence.Kind.CONSENT_LOG, Evidence.Kind.OTHER}
)
ALLOWED_EXTENSIONS = (*_BINARY_TYPES, *_TEXT_TYPES)


class EvidenceKindError(ValidationError):
    code = "evidence.unknown_kind"
    title = "Unknown kind of evidence"


class EvidenceTypeError(ValidationError):
    code = "evidence.type_not_allowed"
    title = "This type of file is not accepted as evidence"


class EvidenceTooLargeError(ValidationError):
    code = "evidence.too_large"
    title = "The evidence file is too large"


class EvidenceEmptyError(ValidationError):
    code = "evidence.empty"
    title = "The evidence file is empty"


def evidence_filename_clean(filename: str) -> str:
    """The last path component, without control characters: a label, never a path we write to."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[-255:]


def _evidence_type(*, kind: str, filename: str) -> tuple[str, str]:
    """(extension, content type) for a kind and a file name, or a field-level error."""
    if kind not in Evidence.Kind.values:
        raise EvidenceKindError(
            f"kind: {kind!r} is not one of {', '.join(Evidence.Kind.values)}"
            f" / type de pièce inconnu : {kind!r} ({', '.join(Evidence.Kind.values)})",
            field="kind",
            value=kind[:50],
        )
    ext = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if ext in _BINARY_TYPES:
        return ext, _BINARY_TYPES[ext][0]
    if ext in _TEXT_TYPES and kind in TEXT_KINDS:
        return ext, _TEXT_TYPES[ext]
    allowed = ".pdf, .png, .jpg" + (", .txt, .csv, .json, .xml" if kind in TEXT_KINDS else "")
    raise EvidenceTypeError(
        f"file: {filename!r} is not accepted for {kind}; send {allowed}"
        f" / fichier {filename!r} refusé pour {kind} ; formats acceptés : {allowed}",
        field="file",
        value=filename[:100],
    )


def _spool(*, content: IO[bytes], out: IO[bytes], ext: str, filename: str) -> tuple[str, int]:
    """Copy ``content`` into ``out`` in chunks: (SHA-256 hex, size). Stops past the size limit."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := content.read(_CHUNK):
        size += len(chunk)
        if size > MAX_EVIDENCE_BYTES:
            # Refuse without reading the rest: a zip bomb or a huge upload costs at most the limit.
            raise EvidenceTooLargeError(
                f"file: {filename!r} is larger than {MAX_EVIDENCE_BYTES // (1024 * 1024)} MB"
                f" / fichier {filename!r} de plus de {MAX_EVIDENCE_BYTES // (1024 * 1024)} Mo",
                field="file",
                value=filename[:100],
                limit_bytes=MAX_EVIDENCE_BYTES,
            )
        if len(head) < 16:
            head += chunk[: 16 - len(head)]
        if ext in _TEXT_TYPES and b"\x00" in chunk:
            raise EvidenceTypeError(
                f"file: {filename!r} is not a text file / {filename!r} n'est pas un fichier texte",
                field="file",
                value=filename[:100],
            )
        digest.update(chunk)
        out.write(chunk)
    if size == 0:
        raise EvidenceEmptyError(f"file: {filename!r} is empty / {filename!r} est vide", field="file")
    if ext in _BINARY_TYPES and not head.startswith(_BINARY_TYPES[ext][1]):
        raise EvidenceTypeError(
            f"file: {filename!r} is not really a {ext[1:].upper()} file (its content says otherwise)"
            f" / {filename!r} n'est pas un vrai fichier {ext[1:].upper()}",
            field="file",
            value=filename[:100],
        )
    return digest.hexdigest(), size


def evidence_attach(*, claim: Claim, kind: str, content: IO[bytes], filename: str, actor: Actor) -> Evidence:
    """Attach a file to a claim; the same content again returns the existing record (any kind)."""
    return evidence_attach_or_get(claim=claim, kind=kind, content=content, filename=filename, actor=actor)[0]


def evidence_attach_or_get(
    *, claim: Claim, kind: str, content: IO[bytes], filename: str, actor: Actor
) -> tuple[Evidence, bool]:
    """``evidence_attach`` that also says whether a record was created (``False``: same content, known).

    The file is written to storage before the database transaction and removed again if it fails. When
    this call is nested in a caller's transaction that later rolls back, the stored file stays behind as
    an orphan named by its hash: harmless, and never served (only ``Evidence`` rows are).
    """
    name = evidence_filename_clean(filename) or "evidence"
    ext, content_type = _evidence_type(kind=kind, filename=name)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spooled:
        sha256, size = _spool(content=content, out=spooled, ext=ext, filename=name)
        existing = Evidence.objects.filter(claim=claim, sha256=sha256).first()
        if existing is not None:
            return existing, False
        evidence = Evidence(
            claim=claim,
            kind=kind,
            original_filename=name,
            content_type=content_type,
            size=size,
            sha256=sha256,
            uploaded_by=actor.label[:100],
        )
        spooled.seek(0)
        # Stored as <sha256>.<ext> under evidence/YYYY/MM/: no client-chosen name reaches the storage.
        evidence.file.save(f"{sha256}{ext}", File(spooled), save=False)
    try:
        with transaction.atomic():
            evidence.save(force_insert=True)
            rearmed = _case_rearm_if_evidence_complete(claim=claim, actor=actor)
            audit_record(
                actor=actor,
                verb="evidence.attached",
                subject=claim,
                data={
                    "evidence": evidence.pk,
                    "kind": kind,
                    "filename": name,
                    "size": size,
                    "sha256": sha256,
                    "case_rearmed": rearmed,
                },
            )
    except IntegrityError:
        # A concurrent upload of the same content won the race: that record is ours too.
        evidence.file.delete(save=False)
        existing = Evidence.objects.filter(claim=claim, sha256=sha256).first()
        if existing is None:
            raise
        return existing, False
    except BaseException:
        evidence.file.delete(save=False)
        raise
    return evidence, True


def _case_rearm_if_evidence_complete(*, claim: Claim, actor: Actor) -> bool:
    """A case the engine paused for missing evidence (``next_action_at`` None) is due again once complete.

    The case row is locked first, so an engine worker deciding the same case either finished before
    (we see its pause and undo it) or waits for us (it then sees the evidence).
    """
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("creditor")
        .filter(caseclaim__claim_id=claim.pk)
        .first()
    )
    if case is None or not case.creditor.required_evidence:
        return False
    if case.status not in (Status.NEW.value, Status.ACTIVE.value) or case.next_action_at is not None:
        return False
    if evidence_missing_for_case(case_id=case.pk, required=case.creditor.required_evidence):
        return False
    case.next_action_at = timezone.now()
    case.save(update_fields=["next_action_at", "updated_at"])
    audit_record(actor=actor, verb="case.evidence_complete", subject=case, data={"claim": claim.pk})
    return True


def creditor_payable_account(creditor: Creditor, currency: str) -> str:
    """What the agency owes the creditor (collected money not yet remitted)."""
    key = f"creditor:{creditor.pk}:payable:{currency}"
    account_ensure(key=key, name=f"Due to {creditor.legal_name}", kind=Account.Kind.LIABILITY, currency=currency)
    return key


def case_overpayment_account(*, case_id: int, case_reference: str, currency: str) -> str:
    """Money a debtor paid beyond what is owed: refundable, never kept (issue 5)."""
    key = f"overpayment:case:{case_id}"
    account_ensure(
        key=key, name=f"Refundable to debtor of {case_reference}", kind=Account.Kind.LIABILITY, currency=currency
    )
    return key
