"""``relance second_factor_reset USERNAME``: remove a user's authenticator and recovery codes (lost phone).

The user sets up a new authenticator at their next log-in (staff must; creditor users when required).
The removal is audited under the operator's name given with ``--by``.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from relance.audit.services import audit_record
from relance.tenancy.actors import Actor
from relance.tenancy.models import User


class Command(BaseCommand):
    help = "Remove a user's two-factor devices so that they enrol again (lost phone)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--by", required=True, help="who asks for it (kept in the audit trail)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        with transaction.atomic():
            removed = (
                TOTPDevice.objects.filter(user=user).delete()[0] + StaticDevice.objects.filter(user=user).delete()[0]
            )
            audit_record(
                actor=Actor.system(f"cli:{options['by']}"[:60]),
                verb="user.second_factor_reset",
                subject=user,
                data={"removed": removed},
            )
        self.stdout.write(f"{user.username}: {removed} device(s) removed; they enrol again at their next log-in.")
