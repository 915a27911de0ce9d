"""Security journeys in headless Chromium (issue 6): log-in with 2FA, enrolment, API key and webhook.

The TOTP codes are computed as a phone app would, with pyotp, from the device's secret (or from the
secret the enrolment page shows). The webhook receiver is a real HTTP server on loopback.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

import pyotp
import pytest

from relance.api.signing import verify
from relance.api.webhooks import webhooks_run
from relance.tenancy.models import User
from support import (
    PASSWORD,
    WebhookReceiver,
    api_claim_payload,
    browser_log_in,
    chromium_path,
    totp_device,
)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None, reason="no Chromium: install Debian's chromium or set RELANCE_CHROMIUM"
    ),
    pytest.mark.usefixtures("transactional_db"),
]


@pytest.fixture
def page(new_page):
    return new_page()


def test_an_agent_logs_in_with_password_and_a_totp_code(live_server, world, page):
    totp_device(world.agent)  # the agent's phone
    page.goto(f"{live_server.url}/bo/login/")
    page.fill("#id_username", "agent")
    page.fill("#id_password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r"/bo/login/verify/"))
    page.goto(f"{live_server.url}/bo/")  # nothing opens before the code
    page.wait_for_url(re.compile(r"/bo/login/verify/"))
    page.fill("#id_code", "000000")
    page.click("#verify-code")
    expect(page.locator("#code-error")).to_be_visible()
    expect(page.locator("#id_code")).to_have_attribute("aria-invalid", "true")
    browser_log_in(page, live_server.url, world.agent)  # password again, then the right code
    expect(page.locator("#cases")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("agent")


def test_a_new_supervisor_sets_up_two_factor_by_scanning_the_page(live_server, world, page):
    User.objects.create_user(username="sam", password=PASSWORD, role=User.Role.SUPERVISOR, agency=world.agency)
    page.goto(f"{live_server.url}/bo/login/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r"/bo/security/"))
    qr = page.locator("#qr")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert page.evaluate("document.getElementById('qr').naturalWidth") > 0  # rendered, CSP allowing it
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#id_code", pyotp.TOTP(secret).now())
    page.click("#enrol-confirm")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("#continue")
    page.wait_for_url(re.compile(r"/bo/$"))
    expect(page.locator("#cases")).to_be_visible()


def test_a_creditor_creates_an_api_key_and_a_webhook_and_receives_a_signed_event(live_server, world, page):
    browser_log_in(page, live_server.url, world.creditor_user)

    page.goto(f"{live_server.url}/bo/api-keys/")
    page.fill("#id_name", "Boutique")
    page.check('input[name="scopes"][value="intake"]')
    page.check('input[name="scopes"][value="read"]')
    page.click("#api-key-create")
    key = page.locator("#api-key-secret").inner_text().strip()
    assert key.startswith("rl_")
    page.reload()  # after post/redirect/get: nothing is created again, and the key is not shown again
    expect(page.locator("#api-key-secret")).to_have_count(0)
    expect(page.locator("#api-keys tbody tr")).to_have_count(2)  # the fixture's key and this one

    with WebhookReceiver() as receiver:
        page.goto(f"{live_server.url}/bo/webhooks/")
        page.fill("#id_url", receiver.url)
        page.check('input[name="event_types"][value="case.created"]')
        page.click("#webhook-create")
        secret = page.locator("#webhook-secret").inner_text().strip()
        expect(page.locator("#endpoints")).to_contain_text(receiver.url)

        request = urllib.request.Request(  # noqa: S310 - the loopback live server
            f"{live_server.url}/api/v1/claims",
            data=json.dumps(api_claim_payload("WEB-1")).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-API-Key": key},
        )
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            case = json.loads(response.read())
        webhooks_run()  # one pass of the worker the scheduler runs

        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert verify(secret=secret, header=headers["relance-signature"], body=body, now=int(time.time()))
        event = json.loads(body)
        assert event["type"] == "case.created"
        assert event["data"]["reference"] == case["case_reference"]
        assert headers["relance-event-id"] == event["id"]

    page.goto(f"{live_server.url}/bo/webhooks/deliveries/")
    expect(page.locator("#deliveries tbody tr .badge.succeeded")).to_have_count(1)
