"""Evidence through the REST API (issue 3 item 7; invariant 5, "evidence first").

Multipart upload to ``POST /api/v1/claims/{external_ref}/evidence`` and a ZIP with a manifest to
``POST /api/v1/evidence/zip``; the intake scope is required and another creditor's claim answers 404
like a missing one (invariant 6); errors are RFC 7807 with the field named (invariant 8).
"""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from relance.claims.models import Evidence
from relance.claims.services import MAX_EVIDENCE_BYTES
from relance.tenancy.actors import Actor
from relance.tenancy.services import api_key_create

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%%EOF\n"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _post(secret: str, ref: str, content: bytes = PDF, name: str = "invoice.pdf", kind: str = "invoice"):
    return Client().post(
        f"/api/v1/claims/{ref}/evidence",
        {"file": SimpleUploadedFile(name, content), "kind": kind},
        HTTP_X_API_KEY=secret,
    )


def _zip(files: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return SimpleUploadedFile("evidence.zip", buffer.getvalue(), content_type="application/zip")


def test_uploading_evidence_answers_201_then_200_for_the_same_content(world, place):
    claim = place("ORDER-1").claim

    response = _post(world.api_secret, "ORDER-1")

    assert response.status_code == 201, response.content
    body = response.json()
    evidence = Evidence.objects.get(claim=claim)
    assert body == {"id": evidence.pk, "kind": "invoice", "sha256": hashlib.sha256(PDF).hexdigest(), "size": len(PDF)}
    again = _post(world.api_secret, "ORDER-1")
    assert again.status_code == 200
    assert again.json() == body
    assert Evidence.objects.count() == 1


def test_a_reference_with_a_slash_is_addressable(world, place):
    claim = place("2026/0042").claim
    assert _post(world.api_secret, "2026/0042").status_code == 201
    assert Evidence.objects.get().claim_id == claim.pk


def test_another_creditors_claim_answers_like_a_missing_one(world, place):
    place("THEIRS-1", creditor=world.other_creditor)

    theirs = _post(world.api_secret, "THEIRS-1")
    missing = _post(world.api_secret, "NOPE-1")

    assert theirs.status_code == missing.status_code == 404
    assert theirs["Content-Type"] == PROBLEM
    assert theirs.json()["code"] == missing.json()["code"] == "claim.not_found"
    assert not Evidence.objects.exists()


def test_the_intake_scope_is_required(world, place):
    place("ORDER-1")
    _, secret = api_key_create(creditor=world.creditor, name="ro", scopes=["read"], actor=Actor.system("tests"))
    response = _post(secret, "ORDER-1")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Client().post("/api/v1/claims/ORDER-1/evidence").status_code == 401


@pytest.mark.parametrize(
    ("upload", "expected"),
    [
        (("invoice.pdf", "selfie", PDF), ("kind", "evidence.unknown_kind")),
        (("invoice.pdf", "invoice", b"GIF89a"), ("file", "evidence.type_not_allowed")),
        (("invoice.html", "invoice", b"<script>alert(1)</script>"), ("file", "evidence.type_not_allowed")),
        (("invoice.pdf", "invoice", b""), ("file", "evidence.empty")),
    ],
)
def test_bad_files_are_refused_with_the_field_named(world, place, upload, expected):
    name, kind, content = upload
    place("ORDER-1")
    response = _post(world.api_secret, "ORDER-1", content, name, kind)
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert (problem["field"], problem["code"]) == expected
    assert not Evidence.objects.exists()


def test_a_file_over_the_limit_is_refused(world, place):
    place("ORDER-1")
    response = _post(world.api_secret, "ORDER-1", b"%PDF-" + b" " * MAX_EVIDENCE_BYTES)
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == ("evidence.too_large", "file")


@pytest.mark.parametrize(
    ("data", "field"), [({"file": SimpleUploadedFile("invoice.pdf", PDF)}, "kind"), ({"kind": "invoice"}, "file")]
)
def test_a_missing_part_is_named(world, place, data, field):
    place("ORDER-1")
    response = Client().post("/api/v1/claims/ORDER-1/evidence", data, HTTP_X_API_KEY=world.api_secret)
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM
    assert response.json()["field"] == field


def test_a_zip_upload_without_a_file_is_named(world):
    response = Client().post("/api/v1/evidence/zip", {}, HTTP_X_API_KEY=world.api_secret)
    assert response.status_code == 422
    assert response.json()["field"] == "file"


def test_a_zip_with_a_manifest_attaches_valid_rows_and_reports_the_others(world, place):
    place("ORDER-1")
    place("THEIRS-1", creditor=world.other_creditor)
    manifest = (
        "external_ref;kind;filename\n"
        "ORDER-1;invoice;f1.pdf\n"
        "THEIRS-1;invoice;f1.pdf\n"
        "ORDER-1;selfie;f1.pdf\n"
        "ORDER-1;order;../f1.pdf\n"
    )
    upload = _zip({"manifest.csv": manifest.encode(), "f1.pdf": PDF})

    response = Client().post("/api/v1/evidence/zip", {"file": upload}, HTTP_X_API_KEY=world.api_secret)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["rows"], body["attached"], body["unchanged"], body["invalid"]) == (4, 1, 0, 3)
    assert [(e["row"], e["column"], e["code"]) for e in body["errors"]] == [
        (3, "external_ref", "external_ref.unknown"),
        (4, "kind", "kind.unknown"),
        (5, "filename", "filename.unsafe"),
    ]
    assert Evidence.objects.get().claim.external_ref == "ORDER-1"


def test_a_zip_needs_the_intake_scope(world):
    _, secret = api_key_create(creditor=world.creditor, name="ro", scopes=["read"], actor=Actor.system("tests"))
    response = Client().post("/api/v1/evidence/zip", {"file": _zip({"x": b""})}, HTTP_X_API_KEY=secret)
    assert response.status_code == 403


def test_a_file_that_is_not_a_zip_gets_a_report_not_a_crash(world):
    upload = SimpleUploadedFile("evidence.zip", b"not a zip at all")
    response = Client().post("/api/v1/evidence/zip", {"file": upload}, HTTP_X_API_KEY=world.api_secret)
    assert response.status_code == 200
    assert [(e["row"], e["code"]) for e in response.json()["errors"]] == [(0, "zip.invalid")]
