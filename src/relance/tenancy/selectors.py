"""Reads on creditors, users and API keys, scoped by the actor."""

from __future__ import annotations

from django.db.models import QuerySet

from relance.tenancy.actors import Actor
from relance.tenancy.models import ApiKey, Creditor


def creditors_managed_by(actor: Actor) -> QuerySet[Creditor]:
    """The creditors whose settings ``actor`` may see: their own, or all of the agency's for staff."""
    if actor.creditor_id is not None:
        return Creditor.objects.filter(pk=actor.creditor_id)
    if actor.kind == "staff" and actor.agency_id is not None:
        return Creditor.objects.filter(agency_id=actor.agency_id)
    return Creditor.objects.none()


def api_key_list(*, actor: Actor) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(creditor__in=creditors_managed_by(actor)).select_related("creditor").order_by("-pk")
