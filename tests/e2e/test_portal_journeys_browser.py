"""Debtor and creditor journeys of issues 5 and 6 in a real browser, each portal page checked by axe-core.

Headless Debian Chromium through Playwright against ``live_server``. axe-core comes from the pinned
``axe-playwright-python`` package (it bundles ``axe.min.js``; nothing is downloaded at run time): no
portal page may have a serious or critical violation. Card payment goes to a Stripe API on loopback
(recorded payloads) and is confirmed by a signed webhook, as in production.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from relance.cases.links import portal_token
from relance.cases.selectors import case_outstanding_minor
from relance.payments.models import Dispute, Payment, ReturnPolicy
from relance.payments.psp.stripe import stripe_signature_header
from support import PASSWORD, FakeProviderApi, chromium_path

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

playwright_sync = pytest.importorskip("playwright.sync_api")
axe_sync = pytest.importorskip("axe_playwright_python.sync_playwright")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None, reason="no Chromium: install Debian's chromium or set RELANCE_CHROMIUM"
    ),
]

WHSEC = "whsec_e2e_secret"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
BLOCKING = {"serious", "critical"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


AXE = None


def assert_accessible(page: object, name: str) -> None:
    """axe-core on the current page: no serious or critical violation."""
    global AXE  # noqa: PLW0603 - one parsed copy of axe.min.js for the module
    AXE = AXE or axe_sync.Axe()
    results = AXE.run(page)
    blocking = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING
    ]
    assert not blocking, f"{name}: {blocking}"


def link(base: str, case) -> str:
    return f"{base}/p/{portal_token(case_id=case.pk, reference=case.reference)}/"


def verify(page: object, url: str, postcode: str = "33000") -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.fill("#id_postcode", postcode)  # type: ignore[attr-defined]
    page.click("#verify")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/dossier/$"))  # type: ignore[attr-defined]


def post_webhook(base: str, event: dict) -> str:
    body = json.dumps(event).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback live server
        f"{base}/hooks/psp/stripe",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_signature_header(secret=WHSEC, payload=body, timestamp=int(time.time())),
        },
    )
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
        return response.read().decode()


@pytest.mark.usefixtures("transactional_db")
def test_pay_in_full_by_card_every_page_accessible(live_server, place, settings, new_page):
    fake = FakeProviderApi()
    try:
        settings.RELANCE_CARD_PSP = "stripe"
        settings.STRIPE_SECRET_KEY = "sk_test_e2e"
        settings.STRIPE_WEBHOOK_SECRET = WHSEC
        settings.STRIPE_API_BASE = fake.url
        settings.PUBLIC_BASE_URL = live_server.url
        fake.routes[("POST", "/v1/checkout/sessions")] = (
            200,
            {"id": "cs_test_e2e", "object": "checkout.session", "url": f"{fake.url}/c/pay/cs_test_e2e"},
        )
        fake.routes[("GET", "/c/pay/cs_test_e2e")] = (200, {"page": "Stripe Checkout (recorded)"})
        case = place("INV-1", "120.50").case
        url = link(live_server.url, case)

        page = new_page(locale="fr-FR")
        page.goto(url)
        assert_accessible(page, "verify")
        verify(page, url)
        assert_accessible(page, "case")
        page.click("#pay-card-link")
        expect(page.locator("#id_amount")).to_have_value(re.compile(r"^120[,.]50$"))
        assert_accessible(page, "card amount")
        page.click("#card-continue")
        expect(page.locator("#card-go")).to_be_visible()
        assert_accessible(page, "card go")
        page.click("#card-go")
        page.wait_for_url(re.compile(r"/c/pay/cs_test_e2e$"))

        # Stripe confirms by a signed webhook; the debtor comes back to the portal.
        event = {
            "id": "evt_e2e_1",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": "cs_test_e2e",
                    "object": "checkout.session",
                    "amount_total": 12050,
                    "currency": "eur",
                    "metadata": {"case_id": str(case.pk), "case_reference": case.reference},
                    "payment_intent": "pi_e2e",
                    "payment_status": "paid",
                    "status": "complete",
                }
            },
        }
        assert post_webhook(live_server.url, event) == "applied"
        assert post_webhook(live_server.url, event) == "duplicate"
        page.goto(f"{url}pay/return/")
        page.wait_for_url(re.compile(r"/dossier/$"))
        expect(page.locator("#case-status")).to_have_class(re.compile(r"\bpaid\b"))
        expect(page.locator("#receipts a").first).to_be_visible()
        assert_accessible(page, "case paid")
        with page.expect_download() as download:
            page.locator("#receipts a").first.click()
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")
        assert Payment.objects.filter(case=case, method="card").count() == 1
    finally:
        fake.close()


@pytest.mark.usefixtures("transactional_db")
def test_dispute_with_a_file_then_the_creditor_answers_with_a_file(  # noqa: PLR0917 - pytest fixtures
    live_server, place, world, smtp_server, settings, new_page, tmp_path
):
    settings.PUBLIC_BASE_URL = live_server.url
    case = place("INV-1", "120.50").case
    url = link(live_server.url, case)
    ticket = tmp_path / "ticket.pdf"
    ticket.write_bytes(PDF)

    debtor = new_page(locale="fr-FR")
    verify(debtor, url)
    debtor.click("#dispute-link")
    assert_accessible(debtor, "dispute")
    debtor.check("#id_reason_0")
    debtor.fill("#id_statement", "Le colis n'est jamais arrivé.")
    debtor.set_input_files("#id_files", str(ticket))
    debtor.click("#dispute-submit")
    debtor.wait_for_url(re.compile(r"/dossier/$"))
    expect(debtor.locator("#case-status")).to_have_class(re.compile(r"\bdisputed\b"))
    expect(debtor.locator("#disputes a")).to_have_count(1)
    dispute = Dispute.objects.get(case=case)

    creditor = new_page()
    creditor.goto(f"{live_server.url}/bo/login/")
    creditor.fill("#id_username", world.creditor_user.username)
    creditor.fill("#id_password", PASSWORD)
    creditor.click("#login")
    creditor.wait_for_url(re.compile(r"/bo/(\?.*)?$"))
    creditor.goto(f"{live_server.url}/bo/notifications/")
    expect(creditor.locator('#notifications tr[data-kind="dispute.opened"]')).to_have_count(1)
    creditor.goto(f"{live_server.url}/bo/cases/{case.pk}/")
    proof = tmp_path / "proof-of-delivery.pdf"
    proof.write_bytes(PDF + b"% signed\n")
    creditor.check(f"#decision-reject-{dispute.pk}")
    creditor.fill(f"#note-{dispute.pk}", "Livré le 3 novembre, signé.")
    creditor.set_input_files(f"#files-{dispute.pk}", str(proof))
    creditor.click(f"#answer-{dispute.pk}")
    expect(creditor.locator("#case-status")).to_have_class(re.compile(r"\bactive\b"))
    expect(creditor.locator(f'#dispute-{dispute.pk}[data-status="rejected"]')).to_be_visible()

    # The debtor gets the evidence by e-mail and sees it on the portal.
    (message,) = smtp_server.messages
    names = [part.get_filename() for part in message.walk() if part.get_filename()]
    assert names == ["proof-of-delivery.pdf"]
    debtor.reload()
    expect(debtor.locator("#case-status")).to_have_class(re.compile(r"\bactive\b"))
    expect(debtor.locator("#disputes a")).to_have_count(2)
    assert_accessible(debtor, "case after the answer")


@pytest.mark.usefixtures("transactional_db")
def test_contact_and_return_pages_are_accessible_and_work(live_server, place, world, new_page):
    ReturnPolicy.objects.create(
        creditor=world.creditor, returns_allowed=True, instructions="Colissimo, 2 rue du Commerce"
    )
    case = place("INV-1", "120.50").case
    url = link(live_server.url, case)
    page = new_page(locale="en-GB")
    verify(page, url)
    page.click("#contact-link")
    assert_accessible(page, "contact")
    page.check("#id_sms_opt_out")
    page.click("#contact-save")
    page.wait_for_url(re.compile(r"/dossier/$"))
    case.debtor.refresh_from_db()
    assert case.debtor.sms_opt_out
    page.click("#return-link")
    assert_accessible(page, "return")
    expect(page.locator("#return-instructions")).to_contain_text("Colissimo")
    page.click("#return-submit")
    page.wait_for_url(re.compile(r"/dossier/$"))
    expect(page.locator("#case-status")).to_have_class(re.compile(r"\bon_hold\b"))
    assert case_outstanding_minor(case=case) == 12050


@pytest.mark.usefixtures("transactional_db")
def test_a_wrong_verification_code_locks_the_link(live_server, place, settings, new_page):
    case = place("INV-1", "120.50").case
    url = link(live_server.url, case)
    page = new_page(locale="fr-FR")
    page.goto(url)
    for _ in range(settings.RELANCE_PORTAL_MAX_FAILED_VERIFICATIONS):
        page.fill("#id_postcode", "75001")
        page.click("#verify")
        if page.locator("#id_postcode").count() == 0:
            break
        expect(page.locator("#postcode-error")).to_be_visible()
        assert_accessible(page, "verify with an error")
    expect(page.locator("#id_postcode")).to_have_count(0)
    expect(page.locator("p.error[role=alert]")).to_be_visible()
    assert_accessible(page, "locked")
    # Even the right postcode no longer opens the file, in a fresh browser too.
    other = new_page()
    response = other.goto(url)
    assert response.status == 403
    expect(other.locator("#id_postcode")).to_have_count(0)
    assert "Jeanne" not in other.content()


@pytest.mark.usefixtures("transactional_db")
def test_the_transfer_qr_code_is_an_image_of_its_own_the_browser_keeps(live_server, place, world, new_page):
    """PAY-12, FR-COL-02: the EPC QR code is served by the portal (CSP img-src 'self'), drawn, labelled,
    and fetched once: the browser's next view of the page reuses its copy (private cache, ETag)."""
    world.agency.trust_iban = "FR7630006000011234567890189"
    world.agency.save()
    case = place("INV-1", "120.50").case
    url = link(live_server.url, case)
    page = new_page(locale="fr-FR")
    verify(page, url)
    qr = page.locator("#transfer-qr")
    expect(qr).to_be_visible()
    assert qr.get_attribute("alt")  # a text alternative (WCAG 1.1.1)
    assert qr.get_attribute("src").startswith("/p/")
    page.wait_for_function("document.getElementById('transfer-qr').complete")
    assert page.evaluate("document.getElementById('transfer-qr').naturalWidth") > 0  # drawn, CSP allowing it
    assert _qr_transfer_sizes(page)[0] > 0  # first view: from the network
    assert_accessible(page, "case with transfer")
    page.goto(url + "dossier/")
    expect(page.locator("#transfer-qr")).to_be_visible()
    page.wait_for_function("document.getElementById('transfer-qr').complete")
    assert page.evaluate("document.getElementById('transfer-qr').naturalWidth") > 0
    assert _qr_transfer_sizes(page) in ([], [0])  # the second view took it from the browser's cache


