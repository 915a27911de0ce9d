"""Intake settings pages: a creditor's saved column mapping and its mandate's requirements.

Who may do what (the faces decide, the services check values):
* see a creditor's settings: its own users, and the agency's staff;
* change the column mapping: the creditor's admin and agency staff who may upload (admin, supervisor,
  agent) — it describes the creditor's own exports;
* change the mandate's requirements (evidence kinds, required fields): agency admins and supervisors
  only — "evidence first" protects debtors from undue claims, so a creditor cannot lower it itself.
Another creditor's settings answer 404, exactly like a missing creditor (invariant 6).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from relance.backoffice.imports import _creditors
from relance.backoffice.views import _actor
from relance.claims.models import Evidence
from relance.core.errors import ValidationError
from relance.intake.creditor_setup import (
    MappingInvalidError,
    creditor_mapping_set,
    creditor_requirements_set,
    mapping_missing_fields,
)
from relance.intake.parse import FIELDS, PRESETS, ColumnMapping, normalize_header, split_header, suggest_fields
from relance.tenancy.access import requires
from relance.tenancy.models import REQUIRABLE_FIELDS, Creditor, User

FIELD_LABELS: dict[str, Any] = {
    "external_ref": _("Reference (unique per claim)"),
    "invoice_number": _("Invoice number"),
    "invoice_date": _("Invoice date"),
    "due_date": _("Due date"),
    "amount": _("Amount"),
    "currency": _("Currency"),
    "debtor.kind": _("Debtor kind (person or company)"),
    "debtor.first_name": _("First name"),
    "debtor.last_name": _("Last name"),
    "debtor.company_name": _("Company name"),
    "debtor.siren": _("SIREN"),
    "debtor.siret": _("SIRET"),
    "debtor.vat_number": _("VAT number"),
    "debtor.email": _("E-mail"),
    "debtor.phone": _("Phone"),
    "debtor.address_line1": _("Address"),
    "debtor.address_line2": _("Address (line 2)"),
    "debtor.postcode": _("Postcode"),
    "debtor.city": _("City"),
    "debtor.country": _("Country"),
    "debtor.iban": _("Debtor's IBAN"),
    "description": _("Description"),
}
LAYOUTS = [
    ("auto", _("Recognise each file's layout")),
    ("relance", _("Relance template")),
    ("shopify", "Shopify"),
    ("woocommerce", "WooCommerce"),
    ("prestashop", "PrestaShop"),
    ("custom", _("My own columns")),
]
MAX_ROWS = 120
BLANK_ROWS = 5

MAPPING_ROLES = frozenset({User.Role.CREDITOR_ADMIN, User.Role.AGENCY_ADMIN, User.Role.SUPERVISOR, User.Role.AGENT})
REQUIREMENT_ROLES = frozenset({User.Role.AGENCY_ADMIN, User.Role.SUPERVISOR})


class MappingForm(forms.Form):
    """Choose a preset, or map each of your columns to a Relance field."""

    layout = forms.ChoiceField(choices=LAYOUTS, label=_("Column layout"))
    line_item_rows = forms.BooleanField(
        required=False, label=_("One row per order line (order fields only on its first row)")
    )
    rows = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=MAX_ROWS)

    def __init__(self, *args: Any, rows: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.row_count = rows
        choices = [("", _("— not used —")), *[(f, f"{FIELD_LABELS[f]} ({f})") for f in FIELDS]]
        for i in range(rows):
            self.fields[f"column_{i}"] = forms.CharField(required=False, max_length=100, label=_("Your column"))
            self.fields[f"field_{i}"] = forms.ChoiceField(required=False, choices=choices, label=_("Relance field"))

    def pairs(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[f"column_{i}"], self[f"field_{i}"]) for i in range(self.row_count)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("layout") != "custom":
            return data
        columns: dict[str, str] = {}
        seen: dict[str, int] = {}
        for i in range(self.row_count):
            column = (data.get(f"column_{i}") or "").strip()
            field = data.get(f"field_{i}") or ""
            if column and not field:
                self.add_error(f"field_{i}", _("Choose the Relance field this column holds, or clear the column."))
            elif field and not column:
                self.add_error(f"column_{i}", _("Type the name of your column."))
            elif column:
                key = normalize_header(column)
                if key in seen:
                    self.add_error(f"column_{i}", _("This column is already mapped above."))
                    continue
                seen[key] = i
                columns[column] = field
        if not columns:
            raise forms.ValidationError(_("Map at least one column, or choose a preset."))
        mapping = ColumnMapping("custom", columns, bool(data.get("line_item_rows")))
        missing = mapping_missing_fields(mapping)
        if missing:
            labels = ", ".join(" / ".join(str(FIELD_LABELS[f]) for f in item.split(" | ")) for item in missing)
            raise forms.ValidationError(
                _("These required fields are not mapped: %(fields)s."), params={"fields": labels}
            )
        data["mapping"] = mapping
        return data

    def setting(self) -> dict[str, Any]:
        layout = self.cleaned_data["layout"]
        if layout == "auto":
            return {}
        if layout == "custom":
            mapping: ColumnMapping = self.cleaned_data["mapping"]
            return mapping.to_dict()
        return {"preset": layout}


class HeaderForm(forms.Form):
    header = forms.CharField(
        label=_("Paste the first line of your file"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=10_000,
    )


class RequirementsForm(forms.Form):
    required_evidence = forms.MultipleChoiceField(
        choices=Evidence.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Evidence every claim must have before its case is chased"),
    )
    required_fields = forms.MultipleChoiceField(
        choices=REQUIRABLE_FIELDS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Fields every claim must carry"),
    )


def _mapping_initial(setting: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    if not setting:
        return {"layout": "auto"}, []
    preset = setting.get("preset")
    if isinstance(preset, str) and preset in PRESETS:
        return {"layout": preset}, []
    mapping = ColumnMapping.from_dict(setting)
    return {"layout": "custom", "line_item_rows": mapping.line_item_rows}, list(mapping.columns.items())


def _mapping_form(pairs: list[tuple[str, str]], initial: dict[str, Any]) -> MappingForm:
    rows = min(len(pairs) + BLANK_ROWS, MAX_ROWS)
    values = {**initial, "rows": rows}
    for i, (column, field) in enumerate(pairs[:rows]):
        values[f"column_{i}"], values[f"field_{i}"] = column, field
    return MappingForm(initial=values, rows=rows)


def _creditor(request: HttpRequest, creditor_id: int) -> Creditor:
    creditor = _creditors(_actor(request)).filter(pk=creditor_id).first()
    if creditor is None:
        raise Http404
    return creditor


def _role(request: HttpRequest) -> str:
    return request.user.role if isinstance(request.user, User) else ""


def _summary(setting: dict[str, Any]) -> str:
    if not setting:
        return str(LAYOUTS[0][1])
    preset = setting.get("preset")
    if isinstance(preset, str):
        return dict(LAYOUTS).get(preset, preset)  # type: ignore[return-value]
    return _t("My own columns (%(n)s)") % {"n": len(ColumnMapping.from_dict(setting).columns)}


@requires("intake.mapping")
@require_GET
def creditors(request: HttpRequest) -> HttpResponse:
    """The creditors whose intake settings this user may see (a creditor user: their own)."""
    visible = list(_creditors(_actor(request)).order_by("legal_name"))
    if len(visible) == 1 and not _actor(request).is_staff:
        return redirect("backoffice:intake_settings", creditor_id=visible[0].pk)
    rows = [(c, _summary(c.import_mapping), len(c.required_evidence), len(c.required_fields)) for c in visible]
    return render(request, "backoffice/intake_creditors.html", {"rows": rows})


@requires("intake.mapping")
@require_http_methods(["GET", "POST"])
def creditor_settings(request: HttpRequest, creditor_id: int) -> HttpResponse:
    creditor = _creditor(request, creditor_id)
    actor = _actor(request)
    role = _role(request)
    can_map = role in MAPPING_ROLES
    can_require = role in REQUIREMENT_ROLES
    initial, pairs = _mapping_initial(creditor.import_mapping)
    mapping_form = _mapping_form(pairs, initial)
    header_form = HeaderForm()
    requirements_form = RequirementsForm(
        initial={"required_evidence": creditor.required_evidence, "required_fields": creditor.required_fields}
    )
    action = request.POST.get("action", "")
    if request.method == "POST":
        if action in ("mapping", "suggest") and not can_map:
            raise PermissionDenied
        if action == "requirements" and not can_require:
            raise PermissionDenied
        if action == "suggest":
            header_form = HeaderForm(request.POST)
            if header_form.is_valid():
                columns = split_header(header_form.cleaned_data["header"])
                guessed = suggest_fields(columns)
                suggested = [(c, guessed.get(c, "")) for c in dict.fromkeys(c for c in columns if c)]
                mapping_form = _mapping_form(suggested, {"layout": "custom"})
                messages.info(request, _t("Check the proposed fields, complete the blank ones, then save."))
        elif action == "mapping":
            try:
                rows = max(1, min(int(request.POST.get("rows", "1")), MAX_ROWS))
            except ValueError:
                rows = 1
            mapping_form = MappingForm(request.POST, rows=rows)
            if mapping_form.is_valid():
                try:
                    creditor_mapping_set(creditor=creditor, setting=mapping_form.setting(), actor=actor)
                except MappingInvalidError as exc:
                    mapping_form.add_error(None, exc.message)
                else:
                    messages.success(request, _t("Column mapping saved: it applies to the next imports."))
                    return redirect("backoffice:intake_settings", creditor_id=creditor.pk)
        elif action == "requirements":
            requirements_form = RequirementsForm(request.POST)
            if requirements_form.is_valid():
                try:
                    creditor_requirements_set(
                        creditor=creditor,
                        required_evidence=requirements_form.cleaned_data["required_evidence"],
                        required_fields=requirements_form.cleaned_data["required_fields"],
                        actor=actor,
                    )
                except ValidationError as exc:
                    requirements_form.add_error(None, exc.message)
                else:
                    messages.success(request, _t("Mandate requirements saved."))
                    return redirect("backoffice:intake_settings", creditor_id=creditor.pk)
        else:
            raise Http404
    return render(
        request,
        "backoffice/intake_creditor.html",
        {
            "creditor": creditor,
            "mapping_form": mapping_form,
            "header_form": header_form,
            "requirements_form": requirements_form,
            "can_map": can_map,
            "can_require": can_require,
            "summary": _summary(creditor.import_mapping),
            "evidence_labels": [Evidence.Kind(k).label for k in creditor.required_evidence],
            "field_labels": [label for name, label in REQUIRABLE_FIELDS if name in creditor.required_fields],
        },
    )
