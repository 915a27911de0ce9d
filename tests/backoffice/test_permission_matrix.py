"""The role × view matrix (issue 6), generic: every page and every API operation, as every role.

Pages are found through Django's URL resolver (every pattern under /bo/), API operations through the
django-ninja routers, so a view added later is covered without touching this file. Each page must
declare its permission (``@requires`` / ``@public``), each API operation its key scope
(``auth=scoped(...)``); the matrix (``tenancy.permissions.MATRIX``) then says who gets in. Wherever
it says no, the answer must be 403 or 404, for GET and POST alike; a creditor's user asking for
another creditor's object gets 403/404 even where the role may open that kind of page (invariant 6).

A new URL parameter needs an id here (``ids`` below): the test says so by name.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from relance.api.api import api
from relance.api.auth import scope_of
from relance.api.models import WebhookDelivery, WebhookEvent
from relance.api.webhooks import webhook_endpoint_create
from relance.cases.models import WorkItem
from relance.cases.queues import work_item_open
from relance.claims.models import DebtorMatchReview
from relance.claims.services import evidence_attach
from relance.comms.models import Action
from relance.intake.imports import import_create
from relance.payments.disputes import dispute_open
from relance.payments.models import ReturnPolicy
from relance.payments.returns import return_request
from relance.strategies.engine import engine_tick
from relance.tenancy.access import permission_of
from relance.tenancy.actors import Actor
from relance.tenancy.models import User
from relance.tenancy.permissions import MATRIX, ROLES, roles_for
from relance.tenancy.services import api_key_create

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
DENIED = {403, 404}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


def pages() -> list[tuple[str, object]]:
    """Every back-office route with its view (``bo/cases/<int:case_id>/`` …)."""
    return [(route, view) for route, view in _walk(get_resolver().url_patterns) if route.startswith("bo/")]


def api_operations() -> list[tuple[str, str, object]]:
    """(method, path, operation) for every API operation."""
    found = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                found.extend((method, "/api/v1" + prefix + path, operation) for method in operation.methods)
    return found


@pytest.fixture
def objects(world, place, settings, tmp_path):
    """For each creditor: a case, a claim, evidence, a message, an import, an API key, a webhook delivery."""
    settings.MEDIA_ROOT = tmp_path / "media"
    made = {}
    day = datetime.now(ZoneInfo("Europe/Paris")).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    for side, creditor, ref, last_name in (
        ("own", world.creditor, "MINE-1", "Martin"),
        ("other", world.other_creditor, "THEIRS-1", "Durand"),
    ):
        placed = place(ref, "120.50", creditor=creditor, email=f"{ref.lower()}@example.fr", last_name=last_name)
        evidence = evidence_attach(
            claim=placed.claim, kind="invoice", content=io.BytesIO(b"%PDF-1.4\n"), filename="f.pdf", actor=SYSTEM
        )
        batch = import_create(creditor=creditor, content=io.BytesIO(b"a;b\r\n1;2\r\n"), filename="x.csv", actor=SYSTEM)
        key, _ = api_key_create(creditor=creditor, name=f"{side} key", scopes=["read"], actor=SYSTEM)
        endpoint, _ = webhook_endpoint_create(
            creditor=creditor, url="http://127.0.0.1:9/hook", event_types=["case.created"], actor=SYSTEM
        )
        event = WebhookEvent.objects.create(
            creditor=creditor,
            type="case.created",
            audit_seq=10_000 + creditor.pk,
            occurred_at=placed.case.placed_at,
            payload={"type": "case.created"},
        )
        delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint, status="failed")
        item = work_item_open(
            kind=WorkItem.Kind.CALL,
            source=f"calltask:{side}",
            agency_id=world.agency.pk,
            case=placed.case,
            title="Call",
            actor=SYSTEM,
        )
        made[side] = {
            "work_item": item,
            "case": placed.case,
            "claim": placed.claim,
            "evidence": evidence,
            "import": batch,
            "key": key,
            "endpoint": endpoint,
            "delivery": delivery,
        }
    engine_tick(now=datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo("Europe/Paris")))
    for side, creditor in (("own", world.creditor), ("other", world.other_creditor)):
        case = made[side]["case"]
        made[side]["action"] = Action.objects.get(case=case)
        debtor = Actor.for_debtor(case_id=case.pk)
        ReturnPolicy.objects.create(creditor=creditor, returns_allowed=True, instructions="Renvoyez le colis")
        made[side]["return"] = return_request(case=case, claim_id=made[side]["claim"].pk, note="", actor=debtor)
        dispute = dispute_open(
            case=case, reason="defective", statement="Cassé", files=[("p.pdf", io.BytesIO(b"%PDF-1.4\n"))], actor=debtor
        )
        made[side]["dispute"] = dispute
        made[side]["creditor"] = creditor
        made[side]["dispute_file"] = dispute.files.get()
    own_debtor, other_debtor = made["own"]["case"].debtor, made["other"]["case"].debtor
    made["own"]["review"] = DebtorMatchReview.objects.create(debtor=own_debtor, candidate=other_debtor, rule="name")
    made["other"]["review"] = DebtorMatchReview.objects.create(debtor=other_debtor, candidate=own_debtor, rule="name")
    return made


def ids(objects, side: str) -> dict[str, object]:
    """URL parameter -> value, for the objects of one side. Add a line for a new parameter."""
    o = objects[side]
    return {
        "case_id": o["case"].pk,
        "evidence_id": o["evidence"].pk,
        "action_id": o["action"].pk,
        "import_id": o["import"].pk,
        "key_id": o["key"].pk,
        "endpoint_id": o["endpoint"].pk,
        "delivery_id": o["delivery"].pk,
        "external_ref": o["claim"].external_ref,
        "item_id": o["work_item"].pk,
        "dispute_id": o["dispute"].pk,
        "return_id": o["return"].pk,
        "file_id": o["dispute_file"].pk,
        "review_id": o["review"].pk,
        "creditor_id": o["creditor"].pk,
        "verb": "note",  # case actions and work-item actions; POST-only, so GET answers 405 when allowed
        "kind": "call",
        "name": "ageing",
        "fmt": "csv",
    }


def fill(route: str, values: dict[str, object]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in values:
            pytest.fail(f"{route}: no test id for URL parameter {name!r}; add it to ids() in {__file__}")
        return str(values[name])

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)


def fill_api(path: str, values: dict[str, object]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[-1]
        if name not in values:
            pytest.fail(f"{path}: no test id for API parameter {name!r}; add it to ids() in {__file__}")
        return str(values[name])

    return re.sub(r"\{([\w:]+)\}", sub, path)


@pytest.fixture
def users(world):
    """One user per role; creditor roles belong to ``world.creditor`` (the "own" side)."""
    made = {}
    for role in ROLES:
        creditor = world.creditor if role in User.CREDITOR_ROLES else None
        made[role] = User.objects.create_user(
            username=f"matrix-{role}", password="x", role=role, agency=world.agency, creditor=creditor
        )
    return made


def test_every_page_declares_a_known_permission():
    undeclared = []
    for route, view in pages():
        try:
            permission = permission_of(view)
        except AttributeError:
            undeclared.append(route)
            continue
        if permission is not None:
            roles_for(permission)
    assert not undeclared, f"pages without @requires(...) or @public: {undeclared}"


def test_every_api_operation_declares_a_scope():
    missing = [f"{m} {p}" for m, p, op in api_operations() if scope_of(op.auth_callbacks) is None]
    assert not missing, f"API operations without auth=scoped(...): {missing}"


def test_every_page_as_every_role(users, objects):
    problems: list[str] = []
    own, other = ids(objects, "own"), ids(objects, "other")
    checked = 0
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        is_creditor_role = role in User.CREDITOR_ROLES
        for route, view in pages():
            permission = permission_of(view)
            if permission is None:
                continue
            # Routes whose parameters name another creditor's object (not e.g. a chart name).
            params = re.findall(r"<(?:\w+:)?(\w+)>", route)
            has_params = any(own.get(p) != other.get(p) for p in params)
            may = role in roles_for(permission)
            for side, values in (("own", own), ("other", other)):
                if side == "other" and not has_params:
                    continue
                url = fill(route, values)
                denied = not may or (side == "other" and is_creditor_role)
                if denied:
                    # 405 (the view takes the other method) reveals nothing; the method it takes must deny.
                    statuses = {method: getattr(client, method)(url).status_code for method in ("get", "post")}
                    checked += 1
                    if any(s not in DENIED | {405} for s in statuses.values()) or set(statuses.values()) == {405}:
                        problems.append(f"{role} {url} ({permission}, {side}): {statuses}")
                else:
                    status = client.get(url).status_code
                    checked += 1
                    # POST-only pages answer 405 to GET; anything else must open.
                    if status in DENIED or status >= 500:
                        problems.append(f"{role} GET {url} ({permission}, {side}) should open: {status}")
    assert not problems, "\n".join(problems)
    assert checked > 100


def test_anonymous_users_are_sent_to_the_login_page(objects):
    own = ids(objects, "own")
    for route, view in pages():
        if permission_of(view) is None:
            continue
        response = Client().get(fill(route, own))
        assert response.status_code in {302, 405}, route
        if response.status_code == 302:
            assert response.url.startswith("/bo/login/"), route


EXAMPLES = {"string": "1", "integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}
FORMATS = {"date": "2026-01-02", "date-time": "2026-01-02T10:00:00+01:00", "email": "a@example.fr"}


def example_body(method: str, path: str) -> dict[str, object] | None:
    """A minimal JSON body with every required field of the operation's schema (None: no JSON body)."""
    schema = api.get_openapi_schema()
    operation = schema["paths"][re.sub(r"\{\w+:(\w+)\}", r"{\1}", path)]
    body = operation.get(method.lower(), {}).get("requestBody", {}).get("content", {}).get("application/json")
    if body is None:
        return None
    ref = body["schema"].get("$ref", "")
    model = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else body["schema"]
    example: dict[str, object] = {}
    for name in model.get("required", []):
        prop = model["properties"][name]
        example[name] = FORMATS.get(prop.get("format", ""), EXAMPLES.get(prop.get("type", "string"), "1"))
    return example


