"""File imports: store the file, then stream it through parsing, validation and bulk placement.

Two modes (ImportBatch.Mode): "valid rows" places every valid row and reports the rest; "all or
nothing" validates the whole file first and places nothing if any row is wrong. Either way nothing is
half-written: rows are placed in chunks, each chunk committed together with the batch's progress, so
a crash leaves whole chunks and ``import_run`` continues from ``rows_done``; re-running a finished
file changes nothing (invariant 2). Memory stays flat: the file is streamed, never loaded, and the
in-file duplicate check moves to a temporary file past 100,000 references (``_SeenRefs``).

At volume on PostgreSQL (issue 3, speed): a forked worker process parses and validates CSV rows
while this process writes the previous chunk, and new claims are written with ``COPY``
(``bulk_pg.py``). The decisions are the same code on every path; SQLite keeps the in-process ORM path.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
import multiprocessing
import os
import pickle
import sqlite3
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from queue import Empty, Full
from typing import IO, Any, ClassVar

from django.core.files.base import File
from django.db import connection, transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.intake import parse
from relance.intake.models import ImportBatch, ImportIssue
from relance.intake.placement import claims_place_many
from relance.intake.validate import CleanClaim, validate_claim
from relance.strategies.selectors import strategy_default
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

log = logging.getLogger("relance.intake")

CHUNK_ROWS = 1000
# On PostgreSQL, parse and validate CSV files in a second process while the first one writes.
PARSE_WORKER = True


@dataclass(frozen=True, slots=True)
class Progress:
    rows: int
    bytes_read: int
    bytes_total: int


class _CountingReader(io.RawIOBase):
    """A binary file wrapper counting the bytes read, for progress and ETA."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    # XLSX files are ZIP archives: openpyxl seeks, so the wrapper passes seeking through.
    def seekable(self) -> bool:
        return self.raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self.raw.seek(offset, whence)
        self.count = position
        return position

    def tell(self) -> int:
        return self.raw.tell()


def import_create(
    *,
    creditor: Creditor,
    content: IO[bytes],
    filename: str,
    actor: Actor,
    mode: str = ImportBatch.Mode.VALID_ROWS,
    mapping: dict[str, str] | None = None,
    sheet: str = "",
) -> ImportBatch:
    """Store an uploaded file (Django storage, SHA-256 recorded) as a pending import."""
    if mode not in ImportBatch.Mode.values:
        raise ValueError(f"unknown import mode {mode!r}")
    digest = hashlib.sha256()
    for block in iter(lambda: content.read(1 << 20), b""):
        digest.update(block)
    content.seek(0)
    with transaction.atomic():
        batch = ImportBatch(creditor=creditor, filename=filename[:255], sha256=digest.hexdigest(), mode=mode)
        batch.mapping = mapping if mapping is not None else dict(creditor.import_mapping or {})
        batch.sheet = sheet
        batch.file.save(filename[-100:], File(content), save=False)
        batch.save()
        audit_record(
            actor=actor,
            verb="import.created",
            subject=batch,
            data={"creditor": creditor.pk, "filename": filename, "sha256": batch.sha256, "mode": mode},
        )
    return batch


def _rows(batch: ImportBatch, raw: IO[bytes]) -> Iterator[parse.ParsedRow]:
    mapping = parse.ColumnMapping.from_dict(batch.mapping) if batch.mapping else None
    if batch.filename.lower().endswith((".xlsx", ".xlsm")):
        yield from parse.read_xlsx_rows(raw, sheet=batch.sheet or None, mapping=mapping)
    else:
        yield from parse.read_rows(raw, mapping=mapping)


def _issue(batch: ImportBatch, error: parse.RowError, kind: str = ImportIssue.Kind.ERROR) -> ImportIssue:
    return ImportIssue(
        batch=batch,
        kind=kind,
        row=error.row,
        column=error.column[:100],
        value=str(error.value)[:2000],
        code=error.code[:60],
        message=error.message[:500],
    )


@dataclass
class _Row:
    number: int
    clean: CleanClaim | None
    errors: list[parse.RowError]


