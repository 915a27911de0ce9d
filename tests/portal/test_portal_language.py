"""The portal's language switch: links, not a form (relance.portal.language; decision record 0004)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from relance.cases.links import portal_token

pytestmark = pytest.mark.django_db


def _paths(case) -> tuple[str, str]:
    token = portal_token(case_id=case.pk, reference=case.reference)
    return reverse("portal:entry", kwargs={"token": token}), reverse("portal:case", kwargs={"token": token})


def _switch(code: str, target: str) -> str:
    return reverse("portal:language", kwargs={"code": code}) + "?next=" + quote(target, safe="/:")


def test_a_language_link_sets_the_language_cookie_and_goes_back(place):
    entry, page = _paths(place("INV-1", "120.50").case)
    client = Client()
    assert client.post(entry, {"postcode": "33000"}).status_code == 302
    response = client.get(_switch("en-gb", page))
    assert response.status_code == 302 and response.url == page
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "en-gb"
    assert "no-store" in response["Cache-Control"]
    html = client.get(page).content.decode()
    assert '<html lang="en-gb">' in html
    assert client.get(_switch("fr", page)).cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert '<html lang="fr">' in client.get(page).content.decode()


def test_the_query_string_of_the_page_comes_back_too(place):
    entry, _ = _paths(place("INV-1", "120.50").case)
    target = entry + "?a=1&b=%C3%A9"
    response = Client().get(_switch("en-gb", target))
    assert response.status_code == 302 and response.url == target


@pytest.mark.parametrize(
    "target",
    [
        "",
        "https://evil.example/p/x/",
        "//evil.example/p/x/",
        "/\\evil.example/p/",
        "/bo/",
        "/healthz",
        "p/x/",
        "javascript:alert(1)//p/",
    ],
)
def test_next_must_be_a_page_of_the_portal_on_this_site(target):
    response = Client().get(reverse("portal:language", kwargs={"code": "en-gb"}), {"next": target} if target else {})
    assert response.status_code == 400
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_an_unknown_language_is_404():
    response = Client().get(_switch("de", "/p/x/"))
    assert response.status_code == 404
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_the_switch_is_a_get_only():
    url = _switch("en-gb", "/p/x/")
    assert Client().post(url).status_code == 405
    assert Client().head(url).status_code == 302


def test_the_case_page_has_language_links_and_no_csrf_token(place, settings):
    settings.RELANCE_SANDBOX_PAYMENTS = False  # as in production: no sandbox form
    entry, page = _paths(place("INV-1", "120.50").case)
    client = Client()
    assert client.post(entry, {"postcode": "33000"}).status_code == 302
    response = client.get(page)
    html = response.content.decode()
    assert "csrfmiddlewaretoken" not in html
    assert settings.CSRF_COOKIE_NAME not in response.cookies
    assert "<form" not in html  # no POST form at all
    nav = re.search(r'<nav class="lang" id="lang" aria-label="[^"]+">(.*?)</nav>', html)
    assert nav is not None
    links = re.findall(r'<a href="([^"]+)" lang="([^"]+)" hreflang="([^"]+)"( aria-current="true")?>', nav.group(1))
    assert [(lang, hreflang) for _, lang, hreflang, _ in links] == [(c, c) for c, _ in settings.LANGUAGES]
    assert [current for *_, current in links].count(' aria-current="true"') == 1
    assert {lang: bool(current) for _, lang, _, current in links}["fr"]  # the active language
    for href, lang, _, _ in links:
        assert href == _switch(lang, page).replace("&", "&amp;")
        followed = client.get(href.replace("&amp;", "&"))
        assert followed.status_code == 302 and followed.url == page


def test_the_landing_page_keeps_its_csrf_token_for_its_form(place):
    entry, _ = _paths(place("INV-1", "120.50").case)
    response = Client().get(entry)
    assert response.content.decode().count("csrfmiddlewaretoken") == 1  # the verification form's
    assert 'id="lang"' in response.content.decode()
    csrf = Client(enforce_csrf_checks=True)
    assert csrf.post(entry, {"postcode": "33000"}).status_code == 403  # CSRF still checked on the POST


def test_the_sandbox_form_keeps_its_csrf_token(place, settings):
    settings.RELANCE_SANDBOX_PAYMENTS = True
    entry, page = _paths(place("INV-1", "120.50").case)
    client = Client()
    assert client.post(entry, {"postcode": "33000"}).status_code == 302
    assert client.get(page).content.decode().count("csrfmiddlewaretoken") == 1