def test_every_api_operation_with_every_scope_and_another_creditors_ids(world, users, objects):
    keys = {}
    for scope in ("read", "write", "intake"):
        _, keys[scope] = api_key_create(creditor=world.creditor, name=scope, scopes=[scope], actor=SYSTEM)
    _, all_scopes = api_key_create(
        creditor=world.creditor, name="all", scopes=["read", "write", "intake"], actor=SYSTEM
    )
    own, other = ids(objects, "own"), ids(objects, "other")
    problems: list[str] = []
    session = Client()
    session.force_login(users["agency_admin"])  # a logged-in page session is no API credential
    for method, path, operation in api_operations():
        needed = scope_of(operation.auth_callbacks)
        url = fill_api(path, own)
        call = getattr(Client(), method.lower())
        if (status := call(url).status_code) != 401:
            problems.append(f"{method} {url} without a key: {status}")
        if (status := getattr(session, method.lower())(url).status_code) != 401:
            problems.append(f"{method} {url} with a page session: {status}")
        for scope, secret in keys.items():
            status = call(url, HTTP_X_API_KEY=secret).status_code
            if scope != needed and status != 403:
                problems.append(f"{method} {url} with a {scope!r} key (needs {needed!r}): {status}")
            if scope == needed and status in {401, 403}:
                problems.append(f"{method} {url} with the {scope!r} key it needs: {status}")
        if "{" in path:
            # A well-formed body, so that only the ownership check can refuse the call.
            body = example_body(method, path)
            extra = {"data": json.dumps(body), "content_type": "application/json"} if body is not None else {}
            status = call(fill_api(path, other), HTTP_X_API_KEY=all_scopes, **extra).status_code
            if status != 404:
                problems.append(f"{method} {fill_api(path, other)}: another creditor's id answered {status}, not 404")
    assert not problems, "\n".join(problems)


def test_the_matrix_in_the_docs_is_the_matrix_in_the_code():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "permissions.md").read_text()
    for permission, (roles, _) in MATRIX.items():
        line = next((row for row in doc.splitlines() if row.startswith(f"| `{permission}` |")), None)
        assert line is not None, f"docs/permissions.md has no row for {permission}"
        cells = [c.strip() for c in line.strip("|").split("|")][1 : 1 + len(ROLES)]
        documented = {role for role, cell in zip(ROLES, cells, strict=True) if cell == "✓"}
        assert documented == set(roles), f"{permission}: docs say {sorted(documented)}, code says {sorted(roles)}"
