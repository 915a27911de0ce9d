"""``{% fixed_url 'name' %}``: ``{% url 'name' %}`` for a URL without arguments, reversed once per process
(per script prefix and URLconf) instead of on every page."""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse

from relance.portal.links import urlconf_key

register = template.Library()


@lru_cache(maxsize=64)
def _reversed(name: str, script_prefix: str, urlconf: str) -> str:
    del script_prefix, urlconf  # the cache key: reverse() reads them from the thread
    return reverse(name)


@register.simple_tag
def fixed_url(name: str) -> str:
    return _reversed(name, get_script_prefix(), urlconf_key())
