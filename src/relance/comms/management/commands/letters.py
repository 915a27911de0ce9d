"""``relance letters batch --day YYYY-MM-DD`` and ``relance letters returned --action ID --reason …``.

``batch`` writes the day's print batch (one PDF + a CSV manifest) for the printing house and prints
where the files are; ``returned`` records a postal return (NPAI) reported by the printing house.
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import date
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from relance.comms.letters import letter_print_batch, letter_returned
from relance.comms.models import Action
from relance.core.errors import DomainError
from relance.tenancy.actors import Actor


def _where(name: str) -> str:
    try:
        return str(default_storage.path(name))
    except NotImplementedError:  # remote storage: the storage name is the address
        return name


class Command(BaseCommand):
    help = "Letters: build a day's print batch, or record a postal return (NPAI)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["batch", "returned"])
        parser.add_argument("--day", type=date.fromisoformat, help="batch: the day (YYYY-MM-DD); today by default")
        parser.add_argument("--action", type=int, help="returned: the letter's action id")
        parser.add_argument("--reason", default="NPAI", help="returned: why La Poste returned it")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["what"] == "batch":
                day = options["day"] or timezone.localdate()
                pdf, manifest = letter_print_batch(day=day)
                self.stdout.write(f"letters {day:%Y-%m-%d}: {_where(pdf) if pdf else 'no letters (no PDF)'}")
                self.stdout.write(f"manifest: {_where(manifest)}")
                return
            if options["action"] is None:
                raise CommandError("returned needs --action ID")
            try:
                action = Action.objects.get(pk=options["action"], channel=Action.Channel.LETTER)
            except Action.DoesNotExist:
                raise CommandError(f"no letter action {options['action']}") from None
            letter_returned(action=action, reason=options["reason"], actor=Actor.system("letters-cli"))
            self.stdout.write(f"action {action.pk}: returned ({options['reason']}); debtor's address flagged")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
