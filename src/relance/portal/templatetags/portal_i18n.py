"""``{% translate "literal" %}`` rendered once per language instead of on every page.

Load it after ``i18n`` (``{% load i18n portal_i18n %}``): it replaces the ``translate`` (and ``trans``)
tag of that template with Django's own node, wrapped so that a constant message (a literal, no filter,
no ``as``, no ``noop``, no ``context``) keeps what it rendered, per active language and autoescape mode.
Such a node's output depends on nothing else: the catalogues are read once per process (and the cache
is dropped, like Django's own, when a test changes the language or locale settings). Anything else is
Django's node, unchanged. The tag keeps its name, so ``makemessages`` still finds every message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.base import Node, Parser, Token
from django.template.context import Context
from django.templatetags.i18n import LanguageNode, TranslateNode, do_translate
from django.templatetags.i18n import language as do_language
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from relance.portal.links import urlconf_key

register = template.Library()
_GENERATION = [0]  # bumped when a test changes the language settings: older renderings are not used


class ConstantTranslateNode(Node):
    """Django's ``TranslateNode`` of a literal message, rendered once per (language, autoescape)."""

    child_nodelists = ()

    def __init__(self, node: TranslateNode) -> None:
        self.node = node
        self.rendered: dict[tuple[int, str | None, bool], str] = {}

    def render(self, context: Context) -> str:
        key = (_GENERATION[0], _language(context), context.autoescape)
        try:
            return self.rendered[key]
        except KeyError:
            value = self.rendered[key] = self.node.render(context)
            return value


_ACTIVE = "relance.portal.language"  # the active language, once per render (render_context)


def _language(context: Context) -> str | None:
    """``get_language()`` (~2 µs through asgiref's thread-and-task local), asked once per render instead
    of once per message: the active language does not change during a render, except inside
    ``{% language %}``, which this library's own tag brackets (``FreshLanguageNode``)."""
    found = context.render_context.get(_ACTIVE, _ACTIVE)
    if found is _ACTIVE:
        found = context.render_context[_ACTIVE] = get_language()
    return found


class FreshLanguageNode(LanguageNode):
    """Django's ``{% language %}``; the language ``_language`` remembered for the render is asked again
    inside it and after it."""

    def render(self, context: Context) -> str:
        render_context = context.render_context
        render_context.dicts[-1].pop(_ACTIVE, None)
        try:
            return str(super().render(context))
        finally:
            render_context.dicts[-1].pop(_ACTIVE, None)


@register.tag("language")
def language(parser: Parser, token: Token) -> Any:
    node = do_language(parser, token)
    return FreshLanguageNode(node.nodelist, node.language)


def _constant(node: TranslateNode) -> bool:
    expression = node.filter_expression
    return (
        not node.noop
        and node.asvar is None
        and node.message_context is None
        and not expression.filters
        and getattr(expression.var, "lookups", ()) is None  # a literal, not a variable
    )


@register.tag("translate")
@register.tag("trans")
def translate(parser: Parser, token: Token) -> Any:
    node = do_translate(parser, token)
    return ConstantTranslateNode(node) if isinstance(node, TranslateNode) and _constant(node) else node


_LINKS: dict[tuple[int, str, str, str], tuple[tuple[str, str], ...]] = {}


@register.simple_tag
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


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting in {"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "USE_I18N"}:
        _GENERATION[0] += 1
