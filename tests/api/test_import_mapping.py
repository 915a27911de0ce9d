"""A creditor's saved column mapping for file imports (issue 3 item 1)."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from relance.claims.models import Claim
from relance.intake.imports import import_run_pending


@pytest.fixture
def api(world):
    return Client(HTTP_X_API_KEY=world.api_secret)


@pytest.mark.django_db
def test_presets_and_fields_are_listed_and_a_preset_can_be_saved(api, world) -> None:
    start = api.get("/api/v1/imports/mapping").json()
    assert start["mapping"] == {}
    assert {"shopify", "woocommerce", "prestashop", "relance"} <= set(start["presets"])
    saved = api.put("/api/v1/imports/mapping", {"preset": "shopify"}, content_type="application/json")
    assert saved.status_code == 200
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping == {"preset": "shopify"}


@pytest.mark.django_db
def test_an_unknown_field_or_preset_is_refused_naming_the_field(api, world) -> None:
    bad = api.put("/api/v1/imports/mapping", {"columns": {"N°": "amount_ttc"}}, content_type="application/json")
    assert bad.status_code == 422
    assert bad.json()["field"] == "columns"
    assert (
        api.put("/api/v1/imports/mapping", {"preset": "magento"}, content_type="application/json").json()["field"]
        == "preset"
    )
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping == {}


@pytest.mark.django_db
def test_uploads_use_the_saved_columns(api, world, settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path
    columns = {
        "N° commande": "external_ref",
        "Date": "invoice_date",
        "Montant dû": "amount",
        "Nom client": "debtor.last_name",
        "Mail": "debtor.email",
        "CP": "debtor.postcode",
    }
    assert api.put("/api/v1/imports/mapping", {"columns": columns}, content_type="application/json").status_code == 200
    content = "N° commande;Date;Montant dû;Nom client;Mail;CP\nK-1;02/09/2026;45,90;Durand;durand@example.fr;69007\n"
    upload = io.BytesIO(content.encode("cp1252"))
    upload.name = "export.csv"
    response = api.post("/api/v1/imports", {"file": upload})
    assert response.status_code == 202, response.content
    batch = import_run_pending(batch_id=response.json()["id"])
    assert batch is not None and batch.rows_created == 1, batch.message
    claim = Claim.objects.get(external_ref="K-1")
    assert claim.original_amount_minor == 4590
