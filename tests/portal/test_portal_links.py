"""The case page's links, built from one prefix (``portal.links``), are exactly ``reverse()``'s."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import clear_script_prefix, include, path, reverse, set_script_prefix

from relance.cases.links import portal_token
from relance.portal.links import CASE_LINKS, case_links

# A URLconf that mounts the portal elsewhere (``test_another_urlconf_is_followed``).
urlpatterns = [path("elsewhere/", include("relance.portal.urls"))]


@pytest.mark.parametrize("token", ["eyJjIjoxLCJyIjoiUkwtUU04In0:1xWRFb:cX_pd3K4ECbIx-A4", "a b?d#e", "é%"])
def test_every_link_is_what_reverse_gives(token):
    links = case_links(token)
    assert set(links) == set(CASE_LINKS)
    for name in CASE_LINKS:
        assert links[name] == reverse(f"portal:{name}", kwargs={"token": token}), name


def test_a_real_token_under_a_script_prefix():
    token = portal_token(case_id=42, reference="RL-ABCDEFGH")
    set_script_prefix("/relance/")
    try:
        links = case_links(token)
        assert links["case"].startswith("/relance/p/")
        for name in CASE_LINKS:
            assert links[name] == reverse(f"portal:{name}", kwargs={"token": token}), name
    finally:
        clear_script_prefix()
    assert case_links(token)["case"] == reverse("portal:case", kwargs={"token": token})


@override_settings(ROOT_URLCONF=__name__)
def test_another_urlconf_is_followed():
    token = portal_token(case_id=42, reference="RL-ABCDEFGH")
    assert case_links(token)["case"] == reverse("portal:case", kwargs={"token": token})
    assert case_links(token)["case"].startswith("/elsewhere/")
