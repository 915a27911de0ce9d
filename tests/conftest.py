"""Shared fixtures: a small world built through the real services, a real SMTP server, a browser."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from relance.intake.validate import ClaimData, DebtorData
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, ApiKey, Creditor, User
from relance.tenancy.services import api_key_create

PASSWORD = "correct-horse-battery-staple"


@dataclass
class World:
    agency: Agency
    creditor: Creditor
    other_creditor: Creditor
    agent: User
    creditor_user: User
    other_creditor_user: User
    api_key: ApiKey
    api_secret: str
    other_api_secret: str


def claim_data(
    ref: str = "INV-1", amount: str = "120.50", email: str = "jeanne.martin@example.fr", **debtor: str
) -> ClaimData:
    today = date.today()
    fields = {
        "first_name": "Jeanne",
        "last_name": "Martin",
        "email": email,
        "phone": "06 12 34 56 78",
        "address_line1": "3 rue des Lilas",
        "postcode": "33000",
        "city": "Bordeaux",
        **debtor,
    }
    return ClaimData(
        external_ref=ref,
        invoice_number=f"F-{ref}",
        invoice_date=today - timedelta(days=40),
        due_date=today - timedelta(days=10),
        amount=amount,
        currency="EUR",
        debtor=DebtorData(**fields),
    )


@pytest.fixture
def world(db: None) -> World:
    system = Actor.system("tests")
    agency = Agency.objects.create(legal_name="Recouvrement Test SAS", address="1 place Test, 75001 Paris")
    creditor = Creditor.objects.create(
        agency=agency, slug="shop", legal_name="Shop SAS", address="2 rue du Commerce, 75002 Paris", mode="B"
    )
    other = Creditor.objects.create(agency=agency, slug="other", legal_name="Other SARL", mode="A")
    agent = User.objects.create_user(username="agent", password=PASSWORD, role=User.Role.AGENT, agency=agency)
    cu = User.objects.create_user(
        username="shopuser", password=PASSWORD, role=User.Role.CREDITOR_ADMIN, agency=agency, creditor=creditor
    )
    ou = User.objects.create_user(
        username="otheruser", password=PASSWORD, role=User.Role.CREDITOR_ADMIN, agency=agency, creditor=other
    )
    key, secret = api_key_create(creditor=creditor, name="test", scopes=["read", "intake"], actor=system)
    _, other_secret = api_key_create(creditor=other, name="other", scopes=["read", "intake"], actor=system)
    return World(agency, creditor, other, agent, cu, ou, key, secret, other_secret)


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list


@pytest.fixture
def smtp_server(settings: object) -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback; Django sends to it through its SMTP backend."""
    received: list = []

    class Collect(Message):
        def handle_message(self, message: object) -> None:
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # type: ignore[attr-defined]
        settings.EMAIL_HOST = "127.0.0.1"  # type: ignore[attr-defined]
        settings.EMAIL_PORT = port  # type: ignore[attr-defined]
        settings.EMAIL_USE_TLS = False  # type: ignore[attr-defined]
        yield SmtpServer("127.0.0.1", port, received)
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium_path() -> str | None:
    path = os.environ.get("RELANCE_CHROMIUM") or "/usr/bin/chromium"
    return path if os.path.exists(path) else None


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
