"""Uploading a French Excel CSV in a real browser: live status while a worker imports it, then the report.

Headless Debian Chromium driven by Playwright against ``live_server``. The creditor's user uploads a
``;``-separated Windows-1252 file with decimal commas and a few bad rows through /bo/imports/; the page
polls (htmx) while the test, playing the import worker, runs the import; the counters then change on
their own and the error report downloads with each bad row's row, column, value and code. Elements
are found by id, never by visible text, so the journey holds whatever the UI language is.
"""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from relance.claims.models import Claim
from relance.intake.imports import import_run_pending
from relance.intake.models import ImportBatch
from support import CHROMIUM_ARGS, PASSWORD, chromium_path

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the test's own ORM calls beside Playwright's loop

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None, reason="no Chromium: install Debian's chromium or set RELANCE_CHROMIUM"
    ),
]

TIMEOUT_MS = 15_000
INVOICED = (date.today() - timedelta(days=30)).strftime("%d/%m/%Y")
ROWS = [
    "Référence;Date de facture;Montant;Prénom;Nom;E-mail;Code postal;Ville;IBAN",
    f"FR-1;{INVOICED};1 234,50;Éloïse;Bénédicte;eloise@example.fr;33000;Nîmes;",  # 2 placed
    f"FR-2;{INVOICED};douze euros;Zoé;Lefèvre;zoe@example.fr;75002;Paris;",  # 3 amount.not_a_number
    "FR-3;31/02/2026;12,00;Noël;Gaëtan;noel@example.fr;69001;Lyon;",  # 4 date.impossible
    f"FR-4;{INVOICED};12,345;Anaïs;Dupont;anais@example.fr;13002;Marseille;",  # 5 amount.too_many_decimals
    f"FR-5;{INVOICED};99,90;François;Œuvray;francois@example.fr;7500;Paris;",  # 6 postcode.invalid
    f"FR-6;{INVOICED};45,00;Hélène;Çà;helene@example.fr;33000;Bordeaux;FR7630006000011234567890188",  # 7 iban
    f"FR-1;{INVOICED};5,00;Éloïse;Bénédicte;eloise@example.fr;33000;Nîmes;",  # 8 ref.duplicate_in_file
]
EXPECTED = [
    ("3", "Montant", "douze euros", "amount.not_a_number"),
    ("4", "Date de facture", "31/02/2026", "date.impossible"),
    ("5", "Montant", "12,345", "amount.too_many_decimals"),
    ("6", "Code postal", "7500", "postcode.invalid"),
    ("7", "IBAN", "FR7630006000011234567890188", "iban.checksum"),
    ("8", "Référence", "FR-1", "ref.duplicate_in_file"),
]


@pytest.mark.usefixtures("transactional_db")
def test_upload_a_french_csv_follow_it_live_and_download_the_error_report(
    live_server, world, settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    content = "\r\n".join(ROWS).encode("cp1252") + b"\r\n"
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(accept_downloads=True)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{live_server.url}/bo/login/")
            page.fill("#id_username", world.creditor_user.username)
            page.fill("#id_password", PASSWORD)
            page.click("#login")
            page.wait_for_url(re.compile(r"/bo/(\?.*)?$"))

            page.goto(f"{live_server.url}/bo/imports/")
            page.set_input_files("#id_file", {"name": "impayes.csv", "mimeType": "text/csv", "buffer": content})
            page.click("#upload-submit")
            page.wait_for_url(re.compile(r"/bo/imports/\d+/$"))
            expect(page.locator("#import-state .badge")).to_have_class(re.compile(r"\bpending\b"))
            expect(page.locator("#import-rows")).to_have_text("0")

            # The worker picks the file up; the open page updates by itself (no reload).
            batch = ImportBatch.objects.get()
            assert import_run_pending(batch_id=batch.pk) is not None
            expect(page.locator("#import-state .badge")).to_have_class(re.compile(r"\bdone\b"))
            expect(page.locator("#import-rows")).to_have_text("7")
            expect(page.locator("#import-created")).to_have_text("1")
            expect(page.locator("#import-invalid")).to_have_text("6")
            expect(page.locator("#import-issues tbody tr")).to_have_count(6)

            with page.expect_download() as download_info:
                page.click("#error-report")
            report_path = download_info.value.path()
            report = list(csv.reader(io.StringIO(Path(report_path).read_text(encoding="utf-8"))))
        finally:
            browser.close()
    assert report[0] == ["row", "column", "value", "code", "message"]
    assert [tuple(r[:4]) for r in report[1:]] == EXPECTED
    assert all(" / " in r[4] for r in report[1:])  # English / français
    claim = Claim.objects.select_related("debtor").get()
    assert (claim.external_ref, claim.original_amount_minor) == ("FR-1", 123450)
    assert (claim.debtor.first_name, claim.debtor.city) == ("Éloïse", "Nîmes")
