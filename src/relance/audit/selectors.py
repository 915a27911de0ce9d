"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from relance.audit.models import AuditEvent


def audit_events_for(*, subjects: dict[str, list[int]] | dict[str, list[str]]) -> QuerySet[AuditEvent]:
    """Events about any of ``subjects`` ({subject type: [ids]}), in chain order."""
    condition = Q(pk__in=[])
    for subject_type, ids in subjects.items():
        condition |= Q(subject_type=subject_type, subject_id__in=[str(i) for i in ids])
    return AuditEvent.objects.filter(condition).order_by("seq")
