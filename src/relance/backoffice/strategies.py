"""Back office: strategies (list, editor with validation by line, preview, 30-day dry run) and templates.

Reading needs ``strategies.view`` (agency staff), saving ``strategies.edit`` (agency admin or
supervisor), both from ``tenancy.permissions.MATRIX``. The dry run and the previews write nothing;
saving a strategy stores a new version (a case keeps its own).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.comms.models import MessageTemplate
from relance.comms.render import render_message
from relance.comms.template_store import VARIABLES, TemplateInvalidError, template_check, template_save
from relance.comms.template_store import template_delete as template_delete_service
from relance.strategies.document import StrategyDoc, StrategyDocumentError, parse_strategy
from relance.strategies.dryrun import channel_costs, strategy_dry_run
from relance.strategies.selectors import strategy_latest_versions, strategy_versions
from relance.strategies.services import StrategyInvalidError, strategy_enable, strategy_save_new_version
from relance.tenancy.access import actor_of, requires
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor
from relance.tenancy.permissions import allowed

NEW_SOURCE = """key: my_strategy
version: 1
name: "My strategy"
applies_to: "segment == 'b2c'"
steps:
  - id: first_notice
    at: placement + 0d
    action: email
    template: first_notice
  - id: return
    at: placement + 30d
    action: return_to_creditor
