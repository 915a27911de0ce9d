"""Shared fixtures: a small world built through the real services, a real SMTP server, a browser."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from django.test import Client

from relance.intake.services import Placed, claim_place
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, ApiKey, Creditor, User
from relance.tenancy.services import api_key_create
from support import CHROMIUM_ARGS, PASSWORD, chromium_path, claim_data, free_port, second_factor_pass


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
        settings.EMAIL_BACKEND = "relance.comms.mail.HandoverSMTPBackend"  # type: ignore[attr-defined]
        settings.EMAIL_HOST = "127.0.0.1"  # type: ignore[attr-defined]
        settings.EMAIL_PORT = port  # type: ignore[attr-defined]
        settings.EMAIL_USE_TLS = False  # type: ignore[attr-defined]
        yield SmtpServer("127.0.0.1", port, received)
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Test users need a password hash, not a slow one (argon2 stays the production hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(name="claim_data")
def claim_data_fixture():
    """``support.claim_data`` as a fixture."""
    return claim_data


@pytest.fixture
def password() -> str:
    """The ``world`` users' password."""
    return PASSWORD


@pytest.fixture
def place(world):
    """Place one claim for ``world.creditor`` (or ``creditor``), due ``due_days_ago`` days ago."""

    def _place(ref="INV-1", amount="120.50", *, creditor=None, due_days_ago=10, **debtor) -> Placed:
        data = replace(claim_data(ref, amount, **debtor), due_date=date.today() - timedelta(days=due_days_ago))
        return claim_place(creditor=creditor or world.creditor, data=data, actor=Actor.system("tests"))

    return _place


@pytest.fixture(autouse=True)
def _force_login_includes_the_second_factor(monkeypatch):
    """``client.force_login(user)`` logs a user fully in, second factor included (issue 6).

    Like the password, the TOTP step is skipped on purpose by ``force_login``; tests of the log-in
    itself post to the real pages (tests/backoffice/test_security.py, tests/e2e).
    """
    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        second_factor_pass(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


# --- headless Chromium (Debian's, through Playwright) for the browser journeys in tests/e2e ----------

BROWSER_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module; the journeys skip when no Chromium is installed."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: install Debian's chromium or set RELANCE_CHROMIUM")
    with playwright_sync.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: object) -> Iterator[object]:
    """Pages, each in a fresh context (its own cookies), closed at the end of the test."""
    contexts = []

    def make(**options: object) -> object:
        context = browser.new_context(**options)  # type: ignore[attr-defined]
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
