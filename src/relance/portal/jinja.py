"""The debtor portal's Jinja2 environment (settings ``TEMPLATES``, ``NAME`` "portal"; decision 0006).

The portal's pages (``portal/jinja2/portal/*.html``) render through Django's own
``django.template.backends.jinja2.Jinja2`` backend, which adds ``request``, ``csrf_input`` and
``csrf_token`` (lazy: a page without a form draws no CSRF token) to every page's context. This module
gives the templates what Django's template language gave them, with Django's own functions, so that a
page reads and escapes as before:

- **messages**: ``{{ _("literal") }}`` is Django's ``gettext`` in the request's active language (the
  text is escaped on output, as ``{% translate %}`` did); ``{% blocktranslate %}`` (with ``with a=…``,
  ``count n=…`` and ``{% plural %}``) is Django's tag in Jinja: same syntax, same msgid, the values
  escaped and the translation not, as Django's. Both are what ``makemessages`` (Django's
  ``templatize``) extracts, so the catalogue needs no new translation (tests/portal/test_portal_jinja.py).
  Built on ``jinja2.ext.i18n`` with Django's ``gettext``/``ngettext`` installed (old style: the message
  is formatted by the tag, as Django's).
- **values**: every ``{{ value }}`` goes through Django's ``template_localtime`` and ``localize`` (numbers
  and dates in the active language's format, aware datetimes in the current time zone), as Django's
  ``render_value_in_context``; an unknown variable renders as nothing (``ChainableUndefined``).
- **filters**: Django's ``date`` (after ``template_localtime``, as Django's engine does for it),
  ``default_if_none``, ``filesizeformat``, ``linebreaksbr`` and ``stringformat``.
- **globals**: ``url`` (``{% url %}``), ``static`` (worked out once per process), ``get_language``,
  ``get_messages`` and ``language_links`` (the header's language switch).
"""

from __future__ import annotations

import weakref
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import defaultfilters
from django.templatetags.static import static as django_static
from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.formats import localize
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime  # type: ignore[attr-defined]  # Django's, not in the stubs
from django.utils.translation import get_language, gettext, ngettext
from jinja2 import BaseLoader, ChainableUndefined, Environment, Template, nodes
from jinja2.ext import InternationalizationExtension
from jinja2.parser import Parser
from jinja2.visitor import NodeTransformer

from relance.portal.links import urlconf_key

_GENERATION = [0]  # bumped when a test changes the language settings: older language links are not used


_BODY_ONLY = "blocktranslate: only text and {{ name }} inside, then {% endblocktranslate %}"