def _qr_transfer_sizes(page: object) -> list[int]:
    """Bytes the browser fetched over the network for the QR image on this page (0: its own cache)."""
    return page.evaluate(  # type: ignore[attr-defined, no-any-return]
        "performance.getEntriesByType('resource').filter(e => e.name.includes('/transfer-qr.svg'))"
        ".map(e => e.transferSize)"
    )


@pytest.mark.usefixtures("transactional_db")
def test_the_language_links_work_with_the_keyboard_and_keep_the_debtor_verified(live_server, place, new_page):
    """Decision 0004: the language switch is a link per language (no form), reachable with the keyboard,
    marked in its own language; following it keeps the debtor's verification (the signed cookie)."""
    case = place("INV-1", "120.50").case
    url = link(live_server.url, case)
    page = new_page(locale="fr-FR")
    verify(page, url)
    assert page.locator("html").get_attribute("lang") == "fr"
    current = page.locator('#lang a[aria-current="true"]')
    expect(current).to_have_count(1)
    assert current.get_attribute("lang") == "fr"
    assert page.locator("input[name=csrfmiddlewaretoken]").count() in (0, 1)  # 1: the sandbox form only
    assert_accessible(page, "case page with language links")
    # Tab from the top of the page to the English link, then Enter.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('hreflang')") == "en-gb":
            break
    assert page.evaluate("document.activeElement.getAttribute('hreflang')") == "en-gb"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dossier/$"))
    expect(page.locator("html")).to_have_attribute("lang", "en-gb")
    expect(page.locator("#outstanding")).to_be_visible()  # still verified: the file, not the form
    expect(page.locator('#lang a[aria-current="true"]')).to_have_attribute("lang", "en-gb")
    assert_accessible(page, "case page in English")
