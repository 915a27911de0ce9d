"""``relance import FILE --creditor SLUG``: import a CSV or XLSX file of claims, with a progress bar."""

from __future__ import annotations

import sys
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relance.intake.imports import Progress, import_create, import_error_report, import_run
from relance.intake.models import ImportBatch
from relance.intake.parse import PRESETS
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor


class _Bar:
    """One status line on stderr: rows, rows/s, percentage of bytes read, ETA."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, p: Progress) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        share = p.bytes_read / p.bytes_total if p.bytes_total else 1.0
        eta = elapsed / share - elapsed if share > 0 else 0
        filled = int(share * 30)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:6.1%}  {p.rows:>10,} rows  "
            f"{p.rows / elapsed:>9,.0f} rows/s  ETA {eta:5.0f}s"
        )
        sys.stderr.flush()


class Command(BaseCommand):
    help = "Import a file of claims (CSV in any common French/English export format, or XLSX)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", nargs="?", help="CSV or XLSX file")
        parser.add_argument("--creditor", help="creditor slug")
        parser.add_argument("--mode", choices=ImportBatch.Mode.values, default=ImportBatch.Mode.VALID_ROWS)
        parser.add_argument("--sheet", default="", help="XLSX sheet name (default: the first)")
        parser.add_argument(
            "--preset",
            choices=sorted(PRESETS),
            help="column layout (default: the creditor's saved mapping, else recognised from the header)",
        )
        parser.add_argument("--resume", type=int, help="continue an interrupted import by its id")
        parser.add_argument("--errors", help="write the error report (CSV) to this path")
        parser.add_argument("--chunk", type=int, default=1000, help="rows per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("import-cli")
        if options["resume"]:
            batch = ImportBatch.objects.filter(pk=options["resume"]).first()
            if batch is None:
                raise CommandError(f"No import with id {options['resume']}.")
            ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.PENDING)
            batch.refresh_from_db()
        else:
            if not options["file"] or not options["creditor"]:
                raise CommandError("Give a FILE and --creditor SLUG (or --resume ID).")
            path = Path(options["file"])
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            creditor = Creditor.objects.filter(slug=options["creditor"]).first()
            if creditor is None:
                raise CommandError(f"Unknown creditor {options['creditor']!r}.")
            with path.open("rb") as content:
                batch = import_create(
                    creditor=creditor,
                    content=content,
                    filename=path.name,
                    actor=actor,
                    mode=options["mode"],
                    sheet=options["sheet"],
                    mapping={"preset": options["preset"]} if options["preset"] else None,
                )
        self.stderr.write(f"import {batch.pk}: {batch.filename} ({batch.get_mode_display()})")
        batch = import_run(batch=batch, actor=actor, chunk_rows=options["chunk"], progress=_Bar())
        sys.stderr.write("\n")
        self.stdout.write(
            f"import {batch.pk} {batch.status}: {batch.rows_total} rows; created {batch.rows_created}, "
            f"unchanged {batch.rows_unchanged}, credited {batch.rows_credited}, to review {batch.rows_review}, "
            f"invalid {batch.rows_invalid}" + (f" — {batch.message}" if batch.message else "")
        )
        if options["errors"]:
            with open(options["errors"], "w", newline="", encoding="utf-8") as out:
                import_error_report(batch=batch, out=out)
            self.stdout.write(f"error report: {options['errors']}")
        if batch.status == ImportBatch.Status.FAILED:
            raise CommandError(batch.message)
