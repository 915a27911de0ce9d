#!/usr/bin/env python3
"""Screenshots of a running Relance for the README, taken with Playwright and the system Chromium.

Usage, against a fresh demo in a scratch folder::

    export RELANCE_VAR_DIR=/tmp/shots && rm -rf /tmp/shots
    relance migrate -v0 && relance demo --seed 42 && relance engine tick
    relance run --port 8765 &
    python scripts/screenshots.py --url http://127.0.0.1:8765 \\
        --portal-link 'http://127.0.0.1:8765/p/…/' --postcode 50982

It writes docs/screenshots/backoffice-cases.png (the agent's case list), backoffice-case.png (a case
page with its timeline), outbox-message.png (a message as it was sent) and portal-case.png (the
debtor portal after verification, on a 390×844 phone screen).

The portal link and postcode are printed in the banner of ``relance run``. Without them, the
script finds a case itself through the Django ORM, which then needs the server's RELANCE_VAR_DIR
(or DATABASE_URL). The outbox is empty when the demo is made outside contact hours (evenings,
week-ends): ``--engine-at-noon`` then runs one engine tick and one outbox dispatch, through the ORM,
as if it were noon on the next weekday, so that there are messages to show.

Chromium comes from the system (RELANCE_CHROMIUM, else /usr/bin/chromium); never from
``playwright install``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
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
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    path = os.environ.get("RELANCE_CHROMIUM") or "/usr/bin/chromium"
    if not os.path.exists(path):
        sys.exit(f"screenshots: no Chromium at {path}; install Debian's chromium or set RELANCE_CHROMIUM")
    return path


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relance.config.settings")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # we only read, outside Playwright's loop
    import django  # noqa: PLC0415 - only when the ORM is needed

    django.setup()


def engine_at_noon() -> None:
    """One engine tick and one outbox dispatch as if it were noon (Paris) on the next weekday."""
    django_setup()
    from relance.comms.services import outbox_dispatch  # noqa: PLC0415
    from relance.strategies.engine import engine_tick  # noqa: PLC0415

    now = datetime.now(ZoneInfo("Europe/Paris")).replace(hour=12, minute=0, second=0, microsecond=0)
    now += timedelta(days=1)
    while now.weekday() >= 5:
        now += timedelta(days=1)
    print(f"screenshots: engine {engine_tick(now=now)}")
    sent = outbox_dispatch(now=now)
    print(f"screenshots: dispatch sent {dict(sent.sent)}")


def portal_case_from_orm(base_url: str) -> tuple[str, str]:
    """A debtor portal link (pointing at ``base_url``) and its postcode, for a case with a sent e-mail."""
    django_setup()
    from django.conf import settings  # noqa: PLC0415

    from relance.cases.links import portal_url  # noqa: PLC0415
    from relance.cases.models import Case  # noqa: PLC0415

    cases = Case.objects.filter(status__in=["new", "active"]).select_related("debtor").order_by("pk")
    case = cases.filter(actions__status="sent").first() or cases.first()
    if case is None:
        sys.exit("screenshots: no open case in the database; run `relance demo` first")
    link = portal_url(case_id=case.pk, reference=case.reference).replace(settings.PUBLIC_BASE_URL, base_url)
    return link, case.debtor.postcode


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/bo/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login")
    expect(page.locator("#cases")).to_be_visible()


def shoot(page: Page, path: Path, *, full_page: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshots: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def open_sent_message(page: Page, base_url: str, max_pages: int = 200) -> None:
    """Walk the outbox (newest first) to the first message that has been sent, and open it."""
    page.goto(f"{base_url}/bo/outbox/")
    for _ in range(max_pages):
        message = page.locator("#outbox tbody a[href*='/bo/outbox/']").first
        if message.count():
            message.click()
            return
        following = page.locator("main a[href*='page=']").filter(has_text="→")
        if following.count() == 0:
            break
        following.first.click()
        page.wait_for_load_state()
    sys.exit("screenshots: the outbox has no sent message; try --engine-at-noon (see --help)")


def backoffice(browser: Browser, args: argparse.Namespace, out: Path) -> None:
    context = browser.new_context(viewport=DESKTOP, locale=args.locale, device_scale_factor=1)
    page = context.new_page()
    log_in(page, args.url, args.agent, args.password)
    shoot(page, out / "backoffice-cases.png")

    open_sent_message(page, args.url)
    expect(page.locator("#message-body")).to_be_visible()
    shoot(page, out / "outbox-message.png", full_page=True)

    page.locator("main a[href*='/bo/cases/']").first.click()
    expect(page.locator("#timeline")).to_be_visible()
    shoot(page, out / "backoffice-case.png", full_page=True)
    context.close()


def portal(browser: Browser, args: argparse.Namespace, out: Path) -> None:
    link, postcode = args.portal_link, args.postcode
    if not link or not postcode:
        link, postcode = portal_case_from_orm(args.url)
    link = re.sub(r"^https?://[^/]+", args.url, link)  # the server may run elsewhere than PUBLIC_BASE_URL
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale=args.locale
    )
    page = context.new_page()
    page.goto(link)
    page.fill("#id_postcode", postcode)
    page.click("#verify")
    expect(page.locator("#outstanding")).to_be_visible()
    shoot(page, out / "portal-case.png", full_page=True)
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running server")
    parser.add_argument("--agent", default="agent", help="agency agent login")
    parser.add_argument("--creditor", default="maison", help="creditor user login (checked to log in)")
    parser.add_argument("--password", default="relance-demo")
    parser.add_argument("--portal-link", help="a debtor portal link, as printed by `relance run`")
    parser.add_argument("--postcode", help="the postcode that verifies --portal-link")
    parser.add_argument("--locale", default="en-GB", help="browser language, e.g. fr-FR")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--engine-at-noon", action="store_true", help="tick the engine and send as if at noon on the next weekday"
    )
    args = parser.parse_args()
    args.url = args.url.rstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.engine_at_noon:
        engine_at_noon()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            log_in(context.new_page(), args.url, args.creditor, args.password)  # the creditor login works too
            context.close()
            backoffice(browser, args, args.out)
            portal(browser, args, args.out)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
