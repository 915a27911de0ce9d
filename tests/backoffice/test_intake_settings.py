"""Intake settings pages: the saved column mapping and the mandate's requirements (intake issue).

A creditor admin edits its column mapping (a preset or its own columns, checked, with field errors);
agency admins and supervisors set the evidence kinds and fields the mandate requires. Every change is
audited; another creditor's settings answer 404; forms need the CSRF token.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from relance.audit.models import AuditEvent
from relance.cases.models import Case
from relance.claims.models import Claim
from relance.intake.creditor_setup import creditor_requirements_set
from relance.intake.imports import import_create, import_run_pending
from relance.tenancy.actors import Actor
from relance.tenancy.models import User

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(creditor) -> str:
    return f"/bo/intake/{creditor.pk}/"


@pytest.fixture
def admin(world) -> User:
    return User.objects.create_user(username="boss", password="x", role=User.Role.AGENCY_ADMIN, agency=world.agency)


def custom(rows: list[tuple[str, str]], **extra: str) -> dict[str, str]:
    data = {"action": "mapping", "layout": "custom", "rows": str(len(rows)), **extra}
    for i, (column, field) in enumerate(rows):
        data[f"column_{i}"], data[f"field_{i}"] = column, field
    return data


# --- who sees what ----------------------------------------------------------------------------------------


def test_a_creditor_admin_sees_its_settings_and_edits_only_the_mapping(world) -> None:
    client = client_for(world.creditor_user)
    assert client.get("/bo/intake/").url == url(world.creditor)  # one creditor: straight to it
    page = client.get(url(world.creditor)).content.decode()
    assert 'id="mapping-form"' in page
    assert 'id="requirements-form"' not in page  # the agency sets the mandate's requirements
    assert 'id="required-evidence"' in page
    assert client.get(url(world.other_creditor)).status_code == 404  # not yours = not found
    assert (
        client.post(url(world.creditor), {"action": "requirements", "required_fields": ["debtor.phone"]}).status_code
        == 403
    )


def test_staff_list_the_agency_s_creditors(world, admin) -> None:
    page = client_for(admin).get("/bo/intake/").content.decode()
    assert world.creditor.display_name in page and world.other_creditor.display_name in page
    assert 'id="requirements-form"' in client_for(admin).get(url(world.creditor)).content.decode()
    assert 'id="requirements-form"' not in client_for(world.agent).get(url(world.creditor)).content.decode()


def test_a_viewer_cannot_change_the_mapping(world) -> None:
    viewer = User.objects.create_user(
        username="viewer", password="x", role=User.Role.CREDITOR_VIEWER, agency=world.agency, creditor=world.creditor
    )
    response = client_for(viewer).post(url(world.creditor), {"action": "mapping", "layout": "shopify", "rows": "1"})
    assert response.status_code == 403
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping == {}


def test_the_forms_need_the_csrf_token(world) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.creditor_user)
    assert client.post(url(world.creditor), {"action": "mapping", "layout": "shopify", "rows": "1"}).status_code == 403
    assert "csrfmiddlewaretoken" in client.get(url(world.creditor)).content.decode()


# --- the column mapping -----------------------------------------------------------------------------------


def test_choosing_a_preset_saves_it_audited_and_new_imports_use_it(world, settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    response = client_for(world.creditor_user).post(
        url(world.creditor), {"action": "mapping", "layout": "shopify", "rows": "5"}
    )
    assert response.status_code == 302
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping == {"preset": "shopify"}
    event = AuditEvent.objects.get(verb="creditor.mapping_set")
    assert (event.data["from"], event.data["to"]) == ({}, {"preset": "shopify"})
    batch = import_create(
        creditor=world.creditor, content=io.BytesIO(b"Name,Total\n"), filename="x.csv", actor=Actor.system("t")
    )
    assert batch.mapping == {"preset": "shopify"}
    page = client_for(world.creditor_user).get(url(world.creditor)).content.decode()
    assert re.search(r'id="mapping-summary">Shopify<', page)


def test_a_custom_mapping_is_checked_field_by_field(world) -> None:
    client = client_for(world.creditor_user)
    data = custom([("N° commande", "external_ref"), ("Client", ""), ("", "amount"), ("n° COMMANDE", "invoice_number")])
    page = client.post(url(world.creditor), data, HTTP_ACCEPT_LANGUAGE="en-gb")
    assert page.status_code == 200
    form = page.context["mapping_form"]
    assert set(form.errors) == {"field_1", "column_2", "column_3", "__all__"}
    assert "already mapped" in form.errors["column_3"][0]
    missing = page.content.decode()
    assert "These required fields are not mapped" in missing
    assert "Invoice date" in missing and "Last name / Company name" in missing
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping == {}


def test_a_custom_mapping_imports_a_file_with_the_creditor_s_own_columns(world, settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    rows = [
        ("N° commande", "external_ref"),
        ("Date cmd", "invoice_date"),
        ("Total TTC", "amount"),
        ("Client", "debtor.last_name"),
        ("Mail client", "debtor.email"),
        ("CP", "debtor.postcode"),
    ]
    assert client_for(world.creditor_user).post(url(world.creditor), custom(rows)).status_code == 302
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping["columns"] == dict(rows)
    invoiced = (date.today() - timedelta(days=20)).strftime("%d/%m/%Y")
    content = (
        f"N° commande;Date cmd;Total TTC;Client;Mail client;CP\r\nC-1;{invoiced};42,00;Durand;d@example.fr;75002\r\n"
    )
    batch = import_create(
        creditor=world.creditor,
        content=io.BytesIO(content.encode("cp1252")),
        filename="export.csv",
        actor=Actor.system("t"),
    )
    done = import_run_pending(batch_id=batch.pk)
    assert done is not None
    assert (done.status, done.rows_created) == ("done", 1), done.message
    assert Claim.objects.get(external_ref="C-1").original_amount_minor == 4200


def test_a_header_line_proposes_a_mapping_to_complete(world) -> None:
    client = client_for(world.creditor_user)
    page = client.post(
        url(world.creditor), {"action": "suggest", "header": "Référence;Date de facture;Montant;Nom;Vendeur"}
    )
    assert page.status_code == 200
    form = page.context["mapping_form"]
    proposed = [(form.initial.get(f"column_{i}"), form.initial.get(f"field_{i}")) for i in range(form.row_count)]
    assert proposed[:5] == [
        ("Référence", "external_ref"),
        ("Date de facture", "invoice_date"),
        ("Montant", "amount"),
        ("Nom", "debtor.last_name"),
        ("Vendeur", ""),  # unknown: for the creditor to map or leave unused
    ]
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping == {}  # nothing saved until they save


def test_back_to_recognising_each_file(world) -> None:
    world.creditor.import_mapping = {"preset": "woocommerce"}
    world.creditor.save()
    client_for(world.creditor_user).post(url(world.creditor), {"action": "mapping", "layout": "auto", "rows": "1"})
    world.creditor.refresh_from_db()
    assert world.creditor.import_mapping == {}


# --- the mandate's requirements ---------------------------------------------------------------------------


def test_an_agency_admin_sets_the_mandate_s_requirements_audited(world, admin) -> None:
    response = client_for(admin).post(
        url(world.creditor),
        {
            "action": "requirements",
            "required_evidence": ["invoice", "delivery_proof"],
            "required_fields": ["debtor.phone", "debtor.siren"],
        },
    )
    assert response.status_code == 302
    world.creditor.refresh_from_db()
    assert world.creditor.required_evidence == ["invoice", "delivery_proof"]
    assert world.creditor.required_fields == ["debtor.phone", "debtor.siren"]
    event = AuditEvent.objects.get(verb="creditor.requirements_set")
    assert event.data["to"]["required_fields"] == ["debtor.phone", "debtor.siren"]
    page = client_for(world.creditor_user).get(url(world.creditor)).content.decode()
    shown = dict(re.findall(r'id="(required-evidence|required-fields)">([^<]*)<', page))
    assert [len(v.split(", ")) for v in shown.values()] == [2, 2]  # read-only for the creditor


def test_unknown_requirements_are_field_errors(world, admin) -> None:
    page = client_for(admin).post(
        url(world.creditor), {"action": "requirements", "required_fields": ["debtor.shoe_size"]}
    )
    assert page.status_code == 200
    assert "required_fields" in page.context["requirements_form"].errors
    world.creditor.refresh_from_db()
    assert world.creditor.required_fields == []


def test_lowering_the_evidence_required_rearms_the_cases_waiting_for_it(world, place) -> None:
    world.creditor.required_evidence = ["invoice"]
    world.creditor.save()
    placed = place("E-1")
    Case.objects.filter(pk=placed.case.pk).update(next_action_at=None)  # what the engine does (invariant 5)
    before = timezone.now()
    creditor_requirements_set(
        creditor=world.creditor, required_evidence=[], required_fields=[], actor=Actor.system("tests")
    )
    case = Case.objects.get(pk=placed.case.pk)
    assert case.next_action_at is not None and case.next_action_at >= before
    assert AuditEvent.objects.filter(verb="case.evidence_complete", subject_id=str(case.pk)).exists()