class BlockTranslateExtension(InternationalizationExtension):
    """Django's ``{% blocktranslate [count n=expr] [with a=expr …] %}…{% plural %}…{% endblocktranslate %}``.

    The body is text and ``{{ name }}`` references only, as in Django; its msgid is built as Django's
    (``%`` doubled, ``{{ name }}`` as ``%(name)s``), looked up with ``gettext``/``ngettext`` and formatted
    with the values, each escaped (the translation itself is trusted, as in Django). A name the tag does
    not bind is read from the page's context. Values are localized like any ``{{ value }}``.
    """

    tags = {"blocktranslate"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        stream = parser.stream
        variables: dict[str, nodes.Expr] = {}
        plural_expr: nodes.Expr | None = None
        while stream.current.type != "block_end":
            if stream.skip_if("name:with"):
                continue
            counting = stream.skip_if("name:count")
            name = stream.expect("name").value
            stream.expect("assign")
            expr = parser.parse_expression()
            if counting:
                plural_expr = expr
            variables[name] = expr
        stream.expect("block_end")
        referenced, singular, has_plural = self._body(parser, allow_plural=plural_expr is not None)
        plural = None
        if has_plural:
            more, plural, _ = self._body(parser, allow_plural=False)
            referenced += more
        for name in referenced:
            if name not in variables:
                variables[name] = nodes.Name(name, "load")
        values: dict[str, nodes.Expr] = {
            name: nodes.Filter(expr, "_localized", [], [], None, None) for name, expr in variables.items()
        }
        node = self._make_node(singular, plural, None, values, plural_expr, bool(referenced), False)
        node.set_lineno(lineno)
        return node

    @staticmethod
    def _body(parser: Parser, *, allow_plural: bool) -> tuple[list[str], str, bool]:
        stream = parser.stream
        referenced: list[str] = []
        parts: list[str] = []
        while True:
            token = stream.current
            if token.type == "data":
                parts.append(token.value.replace("%", "%%"))
                next(stream)
            elif token.type == "variable_begin":
                next(stream)
                name = stream.expect("name").value
                referenced.append(name)
                parts.append(f"%({name})s")
                stream.expect("variable_end")
            elif token.type == "block_begin":
                next(stream)
                if allow_plural and stream.skip_if("name:plural"):
                    stream.expect("block_end")
                    return referenced, "".join(parts), True
                if stream.skip_if("name:endblocktranslate"):  # its block_end is the caller's (Jinja's subparse)
                    return referenced, "".join(parts), False
                parser.fail(_BODY_ONLY, token.lineno)
            else:
                parser.fail(_BODY_ONLY, token.lineno)


_LOCALIZED = (int, float, Decimal, date, datetime)  # bool is an int: localize() gives str(bool), as Django


def _localized(value: Any) -> Any:
    """Django's ``render_value_in_context`` before escaping: aware datetimes in the current time zone,
    numbers and dates in the active language's format; anything else unchanged (Jinja escapes it)."""
    if isinstance(value, _LOCALIZED):
        return localize(template_localtime(value))
    return value


def _date(value: Any, arg: str | None = None) -> str:
    """Django's ``date`` filter; Django's engine converts an aware datetime to local time before it."""
    return defaultfilters.date(template_localtime(value), arg)


def url(viewname: str, *args: Any, **kwargs: Any) -> str:
    """``{% url viewname arg … %}``."""
    return reverse(viewname, args=args or None, kwargs=kwargs or None)


@lru_cache(maxsize=64)
def static(path: str) -> str:
    """``{% static path %}``, worked out once per process (a file's URL does not change while it runs)."""
    return django_static(path)


_LINKS: dict[tuple[int, str, str, str], tuple[tuple[str, str], ...]] = {}


def language_links(current: str, path: str) -> SafeString:
    """The portal's language switch: a link per language of ``settings.LANGUAGES`` to
    ``portal:language`` with ``?next=<path>`` (the page itself), in that language (``lang``,
    ``hreflang``), the current one marked ``aria-current``. Each link's fixed parts are built once per
    (language, script prefix, URLconf); only ``next`` is added per page."""
    key = (_GENERATION[0], current, get_script_prefix(), urlconf_key())
    parts = _LINKS.get(key)
    if parts is None:
        parts = _LINKS[key] = tuple(
            (
                format_html('<a href="{}?next=', reverse("portal:language", kwargs={"code": code})),
                format_html(
                    '" lang="{}" hreflang="{}"{}>{}</a>',
                    code,
                    code,
                    mark_safe(' aria-current="true"') if code == current else "",
                    name,
                ),
            )
            for code, name in settings.LANGUAGES
        )
    # quote() leaves letters, digits, "_.-~/:" and %XX only: nothing that HTML would read as markup
    # (":" is allowed in a query string; a portal path, base64url and ":", then needs no quoting at all).
    target = quote(path, safe="/:")
    return mark_safe(" ".join(head + target + tail for head, tail in parts))  # noqa: S308


_SEP = "|"  # "<language>|<template name>": a template compiled for one language (no "|" in a template name)


class _FoldMessages(NodeTransformer):
    """A constant message (``_("literal")``, or a ``{% blocktranslate %}`` without plural) becomes its
    translation in the template's language, at compile time: Jinja then writes it into the template's
    text, as it does any literal (escaped under autoescape as at run time; a blocktranslate's text stays
    trusted and its values escaped, as at run time). Anything else is left to run time."""

    def __init__(self, env: Environment, language: str | None) -> None:
        self.env = env
        self.language = language

    def visit_Call(self, node: nodes.Call) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        name = node.node
        if (
            isinstance(name, nodes.Name)
            and name.name in ("_", "gettext")
            and len(node.args) == 1
            and isinstance(node.args[0], nodes.Const)
            and isinstance(node.args[0].value, str)
            and not (node.kwargs or node.dyn_args or node.dyn_kwargs)
        ):
            with translation.override(self.language):
                text = gettext(node.args[0].value)
            return nodes.Const(text, lineno=node.lineno).set_environment(self.env)
        return self.generic_visit(node)


class _LanguageLoader(BaseLoader):
    """The backend's loader, for names of the form ``<language>|<template name>``."""

    def __init__(self, loader: BaseLoader) -> None:
        self.loader = loader

    def get_source(self, environment: Environment, template: str) -> Any:
        return self.loader.get_source(environment, template.split(_SEP, 1)[-1])

    def list_templates(self) -> list[str]:
        return self.loader.list_templates()


class PortalEnvironment(Environment):
    """Each template compiled once per active language, its constant messages translated then (decision
    0006): a page asks no catalogue for them at run time. A template the page extends, includes or
    imports is the same language's. ``from_string`` templates translate at run time (same output).
    Compiled templates are dropped when the language or locale settings change (tests)."""

    def get_template(self, name: Any, parent: str | None = None, globals: Any = None) -> Template:
        if isinstance(name, str) and parent is None:
            name = f"{get_language()}{_SEP}{name}"
        return super().get_template(name, parent, globals)

    def join_path(self, template: str, parent: str) -> str:
        language, found, _name = parent.partition(_SEP)
        return f"{language}{_SEP}{template}" if found else template

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        if name is None or _SEP not in name:
            return tree
        language: str | None = name.split(_SEP, 1)[0]
        return _FoldMessages(self, None if language == "None" else language).visit(tree)


_ENVIRONMENTS: weakref.WeakSet[Environment] = weakref.WeakSet()


def environment(**options: Any) -> Environment:
    """The portal's Jinja2 environment (``OPTIONS["environment"]``); autoescape on, as Django's backend sets it."""
    options["undefined"] = ChainableUndefined  # an unknown name renders as nothing, as in Django's templates
    options.setdefault("autoescape", True)
    if "loader" in options:
        options["loader"] = _LanguageLoader(options["loader"])
    env = PortalEnvironment(extensions=[BlockTranslateExtension], finalize=_localized, **options)
    _ENVIRONMENTS.add(env)
    env.install_gettext_callables(gettext, ngettext, newstyle=False)  # type: ignore[attr-defined]
    env.globals.update(
        _=gettext,  # Django's own, without the extension's alias (one call less per message)
        url=url,
        static=static,
        get_language=get_language,
        get_messages=get_messages,
        language_links=language_links,
    )
    env.filters.update(
        _localized=_localized,
        date=_date,
        default_if_none=defaultfilters.default_if_none,
        filesizeformat=defaultfilters.filesizeformat,
        linebreaksbr=defaultfilters.linebreaksbr,
        stringformat=defaultfilters.stringformat,
    )
    return env


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting in {"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "USE_I18N"}:
        _GENERATION[0] += 1
        for env in list(_ENVIRONMENTS):  # their constant messages were translated with the old settings
            if env.cache is not None:
                env.cache.clear()
    if setting in {"STATIC_URL", "STORAGES", "STATIC_ROOT", "FORCE_SCRIPT_NAME"}:
        static.cache_clear()
