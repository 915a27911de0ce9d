"""Arrangements in a real browser: plan with SEPA direct debit, promise to pay, hardship → affordable plan.

Headless Debian Chromium (Playwright) against ``live_server``, on a phone-sized screen. Elements are
found by id or name, never by visible text, so the journeys hold whatever the UI language is. The
debtor's personal link is built like the e-mails build it (``portal_token``); the e-mail route
itself is covered by test_thin_path_browser.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from relance.audit.models import AuditEvent
from relance.cases.links import portal_token
from relance.cases.models import Case
from relance.payments.arrangement_models import HardshipStatement, PaymentPlan, Promise, SepaCreditor, SepaMandate
from relance.payments.arrangements import sepa_batch_create
from relance.tenancy.actors import Actor
from support import chromium_path

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None, reason="no Chromium: install Debian's chromium or set RELANCE_CHROMIUM"
    ),
]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def open_case(page: object, live_server, case: Case) -> None:
    """The personal link, the postcode, the case page."""
    token = portal_token(case_id=case.pk, reference=case.reference)
    page.goto(f"{live_server.url}{reverse('portal:entry', kwargs={'token': token})}")  # type: ignore[attr-defined]
    page.fill("#id_postcode", "33000")  # type: ignore[attr-defined]
    page.click("#verify")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/dossier/$"))  # type: ignore[attr-defined]


def no_horizontal_scroll(page: object) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))  # type: ignore[attr-defined]


@pytest.mark.usefixtures("transactional_db")
def test_plan_with_sepa_direct_debit_in_the_browser(live_server, world, place, new_page, tmp_path):
    world.agency.trust_iban = "FR7630006000011234567890189"
    world.agency.save()
    SepaCreditor.objects.create(agency=world.agency, creditor_identifier="FR72ZZZ123456")
    case = place("ORDER-3001", "240.00").case
    page = new_page(locale="fr-FR", **PHONE)
    open_case(page, live_server, case)

    page.click("#link-plan")
    page.wait_for_url(re.compile(r"/plan/$"))
    expect(page.locator("#plan-policy")).to_be_visible()
    page.fill("#id_months", "3")
    page.fill("#id_first_due", (timezone.localdate() + timedelta(days=4)).isoformat())
    page.click("#plan-preview")
    expect(page.locator("#schedule tbody tr")).to_have_count(3)
    expect(page.locator("#schedule tbody")).to_contain_text(re.compile(r"80[,.]00"))
    expect(page.locator("#plan-accepted-at-once")).to_be_visible()
    expect(page.locator("#mandate-text")).to_be_visible()
    assert no_horizontal_scroll(page)

    # A mistyped IBAN: the error is on the field, announced, and nothing is created.
    page.check("input[name=method][value=direct_debit]")
    page.fill("#id_debtor_name", "Jeanne Martin")
    page.fill("#id_iban", "FR14 2004 1010 0505 0001 3M02 607")
    page.check("#id_accepted")
    page.click("#plan-confirm")
    expect(page.locator("#iban-error")).to_be_visible()
    expect(page.locator("#id_iban")).to_have_attribute("aria-invalid", "true")
    assert not PaymentPlan.objects.exists()

    page.fill("#id_iban", "FR14 2004 1010 0505 0001 3M02 606")
    if not page.is_checked("#id_accepted"):
        page.check("#id_accepted")
    page.click("#plan-confirm")
    page.wait_for_url(re.compile(r"/plan/done/$"))
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "active")
    mandate = SepaMandate.objects.get()
    expect(page.locator("#mandate-umr")).to_have_text(mandate.umr)
    assert mandate.umr.startswith(case.reference)
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(tmp_path / "plan-done.png"), full_page=True)

    # Back on the case page: in plan; the first instalment goes out as FRST in the next pain.008.
    page.click("#back-to-case")
    expect(page.locator("#case-status")).to_have_class(re.compile(r"\bin_plan\b"))
    expect(page.locator("#arrangements-plan")).to_be_visible()
    batch = sepa_batch_create(agency=world.agency, actor=Actor.system("tests"))
    assert batch is not None and batch.count == 1
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"}
    assert etree.fromstring(batch.xml.encode()).findtext(".//p:SeqTp", namespaces=ns) == "FRST"


@pytest.mark.usefixtures("transactional_db")
def test_promise_to_pay_in_the_browser(live_server, world, place, new_page):
    case = place("ORDER-3002", "75.50").case
    page = new_page(locale="en-GB", **PHONE)
    open_case(page, live_server, case)

    page.click("#link-promise")
    page.wait_for_url(re.compile(r"/promise/$"))
    page.fill("#id_on", (timezone.localdate() + timedelta(days=90)).isoformat())
    page.click("#promise-submit")
    expect(page.locator("#on-error")).to_be_visible()
    expect(page.locator("#id_on")).to_have_attribute("aria-invalid", "true")

    on = timezone.localdate() + timedelta(days=10)
    page.fill("#id_on", on.isoformat())
    page.fill("#id_promise_amount", "75.50")
    page.click("#promise-submit")
    page.wait_for_url(re.compile(r"/dossier/$"))
    expect(page.locator("#case-status")).to_have_class(re.compile(r"\bpromised\b"))
    expect(page.locator("#arrangements-promise")).to_be_visible()
    expect(page.locator("#link-promise")).to_have_count(0)
    promise = Promise.objects.get()
    assert (promise.due_date, promise.amount_minor, promise.status) == (on, 7550, "pending")
    assert AuditEvent.objects.filter(verb="promise.made", subject_id=str(case.pk)).exists()


@pytest.mark.usefixtures("transactional_db")
def test_hardship_to_an_affordable_plan_in_the_browser(live_server, world, place, new_page):
    case = place("ORDER-3003", "600.00").case
    page = new_page(locale="fr-FR", **PHONE)
    open_case(page, live_server, case)

    page.click("#link-hardship")
    page.wait_for_url(re.compile(r"/hardship/$"))
    page.fill("#id_income", "2000")
    page.fill("#id_fixed_charges", "1200")
    page.fill("#id_dependants", "1")
    page.check("#id_vulnerable")
    page.click("#hardship-submit")
    expect(page.locator("#hardship-adviser")).to_be_visible()  # flagged for a human
    expect(page.locator("#hardship-proposal")).to_contain_text(re.compile(r"200[,.]00"))
    assert HardshipStatement.objects.get().status == "to_review"

    # The proposal leads to the plan page with its months; no direct debit here: monthly transfers.
    page.click("#hardship-accept")
    expect(page.locator("#id_months")).to_have_value("3")
    page.fill("#id_first_due", (timezone.localdate() + timedelta(days=7)).isoformat())
    page.click("#plan-preview")
    expect(page.locator("#schedule tbody tr")).to_have_count(3)
    expect(page.locator("#id_iban")).to_have_count(0)
    page.click("#plan-confirm")
    page.wait_for_url(re.compile(r"/plan/done/$"))
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "active")
    assert PaymentPlan.objects.get().method == "transfer"
    assert AuditEvent.objects.filter(verb="debtor.vulnerability_flagged", subject_id=str(case.pk)).exists()