class _SeenRefs:
    """The row where each reference of the file was first seen: in memory, then in a temporary file.

    A dict of a 5,000,000-row file's references would take ~600 MB. Up to ``IN_MEMORY`` references
    stay in a dict; beyond, they move to a temporary SQLite file (8 MB page cache), a few microseconds
    per row, whatever the size of the file. The file is deleted when the import is done.
    """

    IN_MEMORY = 100_000

    def __init__(self) -> None:
        self._refs: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def first(self, ref: str, row: int) -> int:
        """``row`` if ``ref`` is new (and remember it), else the row where it was first seen."""
        if self._db is None:
            first = self._refs.setdefault(ref, row)
            if len(self._refs) >= self.IN_MEMORY:
                self._spill()
            return first
        if self._db.execute("INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING", (ref, row)).rowcount:
            return row
        (first,) = self._db.execute("SELECT row FROM seen WHERE ref = ?", (ref,)).fetchone()
        return int(first)

    def _spill(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="relance-import-")
        self._db = sqlite3.connect(Path(self._dir.name) / "refs.sqlite3")
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;"
            "CREATE TABLE seen (ref TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID;"
        )
        self._db.executemany("INSERT INTO seen VALUES (?, ?)", self._refs.items())
        self._refs = {}

    def __del__(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._dir is not None:
            self._dir.cleanup()


def _checked(batch: ImportBatch, raw: IO[bytes], today: Any) -> Iterator[_Row]:
    """Parsed and validated rows, with duplicate references inside the file reported."""
    seen = _SeenRefs()
    for parsed in _rows(batch, raw):
        errors = list(parsed.errors)
        clean = None
        if parsed.data is not None and not errors:
            clean, field_errors = validate_claim(parsed.data, today=today, required=batch.creditor.required_fields)
            errors += [
                parse.RowError(
                    row=parsed.row,
                    column=parsed.column_for(e.field),
                    code=e.code,
                    message=e.message,
                    value=parsed.value_for(e.field),
                )
                for e in field_errors
            ]
            if clean is not None:
                ref = clean.data.external_ref
                first = seen.first(ref, parsed.row)
                if first != parsed.row:
                    errors.append(
                        parse.RowError(
                            row=parsed.row,
                            column=parsed.column_for("external_ref"),
                            code="ref.duplicate_in_file",
                            message=f"Reference {ref} already in row {first} / Référence déjà présente ligne {first}",
                            value=ref,
                        )
                    )
                    clean = None
        yield _Row(parsed.row, clean if not errors else None, errors)


def import_run(
    *,
    batch: ImportBatch,
    actor: Actor,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[Progress], None] | None = None,
) -> ImportBatch:
    """Process (or resume) an import. Safe to call again after a crash or on a finished batch."""
    if batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.REJECTED, ImportBatch.Status.FAILED):
        return batch
    today = timezone.localdate()
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.RUNNING, started_at=timezone.now())
    batch.refresh_from_db()
    try:
        with batch.file.open("rb") as raw:
            size = batch.file.size
            if (
                batch.mode == ImportBatch.Mode.ALL_OR_NOTHING
                and batch.rows_done == 0
                and _reject_if_invalid(batch, raw, today)
            ):
                return batch
            raw.seek(0)
            counting = _CountingReader(raw)
            _place_all(
                batch=batch,
                reader=io.BufferedReader(counting, 1 << 16),
                counting=counting,
                size=size,
                today=today,
                actor=actor,
                chunk_rows=chunk_rows,
                progress=progress,
            )
    except parse.FileFormatError as exc:
        _finish(batch, ImportBatch.Status.FAILED, actor, message=str(exc))
        return batch
    _finish(batch, ImportBatch.Status.DONE, actor)
    return batch


def _reject_if_invalid(batch: ImportBatch, raw: IO[bytes], today: Any) -> bool:
    """All-or-nothing, first pass: validate everything; on any error store the issues, place nothing."""
    issues: list[ImportIssue] = []
    total = 0
    for row in _checked(batch, raw, today):
        total += 1
        issues += [_issue(batch, e) for e in row.errors]
        if len(issues) >= 5000:
            ImportIssue.objects.bulk_create(issues)
            issues = []
    if not issues and not ImportIssue.objects.filter(batch=batch).exists():
        return False
    ImportIssue.objects.bulk_create(issues)
    invalid = ImportIssue.objects.filter(batch=batch).values("row").distinct().count()
    ImportBatch.objects.filter(pk=batch.pk).update(rows_total=total, rows_invalid=invalid)
    batch.refresh_from_db()
    _finish(
        batch, ImportBatch.Status.REJECTED, Actor.system("import"), message=f"{invalid} invalid rows: nothing imported"
    )
    return True