"""


def _staff(request: HttpRequest) -> Actor:
    return actor_of(request)


def _can_edit(request: HttpRequest) -> bool:
    return allowed(actor_of(request), "strategies.edit")


@requires("strategies.view")
@require_http_methods(["GET", "POST"])
def strategy_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    if request.method == "POST":
        if not _can_edit(request):
            raise Http404
        strategy_enable(key=request.POST.get("key", ""), enabled=request.POST.get("enabled") == "1", actor=actor)
        return redirect("backoffice:strategies")
    per_key = {
        (row["strategy_key"], row["variant"]): row["n"]
        for row in Case.objects.values("strategy_key", "variant").annotate(n=Count("pk"))
    }
    rows = []
    for strategy in strategy_latest_versions():
        counts = sorted((variant or "—", n) for (key, variant), n in per_key.items() if key == strategy.key)
        rows.append((strategy, sum(n for _, n in counts), counts))
    return render(request, "backoffice/strategies.html", {"rows": rows, "can_edit": _can_edit(request)})


def _sample_case(doc: StrategyDoc | None, request: HttpRequest) -> Case | None:
    cases = Case.objects.select_related("creditor__agency", "debtor")
    wanted = request.POST.get("sample") or request.GET.get("sample")
    if wanted and wanted.isdigit():
        found = cases.filter(pk=int(wanted)).first()
        if found is not None:
            return found
    if doc is not None:
        found = cases.filter(strategy_key=doc.key).order_by("-pk").first()
        if found is not None:
            return found
    return cases.order_by("-pk").first()


def _preview(doc: StrategyDoc, case: Case) -> list[dict[str, str]]:
    out = []
    for channel, template in doc.templates:
        if channel == "letter":
            out.append(
                {
                    "channel": channel,
                    "template": template,
                    "subject": "",
                    "text": _("(PDF letter, see the case page)"),
                    "error": "",
                }
            )
            continue
        try:
            rendered = render_message(case=case, channel=channel, template=template)
        except Exception as exc:  # a missing template file, a forbidden word: shown, not raised
            out.append({"channel": channel, "template": template, "subject": "", "text": "", "error": str(exc)})
        else:
            out.append(
                {
                    "channel": channel,
                    "template": template,
                    "subject": rendered.subject,
                    "text": rendered.text,
                    "error": "",
                }
            )
    return out


@requires("strategies.view")
@require_http_methods(["GET", "POST"])
def strategy_edit(request: HttpRequest, key: str | None = None) -> HttpResponse:
    """Edit ``key`` (its newest version) or a new strategy; POST ``op`` = check | save | preview | dry_run."""
    actor = _staff(request)
    versions = list(strategy_versions(key=key)) if key else []
    if key and not versions:
        raise Http404
    source = request.POST.get("source", versions[0].source if versions else NEW_SOURCE).replace("\r\n", "\n")
    op = request.POST.get("op", "") if request.method == "POST" else ""
    context: dict[str, object] = {"key": key, "versions": versions, "source": source, "can_edit": _can_edit(request)}
    doc: StrategyDoc | None = None
    try:
        doc = parse_strategy(source)
    except StrategyDocumentError as exc:
        context["error"] = exc
    context["doc"] = doc
    if op == "save" and doc is not None:
        if not _can_edit(request):
            raise Http404
        try:
            saved = strategy_save_new_version(source=source, actor=actor)
        except StrategyInvalidError as exc:  # pragma: no cover - parsed above
            context["error"] = exc
        else:
            return redirect(f"{reverse('backoffice:strategy', args=[saved.key])}?saved={saved.version}")
    if op == "preview" and doc is not None:
        sample = _sample_case(doc, request)
        context["sample"] = sample
        if sample is not None:
            with transaction.atomic():
                audit_record(actor=actor, verb="case.viewed", subject=sample, data={"page": "strategy_preview"})
            context["preview"] = _preview(doc, sample)
        else:
            context["preview"] = []
    if op == "dry_run" and doc is not None:
        context["dry_run"] = strategy_dry_run(doc=doc, now=timezone.now(), days=30)
        context["costs"] = channel_costs()
    context["saved"] = request.GET.get("saved", "")
    return render(request, "backoffice/strategy_edit.html", context)


# --- templates ----------------------------------------------------------------------------------


@requires("strategies.view")
@require_http_methods(["GET", "POST"])
def template_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    form = {
        "channel": request.POST.get("channel", "email"),
        "name": request.POST.get("name", ""),
        "language": request.POST.get("language", "fr"),
        "creditor": request.POST.get("creditor", ""),
        "subject": request.POST.get("subject", ""),
        "body_text": request.POST.get("body_text", "").replace("\r\n", "\n"),
        "body_html": request.POST.get("body_html", "").replace("\r\n", "\n"),
    }
    edit = request.GET.get("edit")
    if request.method == "GET" and edit and edit.isdigit():
        row = MessageTemplate.objects.filter(pk=int(edit)).first()
        if row is not None:
            form.update(
                channel=row.channel,
                name=row.name,
                language=row.language,
                creditor=str(row.creditor_id or ""),
                subject=row.subject,
                body_text=row.body_text,
                body_html=row.body_html,
            )
    agency_id = actor.agency_id or 0
    context: dict[str, object] = {
        "templates": MessageTemplate.objects.filter(Q(creditor__isnull=True) | Q(creditor__agency_id=agency_id))
        .select_related("creditor")
        .order_by("channel", "name", "language"),
        "creditors": Creditor.objects.filter(agency_id=agency_id).order_by("legal_name"),
        "form": form,
        "variables": sorted(VARIABLES.items()),
        "can_edit": _can_edit(request),
    }
    if request.method == "POST":
        creditor_id = int(form["creditor"]) if form["creditor"].isdigit() else None
        if creditor_id is not None and not Creditor.objects.filter(pk=creditor_id, agency_id=agency_id).exists():
            raise Http404
        sample = (
            Case.objects.select_related("creditor__agency", "debtor")
            .filter(**({"creditor_id": creditor_id} if creditor_id else {}))
            .order_by("-pk")
            .first()
        )
        if request.POST.get("op") == "save":
            if not _can_edit(request):
                raise Http404
            try:
                template_save(
                    channel=form["channel"],
                    name=form["name"],
                    language=form["language"],
                    subject=form["subject"],
                    body_text=form["body_text"],
                    body_html=form["body_html"],
                    creditor_id=creditor_id,
                    sample=sample,
                    actor=actor,
                )
            except TemplateInvalidError as exc:
                context["problems"] = exc.fields.get("problems", [exc.message])
            else:
                return redirect(f"{request.path}?saved=1")
        else:
            problems, rendered = template_check(
                channel=form["channel"],
                name=form["name"],
                language=form["language"],
                subject=form["subject"],
                body_text=form["body_text"],
                body_html=form["body_html"],
                sample=sample,
            )
            context["problems"] = [str(p) for p in problems]
            context["rendered"] = rendered
            context["sample"] = sample
    context["saved"] = request.GET.get("saved", "")
    return render(request, "backoffice/templates.html", context)


@requires("strategies.edit")
@require_POST
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    actor = _staff(request)
    if not _can_edit(request):
        raise Http404
    if not template_delete_service(template_id=template_id, actor=actor):
        raise Http404
    return redirect("backoffice:templates")
