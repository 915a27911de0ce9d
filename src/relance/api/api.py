"""REST API v1 (django-ninja): OpenAPI 3.1 at /api/v1/openapi.json, errors as RFC 7807."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import date
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from ninja import Body, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestValidationError

from relance.api.auth import ApiKeyAuth, BearerAuth, require_scope, scoped
from relance.api.idempotency import idempotency_replay, idempotency_store
from relance.cases.selectors import case_claim_balances, case_get_for_actor
from relance.core.errors import DomainError
from relance.core.money import Money
from relance.intake.services import claim_place, claims_place_batch
from relance.intake.validate import ClaimData, DebtorData
from relance.tenancy.actors import Actor
from relance.tenancy.models import ApiKey

api = NinjaAPI(
    title="Relance API",
    version="1",
    description="Place claims and follow cases. Authenticate with an API key (X-API-Key header).",
    auth=[ApiKeyAuth(), BearerAuth()],
    urls_namespace="api",
    docs_url="/docs",
)


def _problem(request: HttpRequest, problem: dict[str, Any]) -> HttpResponse:
    response = api.create_response(request, problem, status=problem["status"])
    response["Content-Type"] = "application/problem+json"
    return response


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return _problem(request, exc.problem())


_SOURCES = frozenset({"body", "path", "query", "header", "cookie", "form", "file"})


def _field(loc: list[Any] | tuple[Any, ...], *, body_is_list: bool = False) -> str | None:
    """``["body", "payload", "debtor", "postcode"]`` -> ``debtor.postcode`` (the client's own names).

    A body that may be an object or an array (``POST /claims``) is validated against both; the
    errors of the branch the client did not send are dropped (``None``).
    """
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        source = parts.pop(0)
        if source == "body" and parts:
            parts.pop(0)  # the view's parameter name, not part of the client's document
    if parts and isinstance(parts[0], str) and parts[0].startswith(("function-wrap", "list[", "ClaimPlaceIn")):
        branch = parts.pop(0)
        if branch.startswith("list[") != body_is_list:
            return None
    return ".".join(str(p) for p in parts) or "body"


def _body_is_list(request: HttpRequest) -> bool:
    if not (request.content_type or "").startswith("application/json"):
        return False  # multipart uploads: the body was streamed and cannot be read again
    try:
        return request.body.lstrip()[:1] == b"["
    except RawPostDataException:
        return False


@api.exception_handler(RequestValidationError)
def request_invalid(request: HttpRequest, exc: RequestValidationError) -> HttpResponse:
    """Schema errors (missing field, wrong type) as RFC 7807, one entry per field like domain errors."""
    is_list = _body_is_list(request)
    errors = [
        {"field": field, "code": str(e.get("type", "invalid")), "message": str(e.get("msg", ""))}
        for e in exc.errors
        if (field := _field(e.get("loc", ()), body_is_list=is_list)) is not None
    ]
    return _problem(
        request,
        {
            "type": "https://relance.dev/problems/request.invalid",
            "title": "The request does not match the schema",
            "status": 422,
            "detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            "code": "request.invalid",
            "errors": errors,
        },
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """Malformed bodies (400) and missing or bad credentials (401) as RFC 7807 too."""
    code = {400: "request.malformed", 401: "unauthorized"}.get(exc.status_code, "http_error")
    response = _problem(
        request,
        {
            "type": f"https://relance.dev/problems/{code}",
            "title": str(exc.message),
            "status": exc.status_code,
            "detail": "Send an API key in the X-API-Key header (or Authorization: Bearer)."
            if isinstance(exc, AuthenticationError)
            else str(exc.message),
            "code": code,
        },
    )
    if isinstance(exc, AuthenticationError):
        response["WWW-Authenticate"] = 'Bearer realm="relance"'
    return response


class DebtorIn(Schema):
    kind: str = "person"
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    siren: str = ""
    siret: str = ""
    vat_number: str = ""
    iban: str = ""
    email: str = ""
    phone: str = ""
    address_line1: str = ""
    address_line2: str = ""
    postcode: str
    city: str = ""
    country: str = "FR"
    language: str = "fr"


class ClaimPlaceIn(Schema):
    external_ref: str
    invoice_number: str
    invoice_date: date
    due_date: date
    amount: str
    currency: str = "EUR"
    description: str = ""
    debtor: DebtorIn


class ClaimOut(Schema):
    id: int
    external_ref: str
    case_id: int
    case_reference: str
    case_status: str
    amount: str
    outstanding: str
    currency: str
    created: bool
    outcome: str = "created"
    detail: str = ""


class ClaimLineOut(Schema):
    invoice_number: str
    external_ref: str
    amount: str
    outstanding: str


class CaseOut(Schema):
    id: int
    reference: str
    status: str
    currency: str
    outstanding: str
    claims: list[ClaimLineOut]


def _decimal(minor: int, currency: str) -> str:
    return str(Money(minor, currency).to_decimal())


class BatchItemOut(Schema):
    index: int
    external_ref: str
    status: str
    claim_id: int | None = None
    case_id: int | None = None
    detail: str = ""
    errors: list[dict[str, str]] = []


class BatchOut(Schema):
    counts: dict[str, int]
    results: list[BatchItemOut]


def _claim_data(payload: ClaimPlaceIn) -> ClaimData:
    return ClaimData(
        external_ref=payload.external_ref,
        invoice_number=payload.invoice_number,
        invoice_date=payload.invoice_date,
        due_date=payload.due_date,
        amount=payload.amount,
        currency=payload.currency,
        description=payload.description,
        debtor=DebtorData(**payload.dict()["debtor"]),
    )


def _place_one(key: ApiKey, payload: ClaimPlaceIn) -> tuple[int, dict[str, Any]]:
    placed = claim_place(creditor=key.creditor, data=_claim_data(payload), actor=Actor.for_api_key(key))
    claim, case = placed.claim, placed.case
    outstanding = next(b.outstanding_minor for b in case_claim_balances(case=case) if b.claim.pk == claim.pk)
    out = ClaimOut(
        id=claim.pk,
        external_ref=claim.external_ref,
        case_id=case.pk,
        case_reference=case.reference,
        case_status=case.status,
        amount=_decimal(claim.original_amount_minor, claim.currency),
        outstanding=_decimal(outstanding, claim.currency),
        currency=claim.currency,
        created=placed.created,
        outcome=placed.outcome,
        detail=placed.detail,
    )
    return (201 if placed.created else 200), out.dict()


def _place_many(key: ApiKey, payloads: list[ClaimPlaceIn]) -> tuple[int, dict[str, Any]]:
    items = claims_place_batch(
        creditor=key.creditor, items=[_claim_data(p) for p in payloads], actor=Actor.for_api_key(key)
    )
    counts = Counter(item.status for item in items)
    out = BatchOut(
        counts={s: counts.get(s, 0) for s in ("created", "unchanged", "credited", "review", "invalid")},
        results=[BatchItemOut(**{**asdict(item), "errors": list(item.errors)}) for item in items],
    )
    return 200, out.dict()


@api.post(
    "/claims",
    response={200: ClaimOut | BatchOut, 201: ClaimOut},
    summary="Place a claim, or a batch of up to 10,000",
    auth=scoped("intake"),
)
def claims_place(request: HttpRequest, payload: Body[ClaimPlaceIn | list[ClaimPlaceIn]]) -> HttpResponse:
    """Place one claim (an object) or up to 10,000 (an array).

    Idempotent on `external_ref`: sending a claim again returns the same claim; a lower amount is a
    credit note, a higher one is flagged for review. Send an `Idempotency-Key` header to make a whole
    request safe to retry: the same key with the same body returns the first response (header
    `Idempotent-Replayed: true`); with another body, 409.
    """
    key = require_scope(request, ApiKey.Scope.INTAKE)
    body = request.body
    idem = request.headers.get("Idempotency-Key", "").strip()
    if idem:
        replay = idempotency_replay(creditor=key.creditor, key=idem, body=body)
        if replay is not None:
            response = JsonResponse(replay.body, status=replay.status)
            response["Idempotent-Replayed"] = "true"
            return response
    with transaction.atomic():
        if isinstance(payload, list):
            status, out = _place_many(key, payload)
        else:
            status, out = _place_one(key, payload)
        if idem:
            idempotency_store(creditor=key.creditor, key=idem, body=body, status=status, response=out)
    return JsonResponse(out, status=status, json_dumps_params={"ensure_ascii": False})


@api.get("/cases/{case_id}", response=CaseOut, summary="Get a case", auth=scoped("read"))
def cases_get(request: HttpRequest, case_id: int) -> CaseOut:
    key = require_scope(request, ApiKey.Scope.READ)
    case = case_get_for_actor(actor=Actor.for_api_key(key), case_id=case_id)
    balances = case_claim_balances(case=case)
    return CaseOut(
        id=case.pk,
        reference=case.reference,
        status=case.status,
        currency=case.currency,
        outstanding=_decimal(sum(b.outstanding_minor for b in balances), case.currency),
        claims=[
            ClaimLineOut(
                invoice_number=b.claim.invoice_number,
                external_ref=b.claim.external_ref,
                amount=_decimal(b.claim.original_amount_minor, b.claim.currency),
                outstanding=_decimal(b.outstanding_minor, b.claim.currency),
            )
            for b in balances
        ],
    )


from relance.api.imports import router as imports_router  # noqa: E402 - routers need `api` and `_key`

api.add_router("/imports", imports_router)

from relance.api.evidence import router as evidence_router  # noqa: E402

api.add_router("", evidence_router)

from relance.api.payments import router as payments_router  # noqa: E402

api.add_router("", payments_router)
