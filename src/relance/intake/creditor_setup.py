"""Writes: a creditor's intake setup — its saved column mapping and its mandate's requirements.

Services (kept apart from ``services.py``, the placement path): each change is one transaction with its
audit event. Who may call them is decided by the faces (backoffice); the services check the values.

* ``creditor_mapping_set``: the column mapping new imports of this creditor start from
  (``Creditor.import_mapping``): ``{}`` (recognise the layout), ``{"preset": name}`` or a custom
  ``ColumnMapping.to_dict()``. A custom mapping must name every required field.
* ``creditor_requirements_set``: the evidence kinds every case must hold before it is chased
  (invariant 5, "evidence first") and the fields every claim must carry (``validate.REQUIRABLE``).
  Lowering the evidence required re-arms the cases the engine paused for evidence that is no longer
  required (the same re-arming as attaching the evidence, ``claims.services``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from relance.audit.services import PendingEvent, audit_record, audit_record_many
from relance.cases.models import Case
from relance.cases.status import Status
from relance.claims.models import Evidence
from relance.claims.selectors import evidence_missing_for_case
from relance.core.errors import ValidationError
from relance.intake.parse import PRESETS, ColumnMapping
from relance.intake.validate import REQUIRABLE
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor


class MappingInvalidError(ValidationError):
    code = "mapping.invalid"
    title = "The column mapping is not usable"


def mapping_missing_fields(mapping: ColumnMapping) -> tuple[str, ...]:
    """Required Relance fields a mapping does not provide (a file laid out as it says would be refused)."""
    return mapping.resolve(list(mapping.columns)).missing


def mapping_from_setting(setting: Mapping[str, Any]) -> ColumnMapping | None:
    """The ColumnMapping a saved setting stands for; None for "recognise the layout of each file"."""
    return ColumnMapping.from_dict(setting) if setting else None


def _checked_setting(setting: Mapping[str, Any]) -> dict[str, Any]:
    if not setting:
        return {}
    preset = setting.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise MappingInvalidError(f"Unknown preset {preset!r}", field="preset")
        return {"preset": preset}
    try:
        mapping = ColumnMapping.from_dict(setting)
    except ValueError as exc:
        raise MappingInvalidError(str(exc), field="columns") from None
    if not mapping.columns:
        raise MappingInvalidError("Map at least one column", field="columns")
    missing = mapping_missing_fields(mapping)
    if missing:
        raise MappingInvalidError(
            f"Required fields not mapped: {', '.join(missing)}", field="columns", missing=list(missing)
        )
    return {**mapping.to_dict(), "name": "custom"}


@transaction.atomic
def creditor_mapping_set(*, creditor: Creditor, setting: Mapping[str, Any], actor: Actor) -> Creditor:
    """Save the column mapping this creditor's imports start from (checked first, audited)."""
    value = _checked_setting(setting)
    locked = Creditor.objects.select_for_update().get(pk=creditor.pk)
    before = locked.import_mapping
    if before == value:
        return locked
    locked.import_mapping = value
    locked.save(update_fields=["import_mapping", "updated_at"])
    audit_record(actor=actor, verb="creditor.mapping_set", subject=locked, data={"from": before, "to": value})
    return locked


def _distinct_known(values: Sequence[str], known: Sequence[str], field: str) -> list[str]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValidationError(f"Unknown values: {', '.join(map(str, unknown))}", field=field)
    return [v for v in known if v in values]  # canonical order, no repeats


@transaction.atomic
def creditor_requirements_set(
    *, creditor: Creditor, required_evidence: Sequence[str], required_fields: Sequence[str], actor: Actor
) -> Creditor:
    """Set what the mandate requires of this creditor's claims: evidence kinds and fields (audited)."""
    evidence = _distinct_known(required_evidence, Evidence.Kind.values, "required_evidence")
    fields = _distinct_known(required_fields, list(REQUIRABLE), "required_fields")
    locked = Creditor.objects.select_for_update().get(pk=creditor.pk)
    before = {"required_evidence": list(locked.required_evidence), "required_fields": list(locked.required_fields)}
    after = {"required_evidence": evidence, "required_fields": fields}
    if before == after:
        return locked
    locked.required_evidence = evidence
    locked.required_fields = fields
    locked.save(update_fields=["required_evidence", "required_fields", "updated_at"])
    audit_record(actor=actor, verb="creditor.requirements_set", subject=locked, data={"from": before, "to": after})
    if set(before["required_evidence"]) - set(evidence):
        _rearm_paused_cases(creditor=locked, actor=actor)
    return locked


def _rearm_paused_cases(*, creditor: Creditor, actor: Actor) -> int:
    """Cases paused for evidence (no next action) whose evidence is now complete are due again."""
    now = timezone.now()
    paused = Case.objects.select_for_update().filter(
        creditor=creditor, status__in=[Status.NEW.value, Status.ACTIVE.value], next_action_at__isnull=True
    )
    rearmed = [
        c.pk
        for c in paused.only("pk")
        if not evidence_missing_for_case(case_id=c.pk, required=creditor.required_evidence)
    ]
    if rearmed:
        Case.objects.filter(pk__in=rearmed).update(next_action_at=now, updated_at=now)
        audit_record_many(
            actor=actor,
            events=[
                PendingEvent("case.evidence_complete", "cases.case", pk, {"reason": "requirement lowered"})
                for pk in rearmed
            ],
        )
    return len(rearmed)
