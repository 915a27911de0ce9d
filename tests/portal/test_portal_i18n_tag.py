"""``portal_i18n``: ``{% translate "literal" %}`` rendered once per language gives exactly Django's output;
``portal_extends``: the portal engine's ``{% extends "literal" %}`` renders exactly as Django's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.template import Context, Template, engines
from django.template.loader_tags import ExtendsNode
from django.test import override_settings
from django.urls import clear_script_prefix, set_script_prefix
from django.utils import translation

import relance.portal
from relance.portal.templatetags.portal_extends import FixedExtendsNode

TEMPLATES = Path(relance.portal.__file__).parent / "templates" / "portal"


def _pair(source: str) -> tuple[Template, Template]:
    """The template as written, and the same with Django's own ``translate`` tag only."""
    plain = source.replace(" portal_i18n %}", " %}").replace(LINKS_TAG, LOOP_BODY)
    assert plain != source
    return Template(source), Template(plain)


LINKS_TAG = "{% language_links LANG request.get_full_path %}"
# The language links as a plain loop over LANGUAGES with Django's own tags and filters.
LOOP_BODY = (
    "{% for code, name in LANGUAGES %}{% if not forloop.first %} {% endif %}"
    "<a href=\"{% url 'portal:language' code %}?next={{ request.get_full_path|urlencode:'/:' }}\" "
    'lang="{{ code }}" hreflang="{{ code }}"{% if code == LANG %} aria-current="true"{% endif %}>{{ name }}</a>'
    "{% endfor %}"
)


class _Request:
    def __init__(self, path: str) -> None:
        self.path = path

    def get_full_path(self) -> str:
        return self.path


CONTEXT = {
    "LANGUAGES": [("fr", "Français"), ("en-gb", "English")],
    "request": _Request("/p/eyJjIjoxfQ:1xW:ab-c_d/dossier/?x=1&y=<é>"),
    "token": "T",
    "links": {"plan": "/p/T/plan/", "promise": "/p/T/promise/", "hardship": "/p/T/hardship/", "contact": "/p/T/c/"},
    "case": {"reference": "RL-1", "status": "active", "get_status_display": "En cours"},
    "creditor": {"legal_name": "Shop & Co", "display_name": "Shop & Co", "mode": "B", "agency": {"legal_name": "A"}},
    "outstanding": "120,50 €",
    "outstanding_minor": 12050,
    "transfer": {"holder": "Agence", "iban": {"formatted": "FR76", "bic": "AGRIFRPP"}, "reference_display": "RF1"},
    "transfer_amount": "120,50 €",
    "split": {"principal": "1", "interest": "0", "other": "0", "credited": "2", "paid": "3", "left": "4"},
    "can_dispute": True,
    "can_return": True,
    "card_enabled": True,
    "claims": [],
    "history": [],
    "form": None,
    "postcode_label": "Code postal",
    "postcode_error": "Ce code postal ne correspond pas.",
    "tries_left": 2,
    "proposal": {"months": 3},
    "quote": {"months": 4},
}


@pytest.mark.parametrize("name", sorted(p.name for p in TEMPLATES.glob("*.html") if "portal_i18n" in p.read_text()))
@pytest.mark.parametrize("language", ["fr", "en-gb"])
def test_every_portal_template_renders_as_with_djangos_tag(name, language):
    cached, plain = _pair((TEMPLATES / name).read_text())
    for autoescape in (True, False):
        with translation.override(language):
            for _ in range(2):  # the second time from what the tag kept
                assert cached.render(Context(CONTEXT, autoescape=autoescape)) == plain.render(
                    Context(CONTEXT, autoescape=autoescape)
                )


def test_each_language_gets_its_own_text():
    tag = Template('{% load i18n portal_i18n %}{% translate "Your file" %}|{% translate "Pay by card" %}')
    with translation.override("fr"):
        french = tag.render(Context())
    with translation.override("en-gb"):
        english = tag.render(Context())
    with translation.override("fr"):
        assert tag.render(Context()) == french
    assert french != english
    assert english == "Your file|Pay by card"


def test_escaping_is_djangos_in_both_autoescape_modes():
    source = '{% load i18n portal_i18n %}{% translate "Fish & <Chips>" %}{% translate "50% off" %}'
    cached, plain = _pair(source)
    for autoescape in (True, False, True):
        assert cached.render(Context(autoescape=autoescape)) == plain.render(Context(autoescape=autoescape))


def test_variables_filters_and_as_are_djangos_node():
    tag = Template(
        '{% load i18n portal_i18n %}{% translate word %}|{% translate "Paid"|upper %}|'
        '{% translate "Paid" as paid %}{{ paid }}|{% translate "Paid" context "money" %}|{% translate "x" noop %}'
    )
    with translation.override("en-gb"):
        assert tag.render(Context({"word": "Principal"})) == "Principal|PAID|Paid|Paid|x"
        assert tag.render(Context({"word": "Interest"})) == "Interest|PAID|Paid|Paid|x"


