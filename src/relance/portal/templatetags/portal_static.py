"""``{% fixed_static 'path' %}``: ``{% static 'path' %}`` worked out once per process instead of on every page
(the storage's URL of a file does not change while the process runs; dropped when a test changes the
static settings)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static

register = template.Library()


@lru_cache(maxsize=64)
def _url(path: str) -> str:
    return static(path)


@register.simple_tag
def fixed_static(path: str) -> str:
    return _url(path)


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting in {"STATIC_URL", "STORAGES", "STATIC_ROOT", "FORCE_SCRIPT_NAME"}:
        _url.cache_clear()
