"""The thin path in a real browser: API → engine → SMTP → debtor portal → back office, over HTTP.

Headless Debian Chromium, driven by Playwright, against the real pages served by pytest-django's
``live_server``. Elements are found by id or name, never by visible text, so the journey holds
whatever the UI language is.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from relance.cases.models import Case
from relance.comms.services import outbox_dispatch
from relance.strategies.engine import engine_tick
from relance.tenancy.models import User
from support import api_claim_payload, browser_log_in, chromium_path

# Playwright's sync API runs an event loop in the test thread; the ORM calls made by the test
# itself (engine, outbox, assertions) are still synchronous and safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None, reason="no Chromium: install Debian's chromium or set RELANCE_CHROMIUM"
    ),
]

PAYLOAD = api_claim_payload("ORDER-2001")


def weekday_noon():
    now = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    while now.weekday() >= 5:
        now += timedelta(days=1)
    return now


def api_place_claim(base_url: str, secret: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 - http to the loopback live server
        f"{base_url}/api/v1/claims",
        data=json.dumps(PAYLOAD).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json", "X-API-Key": secret},
    )
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - same
        assert response.status == 201
        return json.loads(response.read())


def mail_text(message: object) -> str:
    for part in message.walk():  # type: ignore[attr-defined]
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part in the e-mail")


def portal_link_from(text: str, base_url: str) -> str:
    match = re.search(r"https?://\S+?/p/\S+?/(?=\s|$)", text)
    assert match, text
    link = urlsplit(match.group(0))
    return f"{base_url}{link.path}"


def log_in(page: object, base_url: str, username: str) -> None:
    """Password, then the TOTP code for staff (issue 6), through the real pages."""
    browser_log_in(page, base_url, User.objects.get(username=username))


def debtor_link(live_server, world, smtp_server, settings) -> tuple[str, Case]:
    """A claim placed through the real API, decided by the engine and mailed over real SMTP."""
    settings.PUBLIC_BASE_URL = live_server.url
    body = api_place_claim(live_server.url, world.api_secret)
    case = Case.objects.get(pk=body["case_id"])
    now = weekday_noon() + timedelta(days=1)
    assert engine_tick(now=now).contacts["email"] == 1
    assert outbox_dispatch(now=now).sent["email"] == 1
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["To"] == PAYLOAD["debtor"]["email"]
    return portal_link_from(mail_text(smtp_server.messages[0]), live_server.url), case


@pytest.mark.usefixtures("transactional_db")
def test_claim_to_paid_in_the_browser(live_server, world, smtp_server, settings, new_page):
    link, case = debtor_link(live_server, world, smtp_server, settings)

    # Debtor (a French browser): the personal link shows nothing personal until the postcode is confirmed.
    debtor = new_page(locale="fr-FR")
    debtor.goto(link)
    expect(debtor.locator("#id_postcode")).to_be_visible()
    content = debtor.content()
    for personal in ("Jeanne", "Martin", "Lilas", "33000", "89,90", "89.90", case.reference):
        assert personal not in content
    debtor.fill("#id_postcode", "75001")
    debtor.click("#verify")
    expect(debtor.locator("#postcode-error")).to_be_visible()
    expect(debtor.locator("#id_postcode")).to_have_attribute("aria-invalid", "true")
    assert "Jeanne" not in debtor.content()

    debtor.fill("#id_postcode", "33 000")
    debtor.click("#verify")
    debtor.wait_for_url(re.compile(r"/dossier/$"))
    expect(debtor.locator("#outstanding")).to_contain_text(re.compile(r"89[,.]90"))
    expect(debtor.locator("body")).to_contain_text(case.reference)
    expect(debtor.locator("#case-status")).to_have_class(re.compile(r"\bnew\b|\bactive\b"))

    expect(debtor.locator("#pay-sandbox")).to_be_visible()
    expect(debtor.locator("#pay")).to_have_class(re.compile(r"\bsandbox\b"))
    expect(debtor.locator("#pay strong").first).to_be_visible()  # the sandbox warning, in any language
    expect(debtor.locator("#id_amount")).to_have_value(re.compile(r"^89[,.]90$"))
    debtor.fill("#id_amount", "89,90")
    debtor.click("#pay-sandbox")
    expect(debtor.locator("#paid-message")).to_be_visible()
    expect(debtor.locator("#case-status")).to_have_class(re.compile(r"\bpaid\b"))
    expect(debtor.locator("#outstanding")).to_contain_text(re.compile(r"\b0[,.]00"))
    expect(debtor.locator("#pay-sandbox")).to_have_count(0)
    case.refresh_from_db()
    assert case.status == "paid"

    # Creditor user: the case is listed as paid.
    creditor = new_page()
    log_in(creditor, live_server.url, world.creditor_user.username)
    creditor.goto(f"{live_server.url}/bo/?status=paid")
    row = creditor.locator(f'#cases tr[data-case="{case.pk}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text(case.reference)
    expect(row.locator(".badge")).to_have_class(re.compile(r"\bpaid\b"))

    # Agent, in a fresh context: the case page and its timeline.
    agent = new_page()
    log_in(agent, live_server.url, world.agent.username)
    agent.goto(f"{live_server.url}/bo/")
    agent.click(f'#cases tr[data-case="{case.pk}"] a')
    agent.wait_for_url(re.compile(rf"/bo/cases/{case.pk}/$"))
    expect(agent.locator("#case-status")).to_have_class(re.compile(r"\bpaid\b"))
    timeline = agent.locator("#timeline")
    expect(timeline).to_be_visible()
    for verb in ("claim.created", "action.sent", "payment.received"):
        expect(timeline.locator(f'li[data-verb="{verb}"]').first).to_be_visible()


@pytest.mark.usefixtures("transactional_db")
def test_verify_page_works_with_the_keyboard_alone(live_server, world, smtp_server, settings, new_page):
    link, _ = debtor_link(live_server, world, smtp_server, settings)
    page = new_page()
    page.goto(link)

    lang = page.locator("html").get_attribute("lang")
    assert lang and re.fullmatch(r"[a-z]{2}(-[A-Za-z]{2})?", lang), lang
    assert page.title().strip()
    field = page.locator("#id_postcode")
    label = page.locator('label[for="id_postcode"]')
    expect(label).to_be_visible()
    assert label.inner_text().strip()
    expect(field).to_have_accessible_name(re.compile(r"\S"))

    # Tab from the top of the page, through the header, to the field and then the button.
    reached = []
    for _ in range(15):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement && document.activeElement.id"))
        if reached[-1] == "id_postcode":
            break
    assert reached[-1] == "id_postcode", reached
    page.keyboard.type("75001")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "verify"
    page.keyboard.press("Enter")
    expect(page.locator("#postcode-error")).to_be_visible()

    # Enter in the field submits the form too; the right postcode opens the case.
    page.focus("#id_postcode")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("33000")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dossier/$"))
    expect(page.locator("#outstanding")).to_be_visible()
