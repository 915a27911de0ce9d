"""The debtor portal's pages render through their own template engine (settings TEMPLATES, NAME "portal").

Same template folders and (cached) loaders as the back office, but only the context processors the
portal's templates read: ``request``, ``i18n`` and ``messages`` (the layout shows Django's messages,
e.g. "Your details are saved."). The back office's ``auth`` and ``permissions_context`` processors are
left out: a debtor has no back-office user, and computing one (its session lookup, its permission
matrix) cost every portal page a share of its CPU. The CSRF token stays (Django's built-in processor).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render as django_render

ENGINE = "portal"


def render(
    request: HttpRequest, template_name: str, context: Mapping[str, Any] | None = None, *, status: int | None = None
) -> HttpResponse:
    """``django.shortcuts.render`` through the portal's engine."""
    return django_render(request, template_name, context, status=status, using=ENGINE)
