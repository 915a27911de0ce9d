"""Evidence in bulk: a ZIP of files with a ``manifest.csv`` naming the claim and kind of each file.

Issue 3 item 7; invariant 5 ("evidence first") needs the files, invariant 8 how they come in: every
problem is a ``RowError`` naming the manifest row (as a spreadsheet numbers it: the header is row 1),
valid rows are attached, and each row is attached in its own transaction (``evidence_attach``), so a
row is either fully attached or not at all.

The ZIP is never extracted to disk: members are streamed from the archive into the storage. Hostile
archives are expected:

* member names are never used as paths (the storage name is the file's SHA-256), and a manifest name
  that tries to leave the archive (``../x``, ``/etc/passwd``, ``C:\\x``) is refused;
* a member whose *declared* uncompressed size is over the per-file limit is refused without being read,
  and a member that lies about its size is cut off at the limit (``zipfile`` stops at the declared size,
  ``evidence_attach`` stops at the limit): a zip bomb costs at most the limit per row;
* the bytes decompressed for one archive are capped (``MAX_ZIP_TOTAL_BYTES``), so ten thousand rows
  naming the same bomb still cost a bounded amount of work.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from django.db import transaction

from relance.audit.services import audit_record
from relance.claims.models import Claim, Evidence
from relance.claims.services import MAX_EVIDENCE_BYTES, evidence_attach_or_get
from relance.core.errors import DomainError
from relance.intake.parse import RowError
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

MANIFEST = "manifest.csv"
COLUMNS = ("external_ref", "kind", "filename")
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
MAX_ZIP_TOTAL_BYTES = 4 * 1024**3
_MB = 1024 * 1024


@dataclass
class EvidenceZipReport:
    """What happened to each manifest row: ``attached`` new, ``unchanged`` already there, or an error."""

    rows: int = 0
    attached: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def invalid_rows(self) -> int:
        return len({e.row for e in self.errors if e.row > 0})


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    external_ref: str
    kind: str
    filename: str


def _error(row: int, column: str, code: str, en: str, fr: str, *, value: str = "") -> RowError:
    return RowError(row=row, column=column, code=code, message=f"{en} / {fr}", value=value[:200])


def member_name_is_safe(name: str) -> bool:
    """A relative name inside the archive: no absolute path, drive, backslash, ``.``/``..`` or empty part."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return False
    parts = name.split("/")
    if ":" in parts[0]:
        return False
    return all(part not in {"", ".", ".."} for part in parts)


def evidence_import_zip(*, creditor: Creditor, zip_file: IO[bytes], actor: Actor) -> EvidenceZipReport:
    """Attach every valid manifest row's file to the creditor's claim; report the others by row."""
    report = EvidenceZipReport()
    try:
        archive = zipfile.ZipFile(zip_file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        report.errors.append(
            _error(
                0, "", "zip.invalid", "The file is not a readable ZIP archive", "Le fichier n'est pas un ZIP lisible"
            )
        )
        return report
    with archive:
        rows = _manifest_rows(archive, report)
        if rows:
            _attach_rows(creditor=creditor, archive=archive, rows=rows, actor=actor, report=report)
    with transaction.atomic():
        audit_record(
            actor=actor,
            verb="evidence.zip_imported",
            subject=creditor,
            data={
                "rows": report.rows,
                "attached": report.attached,
                "unchanged": report.unchanged,
                "errors": len(report.errors),
            },
        )
    return report


def _manifest_rows(archive: zipfile.ZipFile, report: EvidenceZipReport) -> list[_Row]:
    info = next((i for i in archive.infolist() if i.filename == MANIFEST), None)
    if info is None:
        report.errors.append(
            _error(
                0,
                "",
                "manifest.missing",
                f"The ZIP has no {MANIFEST} at its root",
                f"Le ZIP ne contient pas de {MANIFEST} à sa racine",
            )
        )
        return []
    if info.file_size > MAX_MANIFEST_BYTES or info.flag_bits & 0x1:
        report.errors.append(
            _error(
                0,
                "",
                "manifest.unreadable",
                f"{MANIFEST} is encrypted or larger than {MAX_MANIFEST_BYTES // _MB} MB",
                f"{MANIFEST} est chiffré ou dépasse {MAX_MANIFEST_BYTES // _MB} Mo",
            )
        )
        return []
    try:
        with archive.open(info) as member:
            raw = member.read(MAX_MANIFEST_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError):
        report.errors.append(
            _error(0, "", "manifest.unreadable", f"{MANIFEST} cannot be read", f"{MANIFEST} est illisible")
        )
        return []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # spreadsheets on Windows save "CSV" in CP1252
    header_line = text.split("\n", 1)[0]
    delimiter = ";" if header_line.count(";") >= header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        report.errors.append(
            _error(
                1,
                ", ".join(missing),
                "manifest.columns",
                f"{MANIFEST} needs the columns {';'.join(COLUMNS)}; missing: {', '.join(missing)}",
                f"{MANIFEST} doit avoir les colonnes {';'.join(COLUMNS)} ; manquantes : {', '.join(missing)}",
                value=";".join(header),
            )
        )
        return []
    index = {c: header.index(c) for c in COLUMNS}
    rows: list[_Row] = []
    for number, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) >= MAX_ROWS:
            report.errors.append(
                _error(
                    number,
                    "",
                    "manifest.too_many_rows",
                    f"{MANIFEST} has more than {MAX_ROWS} rows; send the rest in another ZIP",
                    f"{MANIFEST} a plus de {MAX_ROWS} lignes ; envoyez la suite dans un autre ZIP",
                )
            )
            break
        cells = [*record, *[""] * len(header)]
        rows.append(
            _Row(
                number=number,
                external_ref=cells[index["external_ref"]].strip(),
                kind=cells[index["kind"]].strip().lower(),
                filename=cells[index["filename"]].strip(),
            )
        )
    report.rows = len(rows)
    return rows


