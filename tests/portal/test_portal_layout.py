"""The portal's own template engine and its one-level layout (portalfast3, decision 0002).

The portal renders through the "portal" engine (request, i18n, messages; not the back office's user,
permissions and ``can`` matrix); its layout writes base.html's document in instead of extending it.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.contrib.messages import constants
from django.contrib.messages.storage.fallback import FallbackStorage
from django.template import TemplateDoesNotExist, engines
from django.template.backends.jinja2 import Jinja2
from django.templatetags.static import static
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.cases.links import portal_token
from relance.cases.models import Case
from relance.portal.jinja import static as fixed_static
from relance.portal.rendering import ENGINE, render
from relance.portal.views import _date_text, _status_label

pytestmark = pytest.mark.django_db


def _path(case, page: str) -> str:
    return reverse(f"portal:{page}", kwargs={"token": portal_token(case_id=case.pk, reference=case.reference)})


def _verified_client(case) -> Client:
    client = Client()
    assert client.post(_path(case, "entry"), {"postcode": "33000"}).status_code == 302
    return client


def _head(html: str) -> list[str]:
    """The lines of ``<head>``, without the title (each page has its own) and blank lines."""
    head = html.split("<head>", 1)[1].split("</head>", 1)[0]
    return [line for line in head.splitlines() if line.strip() and "<title>" not in line]


def test_the_portal_head_is_base_html_head(place):
    """The layout no longer extends base.html: its document head must stay the same as base.html's."""
    case = place("INV-1", "120.50").case
    portal = _verified_client(case).get(_path(case, "case")).content.decode()
    base = engines["django"].get_template("base.html").render({}, RequestFactory().get("/"))
    assert _head(portal) == _head(base)
    for marker in ('<main class="narrow" id="main">', "<!doctype html>", "</html>"):
        assert marker in portal
    assert re.search(r'<html lang="fr">', portal)


@pytest.mark.parametrize("page", ["entry", "case"])
def test_portal_pages_render_through_the_portal_engine(place, page, monkeypatch):
    """Jinja2 through Django's backend (decision 0006); no back-office context processor runs."""
    engine = engines[ENGINE]
    assert isinstance(engine, Jinja2)
    assert engine.template_context_processors == []
    seen: list[str] = []
    real = engine.env.get_template
    monkeypatch.setattr(engine.env, "get_template", lambda name, *a, **k: seen.append(name) or real(name, *a, **k))
    case = place("INV-1", "120.50").case
    client = _verified_client(case) if page == "case" else Client()
    response = client.get(_path(case, page))
    assert response.status_code == 200
    assert seen == ["portal/case.html" if page == "case" else "portal/verify.html", "portal/_layout.html"]
    # Django's template engine never sees the portal's templates (they are Jinja2's only).
    for name in ("portal/case.html", "portal/_layout.html"):
        with pytest.raises(TemplateDoesNotExist):
            engines["django"].get_template(name)


def test_messages_still_show_on_portal_pages():
    request = RequestFactory().get("/")
    request.session = {}
    request._messages = FallbackStorage(request)  # what MessageMiddleware sets
    request._messages.add(constants.SUCCESS, "saved-marker")
    html = render(request, "portal/_layout.html", {"creditor": None}).content.decode()
    assert '<ul class="messages"><li>saved-marker</li></ul>' in html


def test_fixed_static_is_static_and_follows_the_settings():
    assert fixed_static("relance/app.css") == static("relance/app.css")
    with override_settings(STATIC_URL="/elsewhere/"):
        assert fixed_static("relance/app.css") == static("relance/app.css") == "/elsewhere/relance/app.css"
    assert fixed_static("relance/app.css") == static("relance/app.css")


@pytest.mark.parametrize("language", ["fr", "en-gb"])
@settings(max_examples=40, deadline=None)
@given(day=st.one_of(st.none(), st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))))
def test_the_claims_dates_are_the_date_filters(language, day):
    with translation.override(language):
        expected = "" if day is None else date_format(day, "SHORT_DATE_FORMAT")
        assert _date_text(day, translation.get_language()) == expected


def test_the_remembered_dates_are_dropped_when_a_setting_changes():
    _date_text(date(2026, 11, 26), "fr")
    assert _date_text.cache_info().currsize > 0
    with override_settings(USE_THOUSAND_SEPARATOR=True):
        assert _date_text.cache_info().currsize == 0


@pytest.mark.parametrize("language", ["fr", "en-gb"])
def test_the_status_label_is_get_status_display(language):
    with translation.override(language):
        for status in [*(value for value, _label in Case._meta.get_field("status").choices), "unknown"]:
            assert _status_label(status) == Case(status=status).get_status_display()
