"""Signature checks remembered per process (decision record 0004, fifth session).

``relance.cases.links.portal_token_read`` (the link) and ``relance.portal.access`` (the verification
cookie) remember, in a bounded LRU, the result of a SUCCESSFUL signature check keyed on the exact
signed string; the expiry is checked against the signed timestamp on every read, as Django does. These
tests compare them with Django's own checks: valid, tampered, expired (also expired on a later hit),
signed with another key, a fallback key; failures are never remembered; the memo stays bounded.
"""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.test import RequestFactory

from relance.cases import links
from relance.cases.links import portal_token, portal_token_read
from relance.portal import access

LINK_SALT = "relance.portal.link"


def _fresh() -> None:
    links._signed.cache_clear()
    access._signed.cache_clear()


def _django_link(token: str, max_age: int) -> tuple[int, str] | None:
    """What ``signing.loads`` alone says of a link (the code before the memo)."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    return data["c"], data["r"]


def _tampered(value: str) -> str:
    return value[:-2] + ("AA" if not value.endswith("AA") else "BB")


def _at(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    """Move the clock both the memo and Django's signing read (the same ``time`` module)."""
    monkeypatch.setattr(time, "time", lambda: moment)


# --- the link -------------------------------------------------------------------------------------


def test_a_valid_link_reads_the_same_remembered_or_not(settings):
    _fresh()
    token = portal_token(case_id=42, reference="REF-42")
    max_age = settings.RELANCE_PORTAL_LINK_MAX_AGE
    assert portal_token_read(token) == _django_link(token, max_age) == (42, "REF-42")
    assert portal_token_read(token) == (42, "REF-42")
    info = links._signed.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)


@pytest.mark.parametrize("forge", [_tampered, lambda t: "not-a-token", lambda t: t.replace(":", "", 1)])
def test_a_tampered_link_is_refused_every_time_and_never_remembered(forge):
    _fresh()
    good = portal_token(case_id=7, reference="REF-7")
    portal_token_read(good)
    bad = forge(good)
    assert bad != good
    for _ in range(2):
        assert portal_token_read(bad) is None
    assert links._signed.cache_info().currsize == 1  # only the good one


def test_a_link_valid_when_first_seen_is_refused_once_expired(settings, monkeypatch):
    _fresh()
    settings.RELANCE_PORTAL_LINK_MAX_AGE = 60
    now = time.time()
    token = portal_token(case_id=5, reference="REF-5")
    assert portal_token_read(token) == (5, "REF-5")
    _at(monkeypatch, now + 50)
    assert portal_token_read(token) == _django_link(token, 60) == (5, "REF-5")
    _at(monkeypatch, now + 70)
    assert portal_token_read(token) is None
    assert _django_link(token, 60) is None  # Django's SignatureExpired: the same answer
    assert links._signed.cache_info().hits >= 2  # refused on a hit, not by a fresh check
    monkeypatch.undo()
    assert portal_token_read(token) == (5, "REF-5")


def test_a_shorter_max_age_applies_to_a_remembered_link(settings):
    _fresh()
    token = portal_token(case_id=5, reference="REF-5")
    assert portal_token_read(token) == (5, "REF-5")
    settings.RELANCE_PORTAL_LINK_MAX_AGE = -1
    assert portal_token_read(token) is None


def test_a_link_signed_with_another_key_is_refused_even_once_remembered(settings):
    _fresh()
    token = portal_token(case_id=9, reference="REF-9")
    assert portal_token_read(token) == (9, "REF-9")
    old = settings.SECRET_KEY
    settings.SECRET_KEY = old + "-rotated"
    assert portal_token_read(token) is None
    settings.SECRET_KEY_FALLBACKS = [old]  # while keys rotate, the old one still opens
    assert portal_token_read(token) == (9, "REF-9")
    settings.SECRET_KEY_FALLBACKS = []
    assert portal_token_read(token) is None


def test_a_signed_value_that_is_not_a_case_link_is_refused():
    _fresh()
    for payload in ([1, 2], {"c": "1"}, "text"):
        token = signing.dumps(payload, salt=LINK_SALT, compress=False)
        assert portal_token_read(token) is None
    assert links._signed.cache_info().currsize == 0


def test_the_link_memo_stays_bounded():
    _fresh()
    size = links._signed.cache_info().maxsize
    assert size == 4096
    tokens = [portal_token(case_id=n, reference=f"R{n}") for n in range(size + 10)]
    assert [portal_token_read(token) for token in tokens] == [(n, f"R{n}") for n in range(size + 10)]
    assert links._signed.cache_info().currsize == size
    assert portal_token_read(tokens[0]) == (0, "R0")  # the oldest was dropped: checked again, same answer


# --- the verification cookie ----------------------------------------------------------------------


def _verified(value: str | None, case_id: int) -> bool:
    request = RequestFactory().get("/p/x/")
    if value is not None:
        request.COOKIES[access.COOKIE_NAME] = value
    return access.is_verified(request, case_id)


def _django_cookie(value: str) -> tuple[int, ...] | None:
    try:
        payload = signing.TimestampSigner(salt=access.SALT).unsign(value, max_age=access.VERIFIED_SECONDS)
    except signing.BadSignature:
        return None
    return tuple(int(part) for part in payload.split(".")) if payload else ()


def test_a_valid_cookie_reads_the_same_remembered_or_not():
    _fresh()
    value = access.sign([3, 4])
    assert _django_cookie(value) == (3, 4)
    for _ in range(2):
        assert _verified(value, 3) and _verified(value, 4) and not _verified(value, 5)
    info = access._signed.cache_info()
    assert info.misses == 1 and info.currsize == 1 and info.hits >= 5


def test_a_tampered_cookie_is_refused_every_time_and_never_remembered():
    _fresh()
    value = access.sign([3])
    for bad in (_tampered(value), "3:zzz:yyy", "garbage", access.sign([3]).replace("3", "4", 1)):
        assert _django_cookie(bad) is None
        for _ in range(2):
            assert not _verified(bad, 3) and not _verified(bad, 4)
    assert access._signed.cache_info().currsize == 0


def test_a_cookie_valid_when_first_seen_is_refused_once_expired(monkeypatch):
    _fresh()
    now = time.time()
    value = access.sign([8])
    assert _verified(value, 8)
    _at(monkeypatch, now + access.VERIFIED_SECONDS - 5)
    assert _verified(value, 8) and _django_cookie(value) == (8,)
    _at(monkeypatch, now + access.VERIFIED_SECONDS + 5)
    assert not _verified(value, 8)
    assert _django_cookie(value) is None  # Django's SignatureExpired: the same answer
    request = RequestFactory().get("/p/x/")
    request.COOKIES[access.COOKIE_NAME] = value
    access.is_verified(request, 8)
    assert getattr(request, access._STATE).drop  # an expired cookie is deleted, as before


def test_a_cookie_signed_with_another_key_is_refused_even_once_remembered(settings):
    _fresh()
    value = access.sign([11])
    assert _verified(value, 11)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = old + "-rotated"
    assert not _verified(value, 11)
    settings.SECRET_KEY_FALLBACKS = [old]
    assert _verified(value, 11)
    settings.SECRET_KEY_FALLBACKS = []
    assert not _verified(value, 11)


def test_the_cookie_memo_stays_bounded():
    _fresh()
    size = access._signed.cache_info().maxsize
    assert size == 4096
    values = [access.sign([n]) for n in range(1, size + 11)]
    assert all(_verified(value, n) for n, value in enumerate(values, start=1))
    assert access._signed.cache_info().currsize == size
