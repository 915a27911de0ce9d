"""Reads of the audit trail."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from relance.audit.models import AuditEvent


def audit_events_for(*, subjects: dict[str, list[int]] | dict[str, list[str]]) -> QuerySet[AuditEvent]:
    """Events about any of ``subjects`` ({subject type: [ids]}), in chain order."""
    condition = Q(pk__in=[])
    for subject_type, ids in subjects.items():
        condition |= Q(subject_type=subject_type, subject_id__in=[str(i) for i in ids])
    return AuditEvent.objects.filter(condition).order_by("seq")


# Reads of personal data are audited with verbs ending like this (case.viewed, evidence.downloaded,
# message.viewed, export.downloaded, ...): a new kind of read is found by the search with no change here.
ACCESS_VERB_SUFFIXES = (".viewed", ".downloaded", ".exported")


def access_events_search(
    *,
    actors: list[str] | None = None,
    subjects: dict[str, list[int]] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Access events (who read which personal data, when, why), newest first, for the auditor's search.

    ``actors`` are actor labels (``staff:12``); ``subjects`` as in ``audit_events_for``.
    """
    condition = Q()
    for suffix in ACCESS_VERB_SUFFIXES:
        condition |= Q(verb__endswith=suffix)
    qs = AuditEvent.objects.filter(condition)
    if actors is not None:
        qs = qs.filter(actor__in=actors)
    if subjects is not None:
        qs = qs & audit_events_for(subjects=subjects)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    return qs.order_by("-seq")
