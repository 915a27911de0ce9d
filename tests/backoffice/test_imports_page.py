"""The upload page /bo/imports/ and the live import page through HTTP (intake issue, item 8).

A creditor user uploads a file, lands on its import page, which htmx polls for the status fragment
until the import is finished; problems are listed and downloadable. Invariant 6: another creditor's
user gets a 404 for the import and its report, exactly like for a missing one; a viewer cannot upload.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from relance.claims.models import Claim
from relance.intake.imports import import_run_pending
from relance.intake.models import ImportBatch
from relance.tenancy.models import User

pytestmark = pytest.mark.django_db

INVOICED = (date.today() - timedelta(days=30)).strftime("%d/%m/%Y")
FILE = (
    "Référence;Date de facture;Montant;Nom;E-mail;Code postal\r\n"
    f"W-1;{INVOICED};12,50;Martin;jeanne.martin@example.fr;33000\r\n"
    f"W-2;{INVOICED};douze;Durand;paul@example.fr;33000\r\n"
    f'W-3;{INVOICED};-4;"=HYPERLINK(""http://x"",""y"")";hyper@example.fr;75002\r\n'
    f"W-4;{INVOICED};1 000,00;Petit;petit@example.fr;75002\r\n"
).encode("cp1252")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def stat(html: str, element_id: str) -> str:
    found = re.search(rf'<b id="{element_id}">(.*?)</b>', html, re.S)
    assert found is not None, element_id
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


@pytest.fixture
def upload(settings, tmp_path: Path) -> Callable[..., Any]:
    """POST the upload form as a browser does (multipart, the hidden creditor field included)."""
    settings.MEDIA_ROOT = tmp_path / "media"

    def _upload(client: Client, creditor_id: int, content: bytes = FILE, name: str = "export.csv", **form: str) -> Any:
        f = io.BytesIO(content)
        f.name = name
        return client.post("/bo/imports/", {"creditor": creditor_id, "file": f, "mode": "valid_rows", **form})

    return _upload


@pytest.fixture
def viewer(world) -> User:
    return User.objects.create_user(
        username="shopviewer",
        password="x",
        role=User.Role.CREDITOR_VIEWER,
        agency=world.agency,
        creditor=world.creditor,
    )


def test_the_upload_page_shows_the_form_to_a_creditor_user(world):
    page = client_for(world.creditor_user).get("/bo/imports/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="upload"' in html
    assert 'enctype="multipart/form-data"' in html
    assert f'name="creditor" value="{world.creditor.pk}"' in html  # fixed to their creditor, hidden


def test_a_creditor_user_uploads_a_file_and_follows_its_import(world, upload):
    client = client_for(world.creditor_user)

    response = upload(client, world.creditor.pk)

    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response.url == f"/bo/imports/{batch.pk}/"
    assert (batch.creditor, batch.filename, batch.status) == (world.creditor, "export.csv", "pending")
    with batch.file.open("rb") as stored:
        assert stored.read() == FILE
    pending = client.get(response.url)
    assert pending.status_code == 200
    assert 'hx-trigger="every 2s"' in pending.content.decode()  # polled while pending

    import_run_pending()

    page = client.get(response.url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="badge done"' in html
    assert (stat(html, "import-rows"), stat(html, "import-created"), stat(html, "import-invalid")) == ("4", "2", "2")
    assert "hx-trigger" not in html  # finished: the page stops polling
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>", html)
    assert [(r, c, v) for r, c, v in rows] == [("3", "Montant", "douze"), ("4", "Montant", "-4")]
    assert "amount.not_a_number" in html
    assert "amount.not_positive" in html
    assert f'href="/bo/imports/{batch.pk}/errors.csv"' in html
    assert dict(Claim.objects.values_list("external_ref", "original_amount_minor")) == {"W-1": 1250, "W-4": 100000}
    listing = client.get("/bo/imports/").content.decode()
    assert f'href="/bo/imports/{batch.pk}/"' in listing


def test_the_htmx_request_gets_only_the_status_fragment(world, upload):
    client = client_for(world.creditor_user)
    url = upload(client, world.creditor.pk).url

    fragment = client.get(url, HTTP_HX_REQUEST="true")

    assert fragment.status_code == 200
    html = fragment.content.decode().strip()
    assert html.startswith('<div id="import-status"')
    assert "<html" not in html.lower()
    assert "<h1>" not in html
    assert f'hx-get="{url}"' in html
    import_run_pending()
    done = client.get(url, HTTP_HX_REQUEST="true").content.decode().strip()
    assert done.startswith('<div id="import-status"')
    assert stat(done, "import-created") == "2"
    assert "hx-get" not in done  # the swap ends the polling


def test_the_error_report_downloads_as_csv_with_formulas_neutralised(world, upload):
    client = client_for(world.creditor_user)
    url = upload(client, world.creditor.pk).url
    import_run_pending()

    response = client.get(url + "errors.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["row", "column", "value", "code", "message"]
    assert [r[:4] for r in rows[1:]] == [
        ["3", "Montant", "douze", "amount.not_a_number"],
        ["4", "Montant", "'-4", "amount.not_positive"],  # a leading "-" would start a formula
    ]
    assert ImportBatch.objects.get().issues.get(row=4).value == "-4"  # stored as sent


def test_another_creditors_user_gets_404_on_the_import_and_its_report(world, upload):
    url = upload(client_for(world.creditor_user), world.creditor.pk).url
    import_run_pending()
    batch = ImportBatch.objects.get()
    stranger = client_for(world.other_creditor_user)

    for path in (url, url + "errors.csv"):
        assert stranger.get(path).status_code == 404
        assert stranger.get(path, HTTP_HX_REQUEST="true").status_code == 404
    assert stranger.get(f"/bo/imports/{batch.pk + 1000}/").status_code == 404
    assert url not in stranger.get("/bo/imports/").content.decode()
    assert client_for(world.agent).get(url).status_code == 200  # agency staff see every creditor's imports


def test_a_creditor_user_cannot_upload_for_another_creditor(world, upload):
    response = upload(client_for(world.creditor_user), world.other_creditor.pk)

    assert response.status_code == 200  # the form again, with its error
    assert "errorlist" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_a_creditor_viewer_cannot_upload(world, upload, viewer):
    client = client_for(viewer)

    assert upload(client, world.creditor.pk).status_code == 404
    assert not ImportBatch.objects.exists()
    page = client.get("/bo/imports/")
    assert page.status_code == 200
    assert 'id="upload"' not in page.content.decode()


def test_a_creditor_viewer_follows_their_creditors_imports(world, upload, viewer):
    url = upload(client_for(world.creditor_user), world.creditor.pk).url
    import_run_pending()

    client = client_for(viewer)

    assert client.get(url).status_code == 200
    assert client.get(url + "errors.csv").status_code == 200


def test_an_agent_uploads_for_a_creditor_of_the_agency(world, upload):
    client = client_for(world.agent)
    page = client.get("/bo/imports/").content.decode()
    assert '<select name="creditor"' in page

    response = upload(client, world.other_creditor.pk)

    assert response.status_code == 302
    assert ImportBatch.objects.get().creditor == world.other_creditor


def test_pages_need_a_login(world):
    for path in ("/bo/imports/", "/bo/imports/1/", "/bo/imports/1/errors.csv"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response.url.startswith("/bo/login/")


def test_a_file_that_is_not_csv_or_xlsx_is_refused_by_the_form(world, upload):
    response = upload(client_for(world.creditor_user), world.creditor.pk, content=b"%PDF-1.4", name="f.pdf")

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_the_import_page_says_how_the_file_was_read_and_which_columns_were_ignored(world, upload):
    content = FILE.replace("Code postal\r\n".encode("cp1252"), "Code postal;Vendeur;Notes\r\n".encode("cp1252"))
    client = client_for(world.creditor_user)
    response = upload(client, world.creditor.pk, content)
    page = client.get(response.url).content.decode()
    assert re.search(r'id="file-layout">relance<', page)
    assert re.search(r'id="file-unknown-columns">Vendeur, Notes<', page)
    assert "<code>cp1252</code>" in page and "<code>;</code>" in page
    fragment = client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert "file-reading" not in fragment  # the polled fragment does not re-read the file
