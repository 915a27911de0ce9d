"""Call outcomes: what happened when an agent called a debtor (issue 6).

A call task is one work item in the agents' queue; logging its outcome closes both, or — for a call
back — reschedules the item. Result codes are fixed so that the dashboards can count them.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import TextChoices
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from relance.audit.services import audit_record
from relance.cases.models import Case, WorkItem
from relance.cases.queues import work_item_close
from relance.comms.models import CallTask
from relance.core.errors import PermissionDeniedError, ValidationError
from relance.tenancy.actors import Actor
from relance.tenancy.models import User


class CallResult(TextChoices):
    PROMISE = "promise", _("Reached: promise to pay")
    PAID = "paid", _("Reached: says already paid")
    PLAN = "plan", _("Reached: wants an instalment plan")
    DISPUTE = "dispute", _("Reached: disputes the claim")
    REFUSED = "refused", _("Reached: refuses to pay")
    HARDSHIP = "hardship", _("Reached: financial difficulty")
    CALLBACK = "callback", _("Asked to be called back")
    NO_ANSWER = "no_answer", _("No answer")
    VOICEMAIL = "voicemail", _("Voicemail (no message about the debt left)")
    THIRD_PARTY = "third_party", _("Someone else answered (nothing disclosed)")
    WRONG_NUMBER = "wrong_number", _("Wrong number")


@transaction.atomic
def call_outcome_record(
    *, case: Case, result: str, note: str, actor: Actor, callback_at: datetime | None = None
) -> list[CallTask]:
    """Record a call's outcome on the case; closes the case's open call tasks (or reschedules them)."""
    if actor.kind != "staff" or actor.role not in {User.Role.AGENT, User.Role.SUPERVISOR, User.Role.AGENCY_ADMIN}:
        raise PermissionDeniedError("Only agents log calls.")
    if result not in CallResult.values:
        raise ValidationError("Unknown call result.", field="result")
    note = note.strip()[:2000]
    if result == CallResult.CALLBACK and (callback_at is None or callback_at <= timezone.now()):
        raise ValidationError("Give a future time for the call back.", field="callback_at")
    tasks = list(CallTask.objects.select_for_update().filter(case=case).exclude(status=CallTask.Status.DONE))
    items = WorkItem.objects.filter(kind=WorkItem.Kind.CALL, case=case, status=WorkItem.Status.OPEN)
    if result == CallResult.CALLBACK:
        # Back to the queue, due at the agreed time, for whoever is free then.
        items.update(due_at=callback_at, claimed_by=None, claimed_at=None, updated_at=timezone.now())
        for task in tasks:
            task.due_at = callback_at  # type: ignore[assignment]
            task.save(update_fields=["due_at", "updated_at"])
    else:
        for item in items:
            work_item_close(actor=actor, kind=item.kind, source=item.source, outcome=result)
        for task in tasks:
            task.status, task.outcome = CallTask.Status.DONE, result
            task.save(update_fields=["status", "outcome", "updated_at"])
    audit_record(
        actor=actor,
        verb="call.logged",
        subject=case,
        data={"result": result, "note": note, "tasks": [t.pk for t in tasks], "callback_at": callback_at},
    )
    return tasks
