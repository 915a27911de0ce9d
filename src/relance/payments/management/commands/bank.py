"""``relance bank import FILE.xml``: apply a camt.053 statement of the trust account; print what happened.

Safe to run twice on the same file: entries already applied or queued are counted as duplicates.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relance.core.errors import DomainError
from relance.payments.bank import camt053_import
from relance.tenancy.actors import Actor


class Command(BaseCommand):
    help = "Import a camt.053 bank statement (ISO 20022 XML) of the agency's trust account."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["import"])
        parser.add_argument("file", help="camt.053 XML file (camt.053.001.02 to .001.08)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with path.open("rb") as fh:
                report = camt053_import(file=fh, actor=Actor.system("bank-import"))
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        for o in report.outcomes:
            case = f" → {o.case_reference}" if o.case_reference else ""
            self.stdout.write(f"  {o.statement_id} #{o.position} {o.amount} {o.outcome} ({o.detail}){case}  [{o.key}]")
        self.stdout.write(
            f"statements {', '.join(report.statements)}: matched {len(report.matched)}, "
            f"reconciled {len(report.reconciled)}, "
            f"unmatched {len(report.unmatched)}, duplicates {len(report.duplicates)}, "
            f"skipped {len(report.skipped)}"
        )
