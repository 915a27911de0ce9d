"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from relance.audit.models import AuditEvent


def audit_events_for(*, subject_type: str, subject_ids: list[str]) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(subject_type=subject_type, subject_id__in=subject_ids)
