"""REST API v1 through HTTP: authentication, scopes, idempotent intake, RFC 7807 errors, tenancy.

Invariant 2 (idempotent intake), 6 (a creditor's key sees only its cases; "not yours" answers like
"not found"), 8 (field-level errors, nothing half-written).
"""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from relance.audit.models import AuditEvent
from relance.cases.models import Case
from relance.claims.models import Claim, Debtor
from relance.ledger.models import LedgerTransaction
from relance.tenancy.actors import Actor
from relance.tenancy.services import api_key_create
from support import api_claim_payload

pytestmark = pytest.mark.django_db

TODAY = date.today()
PAYLOAD = api_claim_payload("ORDER-1001")
PROBLEM = "application/problem+json"


def _payload(**changes) -> dict:
    body = copy.deepcopy(PAYLOAD)
    for key, value in changes.items():
        if key.startswith("debtor_"):
            body["debtor"][key.removeprefix("debtor_")] = value
        else:
            body[key] = value
    return body


def _post(body, *, key: str | None = None, bearer: str | None = None, raw: str | None = None):
    headers = {}
    if key is not None:
        headers["HTTP_X_API_KEY"] = key
    if bearer is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
    data = raw if raw is not None else json.dumps(body)
    return Client().post("/api/v1/claims", data, content_type="application/json", **headers)


def _get_case(case_id, key: str):
    return Client().get(f"/api/v1/cases/{case_id}", HTTP_X_API_KEY=key)


def _counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Debtor, Claim, Case, LedgerTransaction, AuditEvent))


def test_place_with_x_api_key_then_repeat_returns_the_same_claim(world):
    first = _post(PAYLOAD, key=world.api_secret)
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["created"] is True
    assert (body["amount"], body["outstanding"], body["currency"]) == ("89.90", "89.90", "EUR")
    claim = Claim.objects.get(pk=body["id"])
    assert claim.creditor == world.creditor
    assert claim.original_amount_minor == 8990
    before = _counts()

    again = _post(PAYLOAD, key=world.api_secret)

    assert again.status_code == 200, again.content
    assert again.json()["id"] == body["id"]
    assert again.json()["case_id"] == body["case_id"]
    assert again.json()["created"] is False
    assert _counts() == before


def test_place_with_bearer_token(world):
    response = _post(PAYLOAD, bearer=world.api_secret)
    assert response.status_code == 201, response.content
    assert Claim.objects.get(pk=response.json()["id"]).creditor == world.creditor
    assert _post(PAYLOAD, bearer=world.api_secret).status_code == 200


def test_the_key_decides_the_creditor_not_the_payload(world):
    mine = _post(PAYLOAD, key=world.api_secret).json()
    theirs = _post(PAYLOAD, key=world.other_api_secret)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine["id"]
    assert Claim.objects.get(pk=theirs.json()["id"]).creditor == world.other_creditor


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"key": "rl_not-a-real-key"}, id="wrong-key"),
        pytest.param({"key": "not-even-prefixed"}, id="garbage-key"),
        pytest.param({"bearer": "rl_not-a-real-key"}, id="wrong-bearer"),
    ],
)
def test_missing_or_wrong_key_is_401_and_writes_nothing(world, credentials):
    before = _counts()
    response = _post(PAYLOAD, **credentials)
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 401
    assert _counts() == before


def test_revoked_key_is_401(world):
    assert _post(PAYLOAD, key=world.api_secret).status_code == 201
    world.api_key.revoked_at = timezone.now()
    world.api_key.save(update_fields=["revoked_at"])
    assert _post(PAYLOAD, key=world.api_secret).status_code == 401
    assert _get_case(Case.objects.get().pk, world.api_secret).status_code == 401


def test_key_without_intake_scope_is_403_problem(world):
    _, read_only = api_key_create(creditor=world.creditor, name="ro", scopes=["read"], actor=Actor.system("tests"))
    before = _counts()
    response = _post(PAYLOAD, key=read_only)
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "forbidden"
    assert problem["scope"] == "intake"
    assert _counts() == before


