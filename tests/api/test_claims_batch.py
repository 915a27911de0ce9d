"""POST /api/v1/claims with an array, the Idempotency-Key header, and /api/v1/imports over HTTP.

Intake issue items 1 and 3: up to 10,000 claims per call through the same placement path as files;
each element reported by index (created, unchanged, credited, review, invalid with field errors); a
request made safe to retry by its Idempotency-Key, per creditor. Invariant 6: another creditor's import
answers exactly like a missing one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from relance.api.models import IdempotencyRecord
from relance.audit.models import AuditEvent
from relance.cases.models import Case
from relance.claims.models import Claim, Debtor
from relance.intake.imports import import_run_pending
from relance.intake.models import ImportBatch
from relance.ledger.models import LedgerTransaction, Posting
from relance.ledger.services import account_balance

pytestmark = pytest.mark.django_db

TODAY = date.today()
PROBLEM = "application/problem+json"


def item(ref: str, amount: str = "100.00", n: int = 0, **changes: Any) -> dict[str, Any]:
    """One claim of a batch; debtor ``n`` (0 is Jeanne Martin)."""
    body: dict[str, Any] = {
        "external_ref": ref,
        "invoice_number": f"F-{ref}",
        "invoice_date": str(TODAY - timedelta(days=40)),
        "due_date": str(TODAY - timedelta(days=10)),
        "amount": amount,
        "currency": "EUR",
        "debtor": {
            "first_name": "Jeanne" if n == 0 else "Paul",
            "last_name": "Martin" if n == 0 else f"Durand{n}",
            "email": "jeanne.martin@example.fr" if n == 0 else f"paul.durand{n}@example.fr",
            "postcode": "33000",
            "address_line1": f"{n + 3} rue des Lilas",
            "city": "Bordeaux",
        },
    }
    for key, value in changes.items():
        if key.startswith("debtor_"):
            body["debtor"][key.removeprefix("debtor_")] = value
        else:
            body[key] = value
    return body


def post(secret: str, body: Any, *, idempotency_key: str | None = None, raw: bytes | None = None) -> Any:
    headers = {"HTTP_X_API_KEY": secret}
    if idempotency_key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    data = raw if raw is not None else json.dumps(body)
    # As a client over HTTP sees it: an exception in Django is a response (400, 500), not a traceback.
    client = Client(raise_request_exception=False)
    return client.post("/api/v1/claims", data, content_type="application/json", **headers)


def state() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Debtor, Claim, Case, LedgerTransaction, Posting, IdempotencyRecord))


# --------------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------------


def test_a_batch_reports_each_item_by_index_with_counts_per_status(world):
    known = post(world.api_secret, [item("K-1", n=1), item("K-2", n=2), item("K-3", n=3)])
    assert known.json()["counts"]["created"] == 3
    batch = [
        item("K-1", "100.00", n=1),  # 0 unchanged
        item("K-2", "80.00", n=2),  # 1 credited
        item("K-3", "150.00", n=3),  # 2 review
        item("N-1", "10.00", n=4),  # 3 created
        item("N-2", "-5", n=5),  # 4 invalid amount
        item("N-3", "12.00", n=6, debtor_postcode="", debtor_email="pas-un-email"),  # 5 invalid, two fields
        item("N-1", "99.00", n=7),  # 6 duplicate of index 3
        item("N-4", "20.00"),  # 7 created (Jeanne)
    ]

    response = post(world.api_secret, batch)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["counts"] == {"created": 2, "unchanged": 1, "credited": 1, "review": 1, "invalid": 3}
    results = body["results"]
    assert [(r["index"], r["external_ref"], r["status"]) for r in results] == [
        (0, "K-1", "unchanged"),
        (1, "K-2", "credited"),
        (2, "K-3", "review"),
        (3, "N-1", "created"),
        (4, "N-2", "invalid"),
        (5, "N-3", "invalid"),
        (6, "N-1", "invalid"),
        (7, "N-4", "created"),
    ]
    assert [(e["field"], e["code"]) for e in results[4]["errors"]] == [("amount", "amount.not_positive")]
    assert sorted((e["field"], e["code"]) for e in results[5]["errors"]) == [
        ("debtor.email", "email.invalid"),
        ("debtor.postcode", "required"),
    ]
    assert [(e["field"], e["code"]) for e in results[6]["errors"]] == [("external_ref", "ref.duplicate_in_batch")]
    assert "index 3" in results[6]["errors"][0]["message"]  # names the first occurrence
    assert all(r["claim_id"] is None for r in results[4:7])
    assert "15000" in results[2]["detail"]

    # The response matches the database: the first N-1 won, the credit note is in the ledger, the
    # higher amount is not applied, the invalid items left nothing.
    claims = {c.external_ref: c for c in Claim.objects.filter(creditor=world.creditor)}
    assert sorted(claims) == ["K-1", "K-2", "K-3", "N-1", "N-4"]
    assert results[3]["claim_id"] == claims["N-1"].pk
    assert claims["N-1"].original_amount_minor == 1000
    assert Case.objects.get(pk=results[3]["case_id"]).debtor.email == "paul.durand4@example.fr"
    assert account_balance(key=claims["K-2"].ledger_key) == 8000
    assert account_balance(key=claims["K-3"].ledger_key) == 10000
    assert AuditEvent.objects.filter(verb="claim.credit_note", subject_id=str(claims["K-2"].pk)).count() == 1
    assert not Debtor.objects.filter(email__in=["paul.durand5@example.fr", "paul.durand7@example.fr"]).exists()


def test_a_batch_with_only_invalid_items_is_200_and_writes_nothing(world):
    before = state()

    response = post(world.api_secret, [item("B-1", "0"), item("B-2", "abc")])

    assert response.status_code == 200
    assert response.json()["counts"]["invalid"] == 2
    assert state() == before


def test_a_single_object_still_places_one_claim(world):
    response = post(world.api_secret, item("ONE-1"))
    assert response.status_code == 201
    assert response.json()["external_ref"] == "ONE-1"
    assert "results" not in response.json()


def _compact_array(count: int, **changes: Any) -> bytes:
    """``count`` copies of one small claim, joined as bytes: a big body without a big Python list."""
    one = json.dumps(
        {
            "external_ref": "X",
            "invoice_number": "X",
            "invoice_date": str(TODAY - timedelta(days=40)),
            "due_date": str(TODAY - timedelta(days=10)),
            "amount": "1",
            "debtor": {"last_name": "M", "email": "m@example.fr", "postcode": "33000"},
            **changes,
        },
        separators=(",", ":"),
    ).encode()
    return b"[" + b",".join([one] * count) + b"]"


def test_more_than_10000_claims_in_one_call_is_422_and_writes_nothing(world):
    before = state()

    response = post(world.api_secret, None, raw=_compact_array(10_001))

    assert response.status_code == 422, response.content[:500]
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert "10000" in problem["detail"].replace(",", "")
    assert state() == before


def test_exactly_10000_claims_in_one_call_are_accepted(world):
    response = post(world.api_secret, None, raw=_compact_array(10_000))

    assert response.status_code == 200, response.content[:500]
    assert response.json()["counts"] == {"created": 1, "unchanged": 0, "credited": 0, "review": 0, "invalid": 9999}
    assert Claim.objects.count() == 1


def test_10000_ordinary_claims_fit_in_one_call(world):
    body = json.dumps([item("SAME-REF", "100.00")] * 10_000).encode()
    assert len(body) > 2_621_440  # above Django's default DATA_UPLOAD_MAX_MEMORY_SIZE

    response = post(world.api_secret, None, raw=body)

    assert response.status_code == 200, response.content[:300]
    assert response.json()["counts"]["created"] == 1


# --------------------------------------------------------------------------------------------------------
# Idempotency-Key
# --------------------------------------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_first_response_and_creates_nothing(world):
    batch = [item("I-1", n=1), item("I-2", "abc", n=2), item("I-3", n=3)]
    first = post(world.api_secret, batch, idempotency_key="import-2026-06-01")
    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first
    before = state()
    events = AuditEvent.objects.count()

    replay = post(world.api_secret, batch, idempotency_key="import-2026-06-01")

    assert replay.status_code == first.status_code
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert replay.json()["counts"]["created"] == 2  # the first answer, not "unchanged"
    assert state() == before
    assert AuditEvent.objects.count() == events


def test_the_same_key_replays_a_single_claim_with_its_201(world):
    first = post(world.api_secret, item("S-1"), idempotency_key="k-single")
    replay = post(world.api_secret, item("S-1"), idempotency_key="k-single")

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert replay.json()["created"] is True


def test_the_same_key_with_another_body_is_409_and_writes_nothing(world):
    post(world.api_secret, [item("C-1")], idempotency_key="k-1")
    before = state()

    response = post(world.api_secret, [item("C-1"), item("C-2", n=2)], idempotency_key="k-1")

    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "idempotency.key_reused"
    assert state() == before
    assert not Claim.objects.filter(external_ref="C-2").exists()


def test_idempotency_keys_are_per_creditor(world):
    body = [item("P-1"), item("P-2", n=2)]
    mine = post(world.api_secret, body, idempotency_key="shared-key")

    theirs = post(world.other_api_secret, body, idempotency_key="shared-key")

    assert theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["counts"]["created"] == 2
    assert mine.json()["results"][0]["claim_id"] != theirs.json()["results"][0]["claim_id"]
    assert Claim.objects.filter(creditor=world.other_creditor).count() == 2
    # The first creditor's key still answers with its own first response.
    assert post(world.api_secret, body, idempotency_key="shared-key")["Idempotent-Replayed"] == "true"


def test_a_request_refused_as_a_whole_does_not_burn_its_key(world):
    too_many = _compact_array(10_001)
    assert post(world.api_secret, None, raw=too_many, idempotency_key="k-retry").status_code == 422

    fixed = post(world.api_secret, [item("R-1")], idempotency_key="k-retry")

    assert fixed.status_code == 200
    assert "Idempotent-Replayed" not in fixed
    assert fixed.json()["counts"]["created"] == 1


# --------------------------------------------------------------------------------------------------------
# File imports over HTTP
# --------------------------------------------------------------------------------------------------------

FILE = (
    "Référence;Date de facture;Montant;Nom;E-mail;Code postal\r\n"
    "H-1;{d};12,50;Martin;jeanne.martin@example.fr;33000\r\n"
    "H-2;{d};douze;Durand;paul@example.fr;33000\r\n"
    'H-3;{d};1 000,00;=HYPERLINK("http://x","y");hyper@example.fr;75002\r\n'
).format(d=(TODAY - timedelta(days=30)).strftime("%d/%m/%Y"))


@pytest.fixture
def upload(settings, tmp_path: Path) -> Callable[..., Any]:
    settings.MEDIA_ROOT = tmp_path / "media"

    def _upload(secret: str, content: bytes, name: str = "export.csv", **form: str) -> Any:
        f = io.BytesIO(content)
        f.name = name
        return Client().post("/api/v1/imports", {"file": f, **form}, HTTP_X_API_KEY=secret)

    return _upload


def test_upload_then_follow_the_import_and_download_its_errors(world, upload):
    response = upload(world.api_secret, FILE.encode("cp1252"))

    assert response.status_code == 202, response.content
    created = response.json()
    assert created["status"] == "pending"
    assert created["filename"] == "export.csv"
    assert created["errors_url"].endswith(f"/api/v1/imports/{created['id']}/errors.csv")
    assert not Claim.objects.exists()  # no worker in tests: nothing ran yet

    batch = import_run_pending(batch_id=created["id"])
    assert batch is not None

    status = Client().get(f"/api/v1/imports/{created['id']}", HTTP_X_API_KEY=world.api_secret)
    assert status.status_code == 200
    body = status.json()
    assert {k: body[k] for k in ("status", "rows_total", "rows_done", "created", "invalid", "to_review")} == {
        "status": "done",
        "rows_total": 3,
        "rows_done": 3,
        "created": 2,
        "invalid": 1,
        "to_review": 0,
    }
    assert dict(Claim.objects.values_list("external_ref", "original_amount_minor")) == {"H-1": 1250, "H-3": 100000}

    errors = Client().get(f"/api/v1/imports/{created['id']}/errors.csv", HTTP_X_API_KEY=world.api_secret)
    assert errors.status_code == 200
    assert errors["Content-Type"].startswith("text/csv")
    assert "attachment" in errors["Content-Disposition"]
    lines = errors.content.decode().splitlines()
    assert lines[0] == "row,column,value,code,message"
    assert lines[1].startswith("3,Montant,douze,amount.not_a_number,")
    assert len(lines) == 2


def test_upload_in_all_or_nothing_mode(world, upload):
    response = upload(world.api_secret, FILE.encode(), mode="all_or_nothing")
    assert response.status_code == 202
    assert response.json()["mode"] == "all_or_nothing"

    import_run_pending(batch_id=response.json()["id"])

    body = Client().get(f"/api/v1/imports/{response.json()['id']}", HTTP_X_API_KEY=world.api_secret).json()
    assert (body["status"], body["created"], body["invalid"]) == ("rejected", 0, 1)
    assert not Claim.objects.exists()


def test_an_unknown_mode_or_file_type_is_422(world, upload):
    assert upload(world.api_secret, FILE.encode(), mode="sometimes").status_code == 422
    refused = upload(world.api_secret, b"%PDF-1.4", name="facture.pdf")
    assert refused.status_code == 422
    assert refused["Content-Type"] == PROBLEM
    assert not ImportBatch.objects.exists()


def test_another_creditors_import_answers_like_a_missing_one(world, upload):
    import_id = upload(world.api_secret, FILE.encode()).json()["id"]
    import_run_pending(batch_id=import_id)
    other = Client(HTTP_X_API_KEY=world.other_api_secret)

    for path in ("/api/v1/imports/{}", "/api/v1/imports/{}/errors.csv"):
        theirs = other.get(path.format(import_id))
        missing = other.get(path.format(import_id + 1000))
        assert theirs.status_code == missing.status_code == 404
        assert theirs["Content-Type"] == missing["Content-Type"] == PROBLEM
        assert theirs.json()["code"] == missing.json()["code"] == "import.not_found"
    assert Client(HTTP_X_API_KEY=world.api_secret).get(f"/api/v1/imports/{import_id}").status_code == 200


def test_imports_need_a_key(world, upload):
    assert Client().get("/api/v1/imports/1").status_code == 401
    f = io.BytesIO(FILE.encode())
    f.name = "export.csv"
    assert Client().post("/api/v1/imports", {"file": f}).status_code == 401
    assert not ImportBatch.objects.exists()
