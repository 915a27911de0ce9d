"""``relance sepa``: SEPA direct debits for instalment plans.

- ``relance sepa batch [--out DIR]``: a pain.008.001.08 file per agency for the instalments due in
  the next days (FRST, then RCUR), written to DIR (default: the current folder), to hand to the bank;
- ``relance sepa settle``: collections whose date has come become payments (ledger, allocation);
- ``relance sepa returns FILE``: import a pain.002 (rejects) or camt.054 (returns) file: instalments
  missed, settled payments reversed;
- ``relance sepa review``: promises kept/broken, instalments paid/missed, plans completed/broken.
"""

from __future__ import annotations

from argparse import ArgumentParser
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relance.core.errors import DomainError
from relance.payments.arrangement_models import SepaCreditor
from relance.payments.arrangements import arrangements_review, sepa_batch_create, sepa_rtransactions_import, sepa_settle
from relance.tenancy.actors import Actor


class Command(BaseCommand):
    help = "SEPA direct debits of instalment plans: pain.008 files, settlement, R-transactions, review."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["batch", "settle", "returns", "review"])
        parser.add_argument("file", nargs="?", help="returns: the pain.002 or camt.054 file")
        parser.add_argument("--out", default=".", help="batch: folder for the pain.008 files")
        parser.add_argument("--horizon", type=int, default=5, help="batch: instalments due within N days")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("sepa")
        try:
            getattr(self, f"_{options['what']}")(actor, options)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None

    def _batch(self, actor: Actor, options: dict[str, Any]) -> None:
        out = Path(options["out"])
        if not out.is_dir():
            raise CommandError(f"No such folder: {out}")
        made = 0
        for sepa in SepaCreditor.objects.select_related("agency"):
            batch = sepa_batch_create(agency=sepa.agency, actor=actor, horizon_days=options["horizon"])
            if batch is None:
                continue
            path = out / f"{batch.message_id}.xml"
            path.write_text(batch.xml, encoding="utf-8")
            made += 1
            self.stdout.write(
                f"{path}: {batch.count} collection(s), {batch.total_minor / 100:.2f} {batch.currency}, "
                f"collection date {batch.collection_date}"
            )
        if not made:
            self.stdout.write("no instalment due: no file")

    def _settle(self, actor: Actor, options: dict[str, Any]) -> None:
        self.stdout.write(f"settled {sepa_settle(actor=actor)} collection(s)")

    def _returns(self, actor: Actor, options: dict[str, Any]) -> None:
        if not options["file"]:
            raise CommandError("Give the pain.002 or camt.054 file.")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        report = sepa_rtransactions_import(file=path.read_bytes(), actor=actor)
        for name in report.missed:
            self.stdout.write(f"  missed {name}{' (payment reversed)' if name in report.reversed else ''}")
        for name in report.unknown:
            self.stdout.write(f"  unknown {name}")
        self.stdout.write(
            f"missed {len(report.missed)}, reversed {len(report.reversed)}, "
            f"duplicates {len(report.duplicates)}, unknown {len(report.unknown)}"
        )

    def _review(self, actor: Actor, options: dict[str, Any]) -> None:
        report = arrangements_review(actor=actor)
        self.stdout.write(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in asdict(report).items()))