def _place_all(
    *,
    batch: ImportBatch,
    reader: IO[bytes],
    counting: _CountingReader,
    size: int,
    today: Any,
    actor: Actor,
    chunk_rows: int,
    progress: Callable[[Progress], None] | None,
) -> None:
    strategy = strategy_default()
    skip = batch.rows_done
    chunk: list[_Row] = []
    seen_rows = 0

    def flush() -> None:
        if not chunk:
            return
        with transaction.atomic():
            locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
            clean = [r.clean for r in chunk if r.clean is not None]
            outcomes = claims_place_many(
                creditor=batch.creditor,
                items=clean,
                actor=actor,
                placed_at=timezone.now(),
                strategy_key=strategy.key,
                strategy_version=strategy.version,
            )
            issues = [_issue(batch, e) for r in chunk for e in r.errors]
            counts = {"created": 0, "unchanged": 0, "credited": 0, "review": 0}
            rows_with_clean = [r for r in chunk if r.clean is not None]
            for row, outcome in zip(rows_with_clean, outcomes, strict=True):
                counts[outcome.status] += 1
                if outcome.status == "review":
                    issues.append(
                        ImportIssue(
                            batch=batch,
                            kind=ImportIssue.Kind.REVIEW,
                            row=row.number,
                            column="amount",
                            code="claim.change_needs_review",
                            message=outcome.detail,
                        )
                    )
            ImportIssue.objects.bulk_create(issues)
            locked.rows_done += len(chunk)
            locked.rows_total = max(locked.rows_total, locked.rows_done)
            locked.rows_created += counts["created"]
            locked.rows_unchanged += counts["unchanged"]
            locked.rows_credited += counts["credited"]
            locked.rows_review += counts["review"]
            locked.rows_invalid += sum(1 for r in chunk if r.errors)
            locked.save()
        chunk.clear()

    # Load what row checking reads from the database now: a forked parse worker must never use the
    # connection it inherits.
    batch.creditor.required_fields  # noqa: B018
    source = _checked_blocks(batch, reader, counting, today, chunk_rows)
    if PARSE_WORKER and connection.vendor == "postgresql" and (os.cpu_count() or 1) > 1 and not _is_xlsx(batch):
        # The database side is fast there (COPY): parse and validate in a second process meanwhile.
        source = _in_worker(source)
    for block, bytes_read in source:
        for row in block:
            seen_rows += 1
            if seen_rows <= skip:
                continue
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                flush()
                if progress is not None:
                    progress(Progress(rows=seen_rows, bytes_read=bytes_read, bytes_total=size))
    flush()
    if progress is not None:
        progress(Progress(rows=seen_rows, bytes_read=size, bytes_total=size))


def _is_xlsx(batch: ImportBatch) -> bool:
    return batch.filename.lower().endswith((".xlsx", ".xlsm"))


_Block = tuple[list[_Row], int]  # checked rows, and the bytes of the file read so far


def _checked_blocks(
    batch: ImportBatch, reader: IO[bytes], counting: _CountingReader, today: Any, size: int
) -> Iterator[_Block]:
    block: list[_Row] = []
    for row in _checked(batch, reader, today):
        block.append(row)
        if len(block) >= size:
            yield block, counting.count
            block = []
    yield block, counting.count


_QUEUE_BLOCKS = 3  # blocks parsed ahead of the database: bounded memory


