"""Payments the creditor reports as received directly (the debtor paid the merchant, not us).

Recorded like any payment (allocation, receipt, audit) with ``method=creditor_reported``; the ledger
settles the claims against the creditor's claims under management (no money on the trust account,
nothing payable to the creditor). Only the case's creditor (its administrators, or an API key with
the write scope) and agency staff may report one; at most what is still owed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from django.utils import timezone

from relance.cases.models import Case
from relance.cases.selectors import case_get_for_actor
from relance.core.errors import PermissionDeniedError, ValidationError
from relance.core.money import Money
from relance.payments.models import Payment
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor

REPORTING_ROLES = frozenset({"creditor_admin", "api", "agency_admin", "supervisor", "agent", "system"})


def payment_creditor_reported(
    *, case_id: int, amount: Money, received_on: date, reference: str, actor: Actor
) -> Payment:
    """Record a direct payment; the same ``reference`` again for the same case is the same payment."""
    if actor.role not in REPORTING_ROLES:
        raise PermissionDeniedError("Your role cannot record payments.")
    case: Case = case_get_for_actor(actor=actor, case_id=case_id)
    if received_on > timezone.localdate():
        raise ValidationError("The payment date cannot be in the future.", field="received_on")
    reference = reference.strip()[:80]
    external_ref = f"creditor:{case.creditor_id}:{reference}" if reference else f"creditor:{uuid.uuid4()}"
    received_at = timezone.make_aware(datetime.combine(received_on, time(12)))
    return payment_record(
        case=case,
        amount=amount,
        method=Payment.Method.CREDITOR_REPORTED,
        external_ref=external_ref,
        actor=actor,
        received_at=received_at,
    )
