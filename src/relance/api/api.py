"""REST API v1 (django-ninja): OpenAPI 3.1 at /api/v1/openapi.json, errors as RFC 7807."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestValidationError

from relance.api.auth import ApiKeyAuth, BearerAuth, require_scope
from relance.cases.selectors import case_claim_balances, case_get_for_actor
from relance.core.errors import DomainError
from relance.core.money import Money
from relance.intake.services import claim_place
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


def _field(loc: list[Any] | tuple[Any, ...]) -> str:
    """``["body", "payload", "debtor", "postcode"]`` -> ``debtor.postcode`` (the client's own names)."""
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        source = parts.pop(0)
        if source == "body" and parts:
            parts.pop(0)  # the view's parameter name, not part of the client's document
    return ".".join(str(p) for p in parts) or "body"


@api.exception_handler(RequestValidationError)
def request_invalid(request: HttpRequest, exc: RequestValidationError) -> HttpResponse:
    """Schema errors (missing field, wrong type) as RFC 7807, one entry per field like domain errors."""
    errors = [
        {"field": _field(e.get("loc", ())), "code": str(e.get("type", "invalid")), "message": str(e.get("msg", ""))}
        for e in exc.errors
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


@api.post("/claims", response={200: ClaimOut, 201: ClaimOut}, summary="Place a claim")
def claims_place(request: HttpRequest, payload: ClaimPlaceIn) -> Status[ClaimOut]:
    """Place one claim. Idempotent on `external_ref`: sending it again returns the same claim (200)."""
    key = require_scope(request, ApiKey.Scope.INTAKE)
    data = ClaimData(
        external_ref=payload.external_ref,
        invoice_number=payload.invoice_number,
        invoice_date=payload.invoice_date,
        due_date=payload.due_date,
        amount=payload.amount,
        currency=payload.currency,
        description=payload.description,
        debtor=DebtorData(**payload.debtor.dict()),
    )
    placed = claim_place(creditor=key.creditor, data=data, actor=Actor.for_api_key(key))
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
    )
    return Status(201 if placed.created else 200, out)


@api.get("/cases/{case_id}", response=CaseOut, summary="Get a case")
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