def test_a_change_of_language_settings_is_followed():
    tag = Template('{% load i18n portal_i18n %}{% translate "Pay by card" %}')
    with translation.override("fr"):
        before = tag.render(Context())
        with override_settings(LOCALE_PATHS=[], USE_I18N=False):
            assert tag.render(Context()) == "Pay by card"
        assert tag.render(Context()) == before


LOOP = "{% load i18n %}{% get_current_language as LANG %}" + LOOP_BODY
TAG = "{% load i18n portal_i18n %}{% get_current_language as LANG %}{% language_links LANG request.get_full_path %}"


@pytest.mark.parametrize("language", ["fr", "en-gb", "de"])
@pytest.mark.parametrize("path", ["/p/T/dossier/", '/p/a:b/plan/?months=3&x=<b>"é'])
def test_the_language_links_are_the_loop_over_languages(language, path, settings):
    from django.conf import settings as live

    tag, loop = Template(TAG), Template(LOOP)
    context = {"LANGUAGES": live.LANGUAGES, "request": _Request(path)}
    with translation.override(language):
        assert tag.render(Context(context)) == loop.render(Context(context))
        assert tag.render(Context(context)) == loop.render(Context(context))  # from what the tag kept
    settings.LANGUAGES = [("fr", "Français"), ("en-gb", "English <GB> & co")]
    context = {"LANGUAGES": settings.LANGUAGES, "request": _Request(path)}
    with translation.override("en-gb"):
        assert tag.render(Context(context)) == loop.render(Context(context))
        assert "&lt;GB&gt; &amp; co" in tag.render(Context(context))
        assert tag.render(Context(context)).count('aria-current="true"') == 1


def test_the_language_links_follow_the_script_prefix():
    context = {"request": _Request("/p/T/dossier/")}
    set_script_prefix("/relance/")
    try:
        rendered = Template(TAG).render(Context(context))
    finally:
        clear_script_prefix()
    assert 'href="/relance/p/lang/fr/?next=/p/T/dossier/"' in rendered


def test_the_language_asked_once_per_render_follows_the_language_tag():
    source = (
        '{% load i18n portal_i18n %}{% translate "Pay by card" %}|'
        '{% language "en-gb" %}{% translate "Pay by card" %}|{% language "fr" %}{% translate "Pay by card" %}'
        '{% endlanguage %}|{% translate "Pay by card" %}{% endlanguage %}|{% translate "Pay by card" %}'
    )
    cached, plain = _pair(source)
    for active in ("fr", "en-gb"):
        with translation.override(active):
            for _ in range(2):
                assert cached.render(Context()) == plain.render(Context())
    with translation.override("fr"):
        parts = cached.render(Context()).split("|")
    assert parts[0] == parts[2] == parts[4] != parts[1] == parts[3]


PAGES = sorted(p.name for p in TEMPLATES.glob("*.html") if p.read_text().startswith("{% extends"))


def test_every_portal_page_extends_the_layout():
    assert "case.html" in PAGES and "verify.html" in PAGES
    for name in PAGES:
        node = engines["portal"].get_template(f"portal/{name}").template.nodelist[0]
        assert isinstance(node, FixedExtendsNode), name


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("language", ["fr", "en-gb"])
def test_every_portal_page_renders_as_with_djangos_extends(name, language):
    source = (TEMPLATES / name).read_text()
    portal, django = engines["portal"].from_string(source), engines["django"].from_string(source)
    assert not isinstance(django.template.nodelist[0], FixedExtendsNode)
    with translation.override(language):
        for _ in range(3):  # the second and third time from the parent and blocks it kept
            assert portal.render(CONTEXT) == django.render(CONTEXT)


def test_a_parent_named_by_a_variable_is_djangos_node():
    source = "{% extends layout %}{% block content %}x{% endblock %}"
    template = engines["portal"].from_string(source)
    node = template.template.nodelist[0]
    assert type(node) is ExtendsNode
    assert "x" in template.render({**CONTEXT, "layout": "portal/_layout.html"})


def test_a_chain_of_two_literal_parents():
    middle = engines["portal"].from_string(
        '{% extends "portal/_layout.html" %}{% block content %}[{% block inner %}m{% endblock %}]{% endblock %}'
    )
    child = engines["portal"].from_string("{% extends middle %}{% block inner %}c{% endblock %}")
    for _ in range(2):
        html = child.render({**CONTEXT, "middle": middle})
        assert "[c]" in html