def _in_worker(source: Iterator[_Block]) -> Iterator[_Block]:
    """``source`` run in a forked process (parsing and validation are pure), its blocks queued back.

    The queue is bounded, so memory stays flat; the worker exits when its parent dies (a killed
    import leaves no orphan behind) and an error in the file is raised here, in the parent.
    """
    context = multiprocessing.get_context("fork")
    queue: Any = context.Queue(maxsize=_QUEUE_BLOCKS)
    parent = os.getpid()
    worker = context.Process(target=_produce, args=(source, queue, parent), daemon=True)
    worker.start()
    try:
        while True:
            try:
                kind, *payload = queue.get(timeout=5)
            except Empty:
                if not worker.is_alive():  # killed (OOM…): the import stays running, hence resumable
                    raise RuntimeError(f"import worker stopped (exit code {worker.exitcode})") from None
                continue
            if kind == "end":
                break
            if kind == "file_error":
                raise parse.FileFormatError(payload[0], missing=payload[1])
            if kind == "crash":
                raise RuntimeError(f"import worker failed: {payload[0]}")
            yield pickle.loads(payload[0])  # noqa: S301 (our own worker's bytes)
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        queue.close()


class _Packed(pickle.Pickler):
    """Pickles dataclasses as ``cls(*fields)``: several times cheaper to load than their default state."""

    _names: ClassVar[dict[type, tuple[str, ...] | None]] = {}

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        names = self._names.get(cls, ())
        if names == ():
            names = None
            if dataclasses.is_dataclass(cls) and all(f.init and f.kw_only is False for f in dataclasses.fields(cls)):
                names = tuple(f.name for f in dataclasses.fields(cls))
            self._names[cls] = names
        if names is None:
            return NotImplemented
        return cls, tuple(getattr(obj, name) for name in names)

    @classmethod
    def dumps(cls, value: object) -> bytes:
        out = io.BytesIO()
        cls(out, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        return out.getvalue()


def _produce(source: Iterator[_Block], queue: Any, parent: int) -> None:
    def put(*message: object) -> None:
        while True:
            try:
                queue.put(message, timeout=1)
                return
            except Full:
                if os.getppid() != parent:
                    os._exit(0)

    try:
        for block in source:
            put("rows", _Packed.dumps(block))
    except parse.FileFormatError as exc:  # exceptions with fields do not pickle: sent as values
        put("file_error", exc.error, exc.missing)
    except Exception:
        put("crash", traceback.format_exc(limit=5))
    else:
        put("end")
    queue.close()
    queue.join_thread()


def _finish(batch: ImportBatch, status: str, actor: Actor, message: str = "") -> None:
    with transaction.atomic():
        ImportBatch.objects.filter(pk=batch.pk).update(status=status, finished_at=timezone.now(), message=message[:500])
        batch.refresh_from_db()
        audit_record(
            actor=actor,
            verb=f"import.{status}",
            subject=batch,
            data={
                "rows": batch.rows_total,
                "created": batch.rows_created,
                "unchanged": batch.rows_unchanged,
                "credited": batch.rows_credited,
                "review": batch.rows_review,
                "invalid": batch.rows_invalid,
                "message": message,
            },
        )


def import_recover(*, stale_after: timedelta = timedelta(minutes=10)) -> int:
    """Give interrupted imports (a crashed worker left them ``running``) back to the queue; they resume."""
    return ImportBatch.objects.filter(
        status=ImportBatch.Status.RUNNING, updated_at__lt=timezone.now() - stale_after
    ).update(status=ImportBatch.Status.PENDING, message="resumed after an interruption")


def import_run_pending(*, batch_id: int | None = None, actor: Actor | None = None) -> ImportBatch | None:
    """Claim one pending import (that one, or the oldest) and run it; ``None`` when there is none.

    Called by the import task in production and by the embedded engine loop; the claim (pending →
    running) is atomic, so an import never runs twice at once.
    """
    with transaction.atomic():
        qs = ImportBatch.objects.filter(status=ImportBatch.Status.PENDING).order_by("pk")
        if batch_id is not None:
            qs = qs.filter(pk=batch_id)
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        batch = qs.first()
        if batch is None:
            return None
        ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.RUNNING)
    return import_run(batch=batch, actor=actor or Actor.system("import"))


def import_error_report(*, batch: ImportBatch, out: IO[str]) -> None:
    """The downloadable CSV: row, column, value, code, message (values made safe for spreadsheets)."""
    writer = csv.writer(out)
    writer.writerow(["row", "column", "value", "code", "message"])
    for issue in batch.issues.order_by("row", "pk").iterator(chunk_size=2000):
        writer.writerow(
            [
                issue.row,
                parse.csv_safe(issue.column),
                parse.csv_safe(issue.value),
                issue.code,
                parse.csv_safe(issue.message),
            ]
        )
