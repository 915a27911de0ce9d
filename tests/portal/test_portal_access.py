"""A debtor's verification in a signed, expiring cookie (relance.portal.access; decision record 0004).

Invariant 6: a debtor sees only their own case, and only after verification (postcode) — the cookie
names the cases this browser verified, is checked on every page of a case, and needs no database.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from relance.cases.links import portal_token
from relance.portal import access
from relance.tenancy.models import Agency, Creditor

pytestmark = pytest.mark.django_db

COOKIE = access.COOKIE_NAME
PAGES = ["case", "transfer_qr", "dispute", "return", "contact", "plan", "promise", "hardship", "card_pay"]


_TOKENS: dict[tuple[int, str], str] = {}


def _path(case, page: str = "entry") -> str:
    """The page's path, with one token per case (a token carries the second it was signed in)."""
    token = _TOKENS.setdefault((case.pk, case.reference), portal_token(case_id=case.pk, reference=case.reference))
    return reverse(f"portal:{page}", kwargs={"token": token})


def _verified_client(case) -> Client:
    client = Client()
    assert client.post(_path(case), {"postcode": "33000"}).status_code == 302
    return client


def _signed_at(monkeypatch, cases: list[int], seconds_ago: float) -> str:
    """A cookie value for ``cases`` issued ``seconds_ago`` seconds ago."""
    issued = time.time() - seconds_ago
    with monkeypatch.context() as m:
        m.setattr(signing.time, "time", lambda: issued)
        return access.sign(cases)


def test_the_right_postcode_sets_the_signed_cookie_and_no_session(place):
    case = place("INV-1", "120.50").case
    client = Client()
    response = client.post(_path(case), {"postcode": "33000"})
    assert response.status_code == 302 and response.url == _path(case, "case")
    cookie = response.cookies[COOKIE]
    assert cookie["path"] == "/p/"
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == access.VERIFIED_SECONDS == 30 * 60
    assert not cookie["secure"]  # tests run without TLS; production: the next test
    assert signing.TimestampSigner(salt=access.SALT).unsign(cookie.value) == str(case.pk)
    assert "sessionid" not in response.cookies
    assert not Session.objects.exists()
    assert client.get(_path(case, "case")).status_code == 200


def test_the_cookie_is_secure_in_production(place, settings):
    settings.SESSION_COOKIE_SECURE = True  # what RELANCE_ENV=production sets
    case = place("INV-1", "120.50").case
    response = Client().post(_path(case), {"postcode": "33000"})
    assert response.cookies[COOKIE]["secure"]


def test_a_wrong_postcode_sets_no_cookie(place):
    case = place("INV-1", "120.50").case
    response = Client().post(_path(case), {"postcode": "75001"})
    assert response.status_code == 200
    assert COOKIE not in response.cookies


def test_the_case_page_reads_no_session_and_makes_one_query(place):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(_path(case, "case"))
    assert response.status_code == 200
    assert len(queries) == 1, [q["sql"] for q in queries]  # the page's one statement
    assert "django_session" not in queries[0]["sql"]
    assert COOKIE not in response.cookies  # issued a moment ago: not re-issued
    # A personal page: not for a shared cache, and it depends on the cookie.
    assert "Cookie" in response["Vary"] and "private" in response["Cache-Control"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_of_a_case_needs_the_cookie_of_that_case(place, world, page):
    mine = place("INV-1", "120.50").case
    same_creditor = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand", postcode="33000").case
    other_creditor = place(
        "OTHER-1", "60.00", creditor=world.other_creditor, email="lea@example.fr", last_name="Martin"
    ).case
    agency = Agency.objects.create(legal_name="Autre Agence SAS", address="3 rue Autre, 69001 Lyon")
    foreign = Creditor.objects.create(agency=agency, slug="foreign", legal_name="Foreign SAS", mode="B")
    other_tenant = place("FOREIGN-1", "70.00", creditor=foreign, email="tom@example.fr", last_name="Petit").case

    client = _verified_client(mine)
    assert client.get(_path(mine, page)).status_code in {200, 302, 404}  # 404: no card provider configured
    for case in (same_creditor, other_creditor, other_tenant):
        response = client.get(_path(case, page))
        assert response.status_code in {302, 403}, (page, case.reference, response.status_code)
        if response.status_code == 302:
            assert response.url == _path(case)  # back to that case's own verification
        assert b"Durand" not in response.content and b"Petit" not in response.content


@pytest.mark.parametrize(
    "tamper",
    [
        lambda value: value[:-1] + ("A" if value[-1] != "A" else "B"),  # another signature
        lambda value: "99999" + value[value.index(":") :],  # another case, the old signature
        lambda value: signing.dumps([int(value.split(":")[0])]),  # signed for another purpose (salt)
        lambda value: "",
        lambda value: "garbage",
    ],
)
def test_a_tampered_cookie_opens_nothing_and_is_deleted(place, tamper):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)
    client.cookies[COOKIE] = tamper(client.cookies[COOKIE].value)
    response = client.get(_path(case, "case"))
    assert response.status_code == 302 and response.url == _path(case)
    if client.cookies[COOKIE].value:
        assert response.cookies[COOKIE].value == ""  # deleted
        assert response.cookies[COOKIE]["path"] == "/p/"