def test_key_without_read_scope_cannot_read_cases(world):
    case_id = _post(PAYLOAD, key=world.api_secret).json()["case_id"]
    _, intake_only = api_key_create(creditor=world.creditor, name="in", scopes=["intake"], actor=Actor.system("t"))
    response = _get_case(case_id, intake_only)
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"amount": "0"}, "amount", id="amount-zero"),
        pytest.param({"amount": "12,345"}, "amount", id="amount-decimals"),
        pytest.param({"amount": "1e30"}, "amount", id="amount-overflow"),
        pytest.param({"currency": "XYZ"}, "currency", id="currency"),
        pytest.param({"debtor_postcode": "330"}, "debtor.postcode", id="postcode"),
        pytest.param({"debtor_email": "jeanne@"}, "debtor.email", id="email"),
        pytest.param({"due_date": str(TODAY - timedelta(days=60))}, "due_date", id="due-before-invoice"),
    ],
)
def test_invalid_claim_is_422_problem_with_field_errors(world, changes, field):
    before = _counts()
    response = _post(_payload(**changes), key=world.api_secret)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert problem["type"].startswith("https://")
    assert problem["title"]
    assert field in [e["field"] for e in problem["errors"]]
    assert all(e["code"] and e["message"] for e in problem["errors"])
    assert _counts() == before


def test_several_invalid_fields_are_all_reported(world):
    response = _post(_payload(amount="-1", debtor_postcode="x", debtor_phone="12"), key=world.api_secret)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"amount", "debtor.postcode", "debtor.phone"} <= fields


def test_malformed_json_is_400_problem(world):
    before = _counts()
    response = _post(None, key=world.api_secret, raw='{"external_ref": "ORDER-1", ')
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 400
    assert "parse" in problem["detail"].lower()
    assert _counts() == before


def test_missing_and_mistyped_fields_are_422_problem_naming_the_fields(world):
    body = _payload(amount=89.9, invoice_date="2026-13-01")
    del body["external_ref"]
    del body["debtor"]["postcode"]
    response = _post(body, key=world.api_secret)
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    fields = {e["field"] for e in problem["errors"]}
    assert {"external_ref", "debtor.postcode", "amount", "invoice_date"} <= fields
    assert "external_ref" in problem["detail"]


def test_get_own_case(world):
    placed = _post(PAYLOAD, key=world.api_secret).json()
    response = _get_case(placed["case_id"], world.api_secret)
    assert response.status_code == 200
    case = response.json()
    assert case["id"] == placed["case_id"]
    assert case["reference"] == placed["case_reference"]
    assert (case["status"], case["currency"], case["outstanding"]) == ("new", "EUR", "89.90")
    assert case["claims"] == [
        {"invoice_number": "F-ORDER-1001", "external_ref": "ORDER-1001", "amount": "89.90", "outstanding": "89.90"}
    ]


def test_another_creditors_case_answers_exactly_like_a_missing_one(world):
    theirs = _post(PAYLOAD, key=world.other_api_secret).json()["case_id"]
    missing = Case.objects.order_by("-pk").first().pk + 1000

    not_mine = _get_case(theirs, world.api_secret)
    absent = _get_case(missing, world.api_secret)

    assert not_mine.status_code == absent.status_code == 404
    assert not_mine["Content-Type"] == absent["Content-Type"] == PROBLEM

    def without_id(problem: dict, case_id: int) -> dict:
        assert problem.pop("case_id", case_id) == case_id  # only the id the client sent is echoed
        return problem

    assert without_id(not_mine.json(), theirs) == without_id(absent.json(), missing)
    assert b"Jeanne" not in not_mine.content
    # The owner still sees it.
    assert _get_case(theirs, world.other_api_secret).status_code == 200


def test_openapi_schema_is_served_and_lists_the_endpoints():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/claims" in schema["paths"]
    assert "/api/v1/cases/{case_id}" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/claims"]
    assert "get" in schema["paths"]["/api/v1/cases/{case_id}"]