def _claims_by_ref(creditor: Creditor, refs: set[str]) -> dict[str, Claim]:
    claims: dict[str, Claim] = {}
    ordered = sorted(refs)
    for start in range(0, len(ordered), 500):
        for claim in Claim.objects.filter(creditor=creditor, external_ref__in=ordered[start : start + 500]):
            claims[claim.external_ref] = claim
    return claims


def _row_problems(
    row: _Row, claims: dict[str, Claim], members: dict[str, zipfile.ZipInfo], duplicates: Counter[str]
) -> list[RowError]:
    n = row.number
    errors = []
    if not row.external_ref:
        errors.append(_error(n, "external_ref", "external_ref.missing", "Reference missing", "Référence manquante"))
    elif row.external_ref not in claims:
        # Another creditor's reference answers like an unknown one (invariant 6).
        errors.append(
            _error(
                n,
                "external_ref",
                "external_ref.unknown",
                "No claim of yours has this reference",
                "Aucune de vos créances n'a cette référence",
                value=row.external_ref,
            )
        )
    if row.kind not in Evidence.Kind.values:
        kinds = ", ".join(Evidence.Kind.values)
        errors.append(
            _error(
                n,
                "kind",
                "kind.unknown",
                f"Unknown kind; use one of {kinds}",
                f"Type de pièce inconnu ; utilisez {kinds}",
                value=row.kind,
            )
        )
    if not row.filename:
        errors.append(_error(n, "filename", "filename.missing", "File name missing", "Nom de fichier manquant"))
    elif not member_name_is_safe(row.filename):
        errors.append(
            _error(
                n,
                "filename",
                "filename.unsafe",
                "File name must be a path inside the ZIP (no '..', no leading '/', no '\\')",
                "Le nom doit désigner un fichier du ZIP (sans '..', sans '/' initial, sans '\\')",
                value=row.filename,
            )
        )
    elif row.filename not in members:
        errors.append(
            _error(
                n,
                "filename",
                "file.missing",
                "No file of this name in the ZIP",
                "Aucun fichier de ce nom dans le ZIP",
                value=row.filename,
            )
        )
    elif duplicates[row.filename] > 1:
        errors.append(
            _error(
                n,
                "filename",
                "file.ambiguous",
                "The ZIP holds several files of this name",
                "Le ZIP contient plusieurs fichiers de ce nom",
                value=row.filename,
            )
        )
    else:
        info = members[row.filename]
        if info.flag_bits & 0x1:
            errors.append(
                _error(
                    n,
                    "filename",
                    "file.encrypted",
                    "Encrypted files cannot be read",
                    "Fichier chiffré",
                    value=row.filename,
                )
            )
        elif info.file_size > MAX_EVIDENCE_BYTES:
            errors.append(
                _error(
                    n,
                    "filename",
                    "file.too_big",
                    f"File larger than {MAX_EVIDENCE_BYTES // _MB} MB",
                    f"Fichier de plus de {MAX_EVIDENCE_BYTES // _MB} Mo",
                    value=row.filename,
                )
            )
    return errors


def _attach_rows(
    *, creditor: Creditor, archive: zipfile.ZipFile, rows: list[_Row], actor: Actor, report: EvidenceZipReport
) -> None:
    infos = [i for i in archive.infolist() if not i.is_dir()]
    members = {i.filename: i for i in infos}
    duplicates = Counter(i.filename for i in infos)
    claims = _claims_by_ref(creditor, {r.external_ref for r in rows if r.external_ref})
    budget = MAX_ZIP_TOTAL_BYTES
    for row in rows:
        problems = _row_problems(row, claims, members, duplicates)
        if problems:
            report.errors.extend(problems)
            continue
        info = members[row.filename]
        if info.file_size > budget:
            report.errors.append(
                _error(
                    row.number,
                    "filename",
                    "zip.too_much_data",
                    f"The ZIP unpacks to more than {MAX_ZIP_TOTAL_BYTES // _MB} MB; send the rest separately",
                    f"Le ZIP dépasse {MAX_ZIP_TOTAL_BYTES // _MB} Mo une fois décompressé ; envoyez la suite à part",
                    value=row.filename,
                )
            )
            continue
        budget -= info.file_size
        try:
            with archive.open(info) as member:
                _, created = evidence_attach_or_get(
                    claim=claims[row.external_ref], kind=row.kind, content=member, filename=row.filename, actor=actor
                )
        except DomainError as exc:
            column = "kind" if exc.fields.get("field") == "kind" else "filename"
            report.errors.append(_error_from(row, column, exc))
            continue
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError):
            report.errors.append(
                _error(
                    row.number,
                    "filename",
                    "file.corrupt",
                    "The file is damaged in the ZIP (or uses an unsupported compression)",
                    "Le fichier est endommagé dans le ZIP (ou sa compression n'est pas prise en charge)",
                    value=row.filename,
                )
            )
            continue
        if created:
            report.attached += 1
        else:
            report.unchanged += 1


def _error_from(row: _Row, column: str, exc: DomainError) -> RowError:
    return RowError(row=row.number, column=column, code=exc.code, message=exc.message, value=row.filename[:200])