def test_a_cookie_signed_with_another_secret_key_opens_nothing(place):
    case = place("INV-1", "120.50").case
    client = Client()
    client.cookies[COOKIE] = signing.TimestampSigner(key="another-secret-key", salt=access.SALT).sign(str(case.pk))
    assert client.get(_path(case, "case")).status_code == 302


def test_an_old_secret_key_still_opens_while_it_is_a_fallback(place, settings):
    case = place("INV-1", "120.50").case
    old = signing.TimestampSigner(key="the-old-key", salt=access.SALT).sign(str(case.pk))
    client = Client()
    client.cookies[COOKIE] = old
    assert client.get(_path(case, "case")).status_code == 302
    settings.SECRET_KEY_FALLBACKS = ["the-old-key"]
    client.cookies[COOKIE] = old
    assert client.get(_path(case, "case")).status_code == 200


def test_the_verification_ends_thirty_minutes_after_the_last_issue(place, monkeypatch):
    case = place("INV-1", "120.50").case
    client = Client()
    client.cookies[COOKIE] = _signed_at(monkeypatch, [case.pk], access.VERIFIED_SECONDS - 5)
    assert client.get(_path(case, "case")).status_code == 200
    client = Client()
    client.cookies[COOKIE] = _signed_at(monkeypatch, [case.pk], access.VERIFIED_SECONDS + 5)
    response = client.get(_path(case, "case"))
    assert response.status_code == 302 and response.url == _path(case)
    assert response.cookies[COOKIE].value == ""


def test_a_page_reissues_the_cookie_once_it_is_a_minute_old(place, monkeypatch):
    case = place("INV-1", "120.50").case
    client = Client()
    client.cookies[COOKIE] = young = _signed_at(monkeypatch, [case.pk], access.REFRESH_AFTER_SECONDS - 10)
    assert COOKIE not in client.get(_path(case, "case")).cookies
    assert client.cookies[COOKIE].value == young
    client.cookies[COOKIE] = _signed_at(monkeypatch, [case.pk], access.REFRESH_AFTER_SECONDS + 10)
    response = client.get(_path(case, "case"))
    assert response.status_code == 200
    fresh = response.cookies[COOKIE]
    assert int(fresh["max-age"]) == access.VERIFIED_SECONDS and fresh["path"] == "/p/" and fresh["httponly"]
    signer = signing.TimestampSigner(salt=access.SALT)
    assert signer.unsign(fresh.value, max_age=5) == str(case.pk)  # issued now: the idle timeout slides
    # Any other page of the case does the same.
    client.cookies[COOKIE] = _signed_at(monkeypatch, [case.pk], access.REFRESH_AFTER_SECONDS + 10)
    assert COOKIE in client.get(_path(case, "contact")).cookies


def test_a_second_verification_keeps_the_first_and_twenty_cases_at_most(place, monkeypatch):
    first = place("INV-1", "120.50").case
    second = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand").case
    client = _verified_client(first)
    assert client.post(_path(second), {"postcode": "33000"}).status_code == 302
    assert client.get(_path(first, "case")).status_code == 200
    assert client.get(_path(second, "case")).status_code == 200
    value = signing.TimestampSigner(salt=access.SALT).unsign(client.cookies[COOKIE].value)
    assert value == f"{first.pk}.{second.pk}"  # oldest first

    many = list(range(1_000, 1_000 + access.MAX_CASES))
    client.cookies[COOKIE] = _signed_at(monkeypatch, [*many, first.pk][1:], 0)
    assert client.post(_path(second), {"postcode": "33000"}).status_code == 302
    kept = signing.TimestampSigner(salt=access.SALT).unsign(client.cookies[COOKIE].value).split(".")
    assert len(kept) == access.MAX_CASES
    assert kept[-2:] == [str(first.pk), str(second.pk)]
    assert str(many[1]) not in kept  # the oldest went


def test_a_locked_link_stays_locked_with_a_cookie_for_another_case(place):
    mine = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand").case
    client = _verified_client(mine)
    for _ in range(5):
        client.post(_path(other), {"postcode": "75001"})
    assert client.post(_path(other), {"postcode": "33000"}).status_code == 403
    assert client.get(_path(other, "case")).status_code == 302
    assert client.get(_path(mine, "case")).status_code == 200


def test_the_landing_page_of_a_verified_case_goes_to_the_case(place):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)
    response = client.get(_path(case))
    assert response.status_code == 302 and response.url == _path(case, "case")


def test_the_landing_form_shows_the_field_and_its_errors(place):
    case = place("INV-1", "120.50").case
    client = Client()
    empty = client.get(_path(case)).content.decode()
    assert 'id="id_postcode"' in empty and 'aria-invalid="true"' not in empty and "postcode-error" not in empty
    for postcode in ("75001", ""):  # wrong, then missing
        html = client.post(_path(case), {"postcode": postcode}).content.decode()
        assert 'aria-invalid="true" aria-describedby="postcode-error"' in html
        assert 'id="postcode-error" role="alert">' in html
        assert 'id="postcode-error" role="alert"> ' not in html  # the message itself comes first
