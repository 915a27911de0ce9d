"""``relance sepa``: SEPA direct debits for instalment plans.

- ``relance sepa batch [--out DIR]``: a pain.008.001.08 file per agency for the instalments due in
  the next days (FRST, then RCUR), written to DIR (default: the current folder), to hand to the bank;
- ``relance sepa settle``: collections whose date has come become payments (ledger, allocation);
- ``relance sepa returns FILE``: import a pain.002 (rejects) or camt.054 (returns) file: instalments
  missed, settled payments reversed;
- ``relance sepa review``: promises kept/broken, instalments paid/missed, plans completed/broken;
- ``relance sepa setup --agency ID --ics FR72ZZZ123456 [--bic BIC]``: the agency's SEPA creditor identifier;
- ``relance sepa policy --creditor SLUG [--max-months N] [--min-instalment 20.00] …``: a creditor's policy.
"""

from __future__ import annotations

from argparse import ArgumentParser
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relance.core.errors import DomainError
from relance.core.money import Money, MoneyError
from relance.payments.arrangement_models import SepaCreditor
from relance.payments.arrangements import (
    arrangement_policy_set,
    arrangements_review,
    sepa_batch_create,
    sepa_creditor_set,
    sepa_rtransactions_import,
    sepa_settle,
)
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor

_POLICY_INTS = (
    "max_months",
    "first_due_within_days",
    "promise_within_days",
    "promise_min_percent",
    "grace_days",
    "hardship_share_percent",
)


class Command(BaseCommand):
    help = "SEPA direct debits of instalment plans: pain.008 files, settlement, R-transactions, review."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("what", choices=["batch", "settle", "returns", "review", "setup", "policy"])
        parser.add_argument("file", nargs="?", help="returns: the pain.002 or camt.054 file")
        parser.add_argument("--out", default=".", help="batch: folder for the pain.008 files")
        parser.add_argument("--horizon", type=int, default=5, help="batch: instalments due within N days")
        parser.add_argument("--agency", type=int, help="setup: the agency's id")
        parser.add_argument("--ics", help="setup: SEPA creditor identifier, e.g. FR72ZZZ123456")
        parser.add_argument("--bic", default="", help="setup: BIC of the trust account (optional)")
        parser.add_argument("--creditor", help="policy: the creditor's slug")
        for name in _POLICY_INTS:
            parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
        parser.add_argument("--min-instalment", help="policy: smallest monthly payment, e.g. 20.00")
        parser.add_argument("--allowance-per-dependant", help="policy: hardship allowance per dependant, e.g. 300")

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

    def _setup(self, actor: Actor, options: dict[str, Any]) -> None:
        agency = Agency.objects.filter(pk=options["agency"]).first() if options["agency"] else None
        if agency is None or not options["ics"]:
            raise CommandError("Give --agency ID and --ics.")
        row = sepa_creditor_set(agency=agency, creditor_identifier=options["ics"], bic=options["bic"], actor=actor)
        self.stdout.write(f"{agency.legal_name}: ICS {row.creditor_identifier}")

    def _policy(self, actor: Actor, options: dict[str, Any]) -> None:
        creditor = Creditor.objects.filter(slug=options["creditor"] or "").first()
        if creditor is None:
            raise CommandError("Give --creditor SLUG of an existing creditor.")
        values = {name: options[name] for name in _POLICY_INTS if options.get(name) is not None}
        for option, field in (
            ("min_instalment", "min_instalment_minor"),
            ("allowance_per_dependant", "allowance_per_dependant_minor"),
        ):
            if options.get(option):
                try:
                    values[field] = Money.parse(options[option], creditor.default_currency).minor
                except MoneyError as exc:
                    raise CommandError(f"--{option.replace('_', '-')}: {exc}") from None
        policy = arrangement_policy_set(creditor=creditor, actor=actor, **values)
        self.stdout.write(
            f"{creditor.slug}: "
            + ", ".join(
                f"{f} {getattr(policy, f)}"
                for f in (*_POLICY_INTS, "min_instalment_minor", "allowance_per_dependant_minor")
            )
        )

    def _review(self, actor: Actor, options: dict[str, Any]) -> None:
        report = arrangements_review(actor=actor)
        self.stdout.write(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in asdict(report).items()))
