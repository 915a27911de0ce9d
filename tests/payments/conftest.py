"""Fixtures for the payment tests: cases opened through the real intake service."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from relance.intake.services import Placed, claim_place
from relance.tenancy.actors import Actor

_ROOT_CONFTEST = str(Path(__file__).resolve().parents[1] / "conftest.py")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The ``world`` users need a password hash, not a slow one (autouse: runs before ``world``)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def claim_data(request):
    """tests/conftest.py's ``claim_data``: every conftest imports as ``conftest``, so ask pytest for it."""
    return request.config.pluginmanager.get_plugin(_ROOT_CONFTEST).claim_data


@pytest.fixture
def place(world, claim_data):
    """Place one claim for ``world.creditor`` (or ``creditor``), due ``due_days_ago`` days ago."""

    def _place(ref="INV-1", amount="120.50", *, creditor=None, due_days_ago=10, **debtor) -> Placed:
        data = replace(claim_data(ref, amount, **debtor), due_date=date.today() - timedelta(days=due_days_ago))
        return claim_place(creditor=creditor or world.creditor, data=data, actor=Actor.system("tests"))

    return _place
