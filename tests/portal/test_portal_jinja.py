"""The portal's Jinja2 environment (decision 0006): same messages, same output as Django's tags, escaping.

- ``makemessages`` still extracts every message of the portal's (Jinja2) templates, and each is in the
  French catalogue with a translation: no new msgid.
- ``{% blocktranslate %}`` in Jinja2 renders as Django's own tag; values are localized as Django does.
- A creditor's or debtor's value with markup, quotes, template syntax or ``%`` placeholders is escaped.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.core.management import call_command
from django.template import engines
from django.test import Client, override_settings
from django.urls import clear_script_prefix, reverse, set_script_prefix
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.ext import extract_from_ast

import relance
import relance.portal
from relance.cases.links import portal_token
from relance.portal.rendering import ENGINE
from relance.tenancy.models import Agency, Creditor

TEMPLATES = Path(relance.portal.__file__).parent / "jinja2" / "portal"
CATALOGUE = Path(relance.__file__).parent / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def _jinja(source: str):
    return engines[ENGINE].from_string(source)


def _entities(html: str) -> str:
    """MarkupSafe's spelling of the two quotes (``&#34;``, ``&#39;``) as Django's (``&quot;``, ``&#x27;``)."""
    return html.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")


def _django(source: str):
    return engines["django"].from_string("{% load i18n %}" + source)


def _msgids_jinja_calls() -> set[str | tuple[str, str]]:
    """Every message the templates ask for, read from their compiled form (``_``, ``gettext``, ``ngettext``)."""
    env = engines[ENGINE].env  # type: ignore[attr-defined]
    found: set[str | tuple[str, str]] = set()
    for path in TEMPLATES.glob("*.html"):
        for _line, function, message in extract_from_ast(env.parse(path.read_text())):
            if function == "ngettext":
                found.add((message[0], message[1]))
            else:
                found.add(message)
    return found


def _strings(found: str | tuple[str, ...]) -> tuple[str, ...]:
    return (found,) if isinstance(found, str) else tuple(found)


# --- the messages ---------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext (xgettext) is needed by makemessages")
def test_makemessages_extracts_every_portal_message_and_the_catalogue_has_them_all(tmp_path, monkeypatch):
    # makemessages itself (Django's templatize, then xgettext) over a copy of the portal's templates,
    # into a catalogue of its own: the project's django.po is not touched.
    shutil.copytree(TEMPLATES, tmp_path / "portal" / "jinja2" / "portal")
    (tmp_path / "locale" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with override_settings(LOCALE_PATHS=[tmp_path / "locale"]):
        call_command("makemessages", locale=["fr"], no_location=True, verbosity=0)
    extracted = {
        (m.id if isinstance(m.id, str) else tuple(m.id))
        for m in read_po((tmp_path / "locale" / "fr" / "LC_MESSAGES" / "django.po").open("rb"))
        if m.id
    }
    # What makemessages finds is what the templates ask for at run time, no more, no less.
    assert extracted == _msgids_jinja_calls()
    assert len(extracted) > 100  # the portal's ~118 messages; guards against a silent non-extraction
    assert any(isinstance(m, tuple) for m in extracted)  # plurals too

    catalogue = {
        (m.id if isinstance(m.id, str) else tuple(m.id)): m for m in read_po(CATALOGUE.open("rb"), locale="fr") if m.id
    }
    missing = sorted(str(m) for m in extracted if m not in catalogue)
    assert missing == []
    untranslated = sorted(str(m) for m in extracted if not all(_strings(catalogue[m].string)))
    assert untranslated == []


def test_every_literal_message_is_written_so_that_templatize_finds_it():
    """``{{ _("…") }}`` only (what Django's templatize reads); no Jinja ``{% trans %}`` or ``{{ gettext(…) }}``."""
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text()
        assert "{% trans" not in source and "gettext(" not in source, path.name
        for expression in re.findall(r"\{\{(.*?)\}\}", source):
            if "_(" in expression:
                assert re.match(r"""\s*_\((".*?"|'.*?')\)\s*$""", expression), (path.name, expression)


BLOCKS = [
    # (Jinja2, Django) sources of the same message
    (
        "{% blocktranslate with name=creditor %}Amount owed to {{ name }}{% endblocktranslate %}",
        "{% blocktranslate with name=creditor %}Amount owed to {{ name }}{% endblocktranslate %}",
    ),
    (
        "{% blocktranslate count n=months with amount=amount %}{{ n }} monthly payment of about {{ amount }}"
        "{% plural %}{{ n }} monthly payments of about {{ amount }}{% endblocktranslate %}",
        "{% blocktranslate count n=months with amount=amount %}{{ n }} monthly payment of about {{ amount }}"
        "{% plural %}{{ n }} monthly payments of about {{ amount }}{% endblocktranslate %}",
    ),
    (
        "{% blocktranslate %}At least {{ min_percent }} % of the amount owed.{% endblocktranslate %}",
        "{% blocktranslate %}At least {{ min_percent }} % of the amount owed.{% endblocktranslate %}",
    ),
    (
        '{% blocktranslate with start=day|date("SHORT_DATE_FORMAT") end=when|date("SHORT_DATETIME_FORMAT") %}'
        "Between {{ start }} and {{ end }}.{% endblocktranslate %}",
        '{% blocktranslate with start=day|date:"SHORT_DATE_FORMAT" end=when|date:"SHORT_DATETIME_FORMAT" %}'
        "Between {{ start }} and {{ end }}.{% endblocktranslate %}",
    ),
    ("{% blocktranslate %}{{ tries_left }} attempt(s) left.{% endblocktranslate %}",) * 2,
    ("{% blocktranslate %}A text not in the catalogue, 100 % plain{% endblocktranslate %}",) * 2,
]

NASTY = st.sampled_from(["Shop & Co", '<script>alert("x")</script>', 'l\'ami "x"', "{{ 7*7 }}", "%(name)s %s %%", "é"])


@pytest.mark.parametrize("language", ["fr", "en-gb"])
@pytest.mark.parametrize(("jinja", "django"), BLOCKS)
@settings(max_examples=25, deadline=None)
@given(
    creditor=NASTY,
    amount=st.one_of(NASTY, st.decimals(min_value=0, max_value=10**6, places=2)),
    months=st.integers(min_value=0, max_value=40),
    min_percent=st.one_of(st.integers(0, 100), st.decimals(min_value=0, max_value=100, places=1)),
)
def test_blocktranslate_renders_as_djangos(language, jinja, django, creditor, amount, months, min_percent):  # noqa: PLR0917
    context = {
        "creditor": creditor,
        "amount": amount,
        "months": months,
        "min_percent": min_percent,
        "tries_left": months,
        "day": date(2026, 3, 9),
        "when": datetime(2026, 3, 9, 23, 30, tzinfo=UTC),  # 10 March, 00:30 in Paris
    }
    with translation.override(language):
        assert _entities(_jinja(jinja).render(context)) == _django(django).render(context)


@pytest.mark.parametrize("language", ["fr", "en-gb"])
def test_values_and_filters_are_djangos(language):
    context = {
        "n": 1234,
        "d": Decimal("1234.50"),
        "f": 0.5,
        "day": date(2026, 3, 9),
        "when": datetime(2026, 3, 9, 23, 30, tzinfo=UTC),
        "size": 123456,
        "text": "a <b>\nl'autre",
        "none": None,
        "flag": True,
    }
    jinja = (
        "{{ n }}|{{ d }}|{{ f }}|{{ day }}|{{ when }}|{{ when|date('SHORT_DATETIME_FORMAT') }}|{{ day|date('Y-m-d') }}"
        "|{{ size|filesizeformat }}|{{ text|linebreaksbr }}|{{ none|default_if_none('-') }}|{{ n|stringformat('d') }}"
        "|{{ flag }}|{{ missing }}|{{ missing.deeper.still }}|{{ none }}"
    )
    django = (
        "{{ n }}|{{ d }}|{{ f }}|{{ day }}|{{ when }}|{{ when|date:'SHORT_DATETIME_FORMAT' }}|{{ day|date:'Y-m-d' }}"
        "|{{ size|filesizeformat }}|{{ text|linebreaksbr }}|{{ none|default_if_none:'-' }}|{{ n|stringformat:'d' }}"
        "|{{ flag }}|{{ missing }}|{{ missing.deeper.still }}|{{ none }}"
    )
    with translation.override(language):
        assert _entities(_jinja(jinja).render(context)) == _django(django).render(context)


def test_a_constant_message_follows_the_active_language_and_is_escaped():
    template = _jinja('{{ _("Pay by card") }}|{{ _("No message yet.") }}')
    with translation.override("fr"):
        assert template.render({}) == "Payer par carte|Aucun message pour l&#39;instant."
    with translation.override("en-gb"):
        assert template.render({}) == "Pay by card|No message yet."


# --- the language links ---------------------------------------------------------------------------

LINKS = "{{ language_links(get_language(), request.get_full_path()) }}"
# The language links as a plain loop over LANGUAGES with Django's own tags and filters.
LOOP = (
    "{% get_current_language as LANG %}{% for code, name in LANGUAGES %}{% if not forloop.first %} {% endif %}"
    "<a href=\"{% url 'portal:language' code %}?next={{ request.get_full_path|urlencode:'/:' }}\" "
    'lang="{{ code }}" hreflang="{{ code }}"{% if code == LANG %} aria-current="true"{% endif %}>{{ name }}</a>'
    "{% endfor %}"
)


class _Request:
    def __init__(self, path: str) -> None:
        self.path = path

    def get_full_path(self) -> str:
        return self.path


@pytest.mark.parametrize("language", ["fr", "en-gb", "de"])
@pytest.mark.parametrize("path", ["/p/T/dossier/", '/p/a:b/plan/?months=3&x=<b>"é'])
def test_the_language_links_are_the_loop_over_languages(language, path, settings):
    from django.conf import settings as live

    links, loop = _jinja(LINKS), _django(LOOP)
    context = {"LANGUAGES": live.LANGUAGES, "request": _Request(path)}
    with translation.override(language):
        assert _entities(links.render(context)) == loop.render(context)
        assert _entities(links.render(context)) == loop.render(context)  # from what it kept
    settings.LANGUAGES = [("fr", "Français"), ("en-gb", "English <GB> & co")]
    context = {"LANGUAGES": settings.LANGUAGES, "request": _Request(path)}
    with translation.override("en-gb"):
        assert _entities(links.render(context)) == loop.render(context)
        assert "&lt;GB&gt; &amp; co" in links.render(context)
        assert links.render(context).count('aria-current="true"') == 1


def test_the_language_links_follow_the_script_prefix():
    set_script_prefix("/relance/")
    try:
        rendered = _jinja(LINKS).render({"request": _Request("/p/T/dossier/")})
    finally:
        clear_script_prefix()
    assert 'href="/relance/p/lang/fr/?next=/p/T/dossier/"' in rendered


# --- escaping on the real pages -------------------------------------------------------------------

INJECTIONS = ['<script>alert("x")</script>', 'O\'Brien "&" co', "{{ 7*7 }}", "{% raw %}", "%(name)s %s"]


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["fr", "en-gb"])
@pytest.mark.parametrize("mode", [Creditor.Mode.AGENCY, Creditor.Mode.OWN_REMINDERS])
def test_values_from_creditors_and_debtors_are_escaped_on_the_landing_and_case_pages(place, world, language, mode):
    nasty = " | ".join(INJECTIONS)
    Creditor.objects.filter(pk=world.creditor.pk).update(legal_name=nasty, trade_name="", mode=mode)
    Agency.objects.filter(pk=world.creditor.agency_id).update(legal_name="Agency " + nasty)
    case = place("INV-<b>1</b>'\"{{x}}%(y)s", "120.50").case
    token = portal_token(case_id=case.pk, reference=case.reference)
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    landing = client.get(reverse("portal:entry", kwargs={"token": token}))
    assert landing.status_code == 200
    assert client.post(reverse("portal:entry", kwargs={"token": token}), {"postcode": "33000"}).status_code == 302
    page = client.get(reverse("portal:case", kwargs={"token": token}))
    assert page.status_code == 200
    for html in (landing.content.decode(), page.content.decode()):
        assert "<script>" not in html and "<b>1</b>" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html or "&lt;script&gt;alert(&quot;x&quot;)" in html
        assert "O&#39;Brien &#34;&amp;&#34; co" in html or "O&#x27;Brien &quot;&amp;&quot; co" in html
        assert "{{ 7*7 }}" in html and "49" not in html.split("{{ 7*7 }}")[0][-5:]
        assert "%(name)s %s" in html
    case_html = page.content.decode()
    assert "INV-&lt;b&gt;1&lt;/b&gt;&#39;&#34;{{x}}%(y)s" in case_html
    # The creditor's name inside a translated message (blocktranslate): escaped, the message intact.
    assert re.search(r"(Amount owed to|Somme due à) &lt;script&gt;", case_html)


# --- templates compiled per language --------------------------------------------------------------

SOURCES = {
    "page.html": '{% extends "base.html" %}{% block body %}{{ _("Pay by card") }}|'
    "{% blocktranslate with name=who %}Amount owed to {{ name }}{% endblocktranslate %}|"
    "{% blocktranslate count n=n %}{{ n }} monthly payment{% plural %}{{ n }} monthly payments{% endblocktranslate %}"
    "{% endblock %}",
    "base.html": '<p lang="{{ get_language() }}">{{ _("Language") }}</p>{% block body %}{% endblock %}',
}


def _dict_environment():
    from jinja2 import DictLoader

    from relance.portal.jinja import environment

    return environment(loader=DictLoader(SOURCES), auto_reload=False)


@pytest.mark.parametrize("order", [("fr", "en-gb", "fr"), ("en-gb", "fr", "en-gb")])
def test_each_language_has_its_own_compiled_template_with_its_messages(order):
    env = _dict_environment()
    runtime = _dict_environment()  # from_string: messages translated at run time
    flat = SOURCES["page.html"].replace(
        '{% extends "base.html" %}{% block body %}', SOURCES["base.html"].split("{%")[0]
    )
    flat = flat.replace("{% endblock %}", "")
    context = {"who": "<b>Shop</b>", "n": 3}
    for language in order:
        with translation.override(language):
            rendered = env.get_template("page.html").render(context)
            assert rendered == runtime.from_string(flat).render(context)
            assert f'lang="{language}"' in rendered
    with translation.override("fr"):
        assert env.get_template("page.html").render(context) == (
            '<p lang="fr">Langue</p>Payer par carte|Somme due à &lt;b&gt;Shop&lt;/b&gt;|3 mensualités'
        )
    # The constant messages are in the compiled code; the plural (it depends on n) is asked at run time.
    code = env.compile(SOURCES["page.html"], name="fr|page.html", raw=True)
    assert "Payer par carte" in code and "Somme due à %(name)s" in code and "'Pay by card'" not in code
    assert "ngettext" in code
    assert {key[1] for key in env.cache} >= {"fr|page.html", "en-gb|page.html", "fr|base.html", "en-gb|base.html"}


def test_the_compiled_templates_are_dropped_when_the_language_settings_change(tmp_path):
    env = _dict_environment()
    with translation.override("fr"):
        env.get_template("page.html").render(who="x", n=1)  # the page, then its base
    assert len(env.cache) == 2
    with override_settings(LOCALE_PATHS=[tmp_path]):
        assert len(env.cache) == 0
        with translation.override("fr"):
            env.get_template("page.html")
    assert len(env.cache) == 0  # and again when the override ends
