"""Telling the creditor (R124-5, FR-COL-12): every payment, even partial, and every debtor proposal.

``creditor_notify`` runs inside the transaction of the event it reports, so the notification exists
exactly when the event does. The creditor reads them in the creditor portal (Notifications); the
audit row of the event itself is written by the caller.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from relance.cases.models import Case
from relance.payments.portal_models import CreditorNotification


def creditor_notify(*, case: Case, kind: str, message: str, data: dict[str, Any] | None = None) -> CreditorNotification:
    """Record one notification for the case's creditor (call inside the event's transaction)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("creditor_notify must run inside the transaction of the event it reports")
    return CreditorNotification.objects.create(
        creditor_id=case.creditor_id, case=case, kind=kind, message=message[:300], data=data or {}
    )
