"""The debtor portal's pages render through their own template engine (settings TEMPLATES, NAME "portal").

Jinja2, through Django's own ``django.template.backends.jinja2.Jinja2`` backend, with the environment of
``relance.portal.jinja`` (decision 0006); the templates are in ``relance/portal/jinja2/portal/``. The
backend adds ``request``, ``csrf_input`` and ``csrf_token`` (lazy) to every page; the layout reads
Django's messages itself. The back office's context processors (its user, permissions, ``can`` matrix)
are not run for a debtor.
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
