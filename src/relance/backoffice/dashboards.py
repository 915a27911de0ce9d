"""Dashboards for the agency and for each creditor: figures, charts, and their data as CSV or XLSX.

A creditor user only ever sees its own portfolio (the scope comes from the actor, never from the
query string) and anonymised peer quartiles; agency staff see the agency or one creditor of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from openpyxl import Workbook

from relance.backoffice import metrics
from relance.backoffice.charts import render_svg
from relance.backoffice.views import _actor
from relance.core.money import Money
from relance.tenancy.access import requires
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _scope(request: HttpRequest) -> tuple[Actor, metrics.Scope, Creditor | None]:
    actor = _actor(request)
    if actor.agency_id is None:
        raise Http404
    if actor.kind == "creditor":
        if actor.creditor_id is None:
            raise Http404
        own = Creditor.objects.get(pk=actor.creditor_id)
        return actor, metrics.Scope(actor.agency_id, own.pk), own
    wanted = request.GET.get("creditor") or ""
    if not wanted:
        return actor, metrics.Scope(actor.agency_id), None
    if not wanted.isdigit():
        raise Http404
    creditor = Creditor.objects.filter(agency_id=actor.agency_id, pk=int(wanted)).first()
    if creditor is None:
        raise Http404
    return actor, metrics.Scope(actor.agency_id, creditor.pk), creditor


def _today() -> dt.date:
    return timezone.localdate()


@requires("dashboards.view")
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    actor, scope, creditor = _scope(request)
    today = _today()
    figures = metrics.kpis(scope, today=today)
    tables = [metrics.table(name, scope, today=today) for name in metrics.TABLES]
    peers = (
        metrics.peer_quartiles(agency_id=scope.agency_id, creditor_id=creditor.pk, today=today) if creditor else None
    )
    return render(
        request,
        "backoffice/dashboard.html",
        {
            "creditor": creditor,
            "creditors": (
                Creditor.objects.filter(agency_id=scope.agency_id).order_by("legal_name")
                if actor.kind != "creditor"
                else None
            ),
            "query": f"?creditor={creditor.pk}" if creditor and actor.kind != "creditor" else "",
            "kpis": figures,
            "placed": Money(figures.placed_minor, metrics.CURRENCY),
            "collected": Money(figures.collected_minor, metrics.CURRENCY),
            "outstanding": Money(figures.outstanding_minor, metrics.CURRENCY),
            "tables": tables,
            "peers": peers,
        },
    )


def _table(request: HttpRequest, name: str) -> metrics.Table:
    _, scope, creditor = _scope(request)
    if name == "peers":
        table = (
            metrics.peer_quartiles(agency_id=scope.agency_id, creditor_id=creditor.pk, today=_today())
            if creditor
            else None
        )
        if table is None:
            raise Http404
        return table
    if name not in metrics.TABLES:
        raise Http404
    return metrics.table(name, scope, today=_today())


@requires("dashboards.view")
@require_GET
def dashboard_chart(request: HttpRequest, name: str) -> HttpResponse:
    response = HttpResponse(render_svg(_table(request, name)), content_type="image/svg+xml; charset=utf-8")
    # An image cannot run script; its own inline styles are all it needs.
    response["Content-Security-Policy"] = SVG_CSP
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _cell(value: object) -> object:
    """Exported cells: numbers stay numbers; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


@requires("dashboards.view")
@require_GET
def dashboard_export(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    table = _table(request, name)
    filename = f"relance-{table.key}-{_today().isoformat()}.{fmt}"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(table.columns)
        writer.writerows([[_cell(v) for v in row] for row in table.rows])
        response = HttpResponse(buffer.getvalue().encode("utf-8-sig"), content_type="text/csv; charset=utf-8")
    elif fmt == "xlsx":
        book = Workbook(write_only=True)
        sheet = book.create_sheet(title=table.key)
        sheet.append(table.columns)
        for row in table.rows:
            sheet.append([_cell(v) for v in row])
        out = io.BytesIO()
        book.save(out)
        response = HttpResponse(out.getvalue(), content_type=XLSX)
    else:
        raise Http404
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
