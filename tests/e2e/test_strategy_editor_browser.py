"""The strategy editor in a real browser (issue 4): an invalid document shows its line, a valid one
saves a new version, the dry run shows counts per step and channel. Headless Debian Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from relance.strategies.models import Strategy
from relance.tenancy.models import User
from support import CHROMIUM_ARGS, PASSWORD, browser_log_in, chromium_path, totp_device

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None, reason="no Chromium: install Debian's chromium or set RELANCE_CHROMIUM"
    ),
]


@pytest.fixture
def page(live_server) -> Iterator[object]:
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


def test_edit_check_save_and_dry_run(live_server, world, place, page):
    boss = User.objects.create_user(
        username="boss", password=PASSWORD, role=User.Role.AGENCY_ADMIN, agency=world.agency
    )
    totp_device(boss)
    for n in range(3):
        place(f"INV-{n}", "80.00", email=f"d{n}@example.fr", last_name=f"N{n}")
    base = live_server.url
    browser_log_in(page, base, boss)  # password, then the TOTP code (staff)

    page.click("#nav-strategies")
    page.click("#strategy-default a")
    source = page.input_value("#id_source")
    broken = source.replace("action: email", "action: fax", 1)
    line = next(i for i, text in enumerate(broken.splitlines(), start=1) if "fax" in text)
    page.fill("#id_source", broken)
    page.click("#save")
    expect(page.locator("#error")).to_have_attribute("data-line", str(line))
    expect(page.locator("#error")).to_contain_text(f"{line}")
    assert Strategy.objects.filter(key="default").count() == 1

    page.fill("#id_source", source.replace("after_days: 7", "after_days: 6"))
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible()
    assert list(Strategy.objects.filter(key="default").values_list("version", flat=True).order_by("version")) == [1, 2]

    page.click("#dry-run")
    expect(page.locator("#dry-run-result")).to_be_visible()
    first_row = page.locator("#dry-run-steps tbody tr").first
    expect(first_row).to_contain_text("email")
    expect(page.locator("#dry-run-channels")).to_contain_text("9")  # 3 cases × 3 e-mails in 30 days
