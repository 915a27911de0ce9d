"""``relance audit verify``: check the hash chain end to end; exit 1 naming the first broken row."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relance.audit.services import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["verify"])

    def handle(self, *args: Any, **options: Any) -> None:
        count, broken = audit_verify()
        if broken is not None:
            raise CommandError(
                f"audit chain BROKEN at row seq={broken.seq}: {broken.reason}; {count} rows verified before it"
            )
        self.stdout.write(f"audit chain OK: {count} events verified")
