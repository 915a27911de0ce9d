"""The strategy and template pages of the back office through HTTP (issue 4; back-office issue).

Agency staff only: a creditor's user gets 404 (invariant 6); an agent may look, not save.
"""

from __future__ import annotations

import pytest
from django.test import Client

from relance.comms.models import MessageTemplate
from relance.strategies.models import Strategy
from relance.tenancy.models import User

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # the messages below are read in English
    client.force_login(user)
    return client


@pytest.fixture
def admin(world) -> User:
    return User.objects.create_user(username="boss", password="x", role=User.Role.AGENCY_ADMIN, agency=world.agency)


def test_creditor_users_see_none_of_it(world):
    client = client_for(world.creditor_user)
    for url in ("/bo/strategies/", "/bo/strategies/default/", "/bo/strategies/new/", "/bo/templates/"):
        assert client.get(url).status_code in {403, 404}, url


def test_list_shows_shipped_strategies_and_enables_one(world, admin):
    client = client_for(admin)
    page = client.get("/bo/strategies/").content.decode()
    for key in ("default", "b2c_small", "b2c_high", "b2b_pre_due"):
        assert f'id="strategy-{key}"' in page
    client.post("/bo/strategies/", {"key": "b2c_small", "enabled": "1"})
    assert Strategy.objects.get(key="b2c_small").enabled
    # An agent cannot toggle.
    assert client_for(world.agent).post("/bo/strategies/", {"key": "b2c_small", "enabled": "0"}).status_code == 404


def test_editor_shows_the_line_of_an_error_and_saves_a_new_version(world, admin, place):
    place()
    client = client_for(admin)
    source = Strategy.objects.get(key="b2c_small").source
    broken = source.replace("action: sms", "action: pigeon", 1)
    page = client.post("/bo/strategies/b2c_small/", {"source": broken, "op": "save"}).content.decode()
    line = next(i for i, text in enumerate(broken.splitlines(), start=1) if "pigeon" in text)
    assert f'data-line="{line}"' in page
    assert "&#x27;pigeon&#x27; is not one of" in page
    assert Strategy.objects.filter(key="b2c_small").count() == 1
    response = client.post("/bo/strategies/b2c_small/", {"source": source.replace("day 45", "day 46"), "op": "save"})
    assert response.status_code == 302
    assert Strategy.objects.filter(key="b2c_small").count() == 2
    assert "Saved as version 2" in client.get(response["Location"]).content.decode()
    # Agents may check but not save.
    assert (
        client_for(world.agent).post("/bo/strategies/b2c_small/", {"source": source, "op": "save"}).status_code == 404
    )


def test_preview_and_dry_run(world, admin, place):
    case = place().case
    client = client_for(admin)
    source = Strategy.objects.get(key="default").source
    preview = client.post("/bo/strategies/default/", {"source": source, "op": "preview"}).content.decode()
    assert 'id="preview-result"' in preview
    assert case.reference in preview
    dry = client.post("/bo/strategies/default/", {"source": source, "op": "dry_run"}).content.decode()
    assert 'id="dry-run-result"' in dry
    assert "first_notice" in dry


def test_template_page_checks_previews_and_saves(world, admin, place):
    case = place().case
    client = client_for(admin)
    body = (
        "Réf. {{ case.reference }}"
        '{% if first_letter_on %} courrier du {{ first_letter_on|date:"d/m/Y" }}{% endif %} {{ outstanding }} STOP'
    )
    form = {"channel": "sms", "name": "reminder", "language": "fr", "creditor": "", "subject": "", "body_text": body}
    checked = client.post("/bo/templates/", {**form, "op": "check"}).content.decode()
    assert case.reference in checked and 'id="template-preview"' in checked
    refused = client.post("/bo/templates/", {**form, "body_text": "HUISSIER " + body, "op": "save"}).content.decode()
    assert 'id="problems"' in refused and "huissier" in refused
    assert not MessageTemplate.objects.exists()
    assert client.post("/bo/templates/", {**form, "op": "save"}).status_code == 302
    assert MessageTemplate.objects.get().name == "reminder"
    other_agency_creditor = {"creditor": "999999"}
    assert client.post("/bo/templates/", {**form, **other_agency_creditor, "op": "save"}).status_code == 404
