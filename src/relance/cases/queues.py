"""Work queues: open, claim, release and close work items (issue 6).

One table for every queue, one claim mechanism: a conditional ``UPDATE`` that only succeeds while the
item is unclaimed (or its claim has lapsed), so two agents pressing "next" at once never get the same
item, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case, WorkItem
from relance.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from relance.tenancy.actors import Actor
from relance.tenancy.models import User

CLAIM_LEASE = timedelta(minutes=30)
MAX_AGE_DAYS = 365
# Who may work which queue: discounts above an agent's authority need a supervisor (or an admin).
_WORKERS: frozenset[str] = frozenset({User.Role.AGENT.value, User.Role.SUPERVISOR.value, User.Role.AGENCY_ADMIN.value})
_APPROVERS: frozenset[str] = frozenset({User.Role.SUPERVISOR.value, User.Role.AGENCY_ADMIN.value})
QUEUE_ROLES: dict[str, frozenset[str]] = dict.fromkeys(WorkItem.Kind.values, _WORKERS) | {
    WorkItem.Kind.DISCOUNT_APPROVAL.value: _APPROVERS
}


class WorkItemNotFoundError(NotFoundError):
    code = "work_item.not_found"
    title = "Work item not found"


class WorkItemTakenError(ConflictError):
    code = "work_item.taken"
    title = "Someone else is working on this item"


def work_priority(*, amount_minor: int, overdue_days: int, score: int | None = None) -> int:
    """Larger first: euros at stake, plus two points a day overdue (capped at a year), plus the score."""
    return max(amount_minor, 0) // 100 + 2 * min(max(overdue_days, 0), MAX_AGE_DAYS) + (score or 0)


def work_item_open(
    *,
    kind: str,
    source: str,
    agency_id: int,
    title: str,
    actor: Actor,
    case: Case | None = None,
    amount_minor: int = 0,
    overdue_since: date | None = None,
    due_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> WorkItem:
    """Open an item once per ``(kind, source)``; opening it again returns the first one."""
    now = timezone.now()
    existing = WorkItem.objects.filter(kind=kind, source=source).first()
    if existing is not None:
        return existing
    overdue = (timezone.localdate() - overdue_since).days if overdue_since else 0
    try:
        with transaction.atomic():
            item = WorkItem.objects.create(
                agency_id=agency_id,
                creditor_id=case.creditor_id if case else None,
                case=case,
                kind=kind,
                source=source[:120],
                title=title[:200],
                data=data or {},
                amount_minor=amount_minor,
                score=case.score if case else None,
                priority=work_priority(
                    amount_minor=amount_minor, overdue_days=overdue, score=case.score if case else None
                ),
                due_at=due_at or now,
            )
            _audit(actor, "work_item.opened", item)
    except IntegrityError:  # opened at the same moment by another process
        return WorkItem.objects.get(kind=kind, source=source)
    return item


def _visible(actor: Actor) -> QuerySet[WorkItem]:
    if not actor.is_staff or actor.agency_id is None:
        return WorkItem.objects.none()
    return WorkItem.objects.filter(agency_id=actor.agency_id)


def _may_work(actor: Actor, kind: str) -> None:
    if actor.role not in QUEUE_ROLES.get(kind, frozenset()):
        raise PermissionDeniedError("Your role cannot work this queue.", kind=kind)


def work_queue(*, actor: Actor, kind: str, now: datetime | None = None) -> QuerySet[WorkItem]:
    """Open items of one queue, most important first, then the earliest due."""
    return (
        _visible(actor)
        .filter(kind=kind, status=WorkItem.Status.OPEN)
        .select_related("case", "creditor", "claimed_by")
        .order_by("-priority", "due_at", "pk")
    )


def work_queue_counts(*, actor: Actor, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Per queue: open items, items due now, and items claimed by this actor."""
    now = now or timezone.now()
    counts = {kind: {"open": 0, "due": 0, "mine": 0} for kind in WorkItem.Kind.values}
    for item in _visible(actor).filter(status=WorkItem.Status.OPEN).values("kind", "due_at", "claimed_by_id"):
        entry = counts[item["kind"]]
        entry["open"] += 1
        entry["due"] += item["due_at"] <= now
        entry["mine"] += str(item["claimed_by_id"]) == actor.id
    return counts


def _unclaimed(now: datetime) -> Q:
    return Q(claimed_by__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE)


def work_item_claim(*, actor: Actor, item_id: int, now: datetime | None = None) -> WorkItem:
    """Take an item for this agent; refused if another agent holds an unexpired claim on it."""
    now = now or timezone.now()
    item = _visible(actor).filter(pk=item_id).first()
    if item is None:
        raise WorkItemNotFoundError(item_id=item_id)
    _may_work(actor, item.kind)
    if item.status != WorkItem.Status.OPEN:
        raise ConflictError("This item is already closed.", item_id=item_id)
    if item.claimed_by_id is not None and str(item.claimed_by_id) == actor.id:
        return item
    with transaction.atomic():
        taken = WorkItem.objects.filter(_unclaimed(now), pk=item_id, status=WorkItem.Status.OPEN).update(
            claimed_by_id=int(actor.id), claimed_at=now, updated_at=now
        )
        if not taken:
            raise WorkItemTakenError(item_id=item_id)
        _audit(actor, "work_item.claimed", item)
    item.refresh_from_db()
    return item


def work_item_claim_next(*, actor: Actor, kind: str, now: datetime | None = None) -> WorkItem | None:
    """The most important free item of a queue, claimed for this agent; ``None`` when the queue is empty."""
    now = now or timezone.now()
    _may_work(actor, kind)
    mine = work_queue(actor=actor, kind=kind).filter(claimed_by_id=int(actor.id), claimed_at__gte=now - CLAIM_LEASE)
    if (held := mine.first()) is not None:
        return held  # finish what you hold before taking more
    for _attempt in range(5):
        candidate = work_queue(actor=actor, kind=kind).filter(_unclaimed(now)).first()
        if candidate is None:
            return None
        try:
            return work_item_claim(actor=actor, item_id=candidate.pk, now=now)
        except WorkItemTakenError:
            continue  # another agent was quicker: take the next one
    return None


def work_item_release(*, actor: Actor, item_id: int) -> WorkItem:
    item = _visible(actor).filter(pk=item_id).first()
    if item is None:
        raise WorkItemNotFoundError(item_id=item_id)
    if str(item.claimed_by_id) != actor.id and actor.role not in {User.Role.SUPERVISOR, User.Role.AGENCY_ADMIN}:
        raise WorkItemTakenError(item_id=item_id)
    with transaction.atomic():
        WorkItem.objects.filter(pk=item.pk).update(claimed_by=None, claimed_at=None, updated_at=timezone.now())
        _audit(actor, "work_item.released", item)
    item.refresh_from_db()
    return item


@transaction.atomic
def work_item_close(*, actor: Actor, kind: str, source: str, outcome: str, cancelled: bool = False) -> WorkItem | None:
    """Close the item of ``(kind, source)`` if there is one open (the work it stood for is done)."""
    item = WorkItem.objects.select_for_update().filter(kind=kind, source=source, status=WorkItem.Status.OPEN).first()
    if item is None:
        return None
    item.status = WorkItem.Status.CANCELLED if cancelled else WorkItem.Status.DONE
    item.done_at = timezone.now()
    item.done_by = actor.label
    item.outcome = outcome[:300]
    item.save(update_fields=["status", "done_at", "done_by", "outcome", "updated_at"])
    _audit(actor, "work_item.closed", item, outcome=item.outcome)
    return item


def work_item_done(*, actor: Actor, item_id: int, outcome: str) -> WorkItem:
    """The agent holding an item closes it with what was done."""
    item = _visible(actor).filter(pk=item_id).first()
    if item is None:
        raise WorkItemNotFoundError(item_id=item_id)
    _may_work(actor, item.kind)
    if str(item.claimed_by_id) != actor.id:
        raise WorkItemTakenError("Claim the item before closing it.", item_id=item_id)
    closed = work_item_close(actor=actor, kind=item.kind, source=item.source, outcome=outcome)
    if closed is None:
        raise ConflictError("This item is already closed.", item_id=item_id)
    return closed


def _audit(actor: Actor, verb: str, item: WorkItem, **data: Any) -> None:
    """Work on a case shows on the case's timeline; other items are their own subject."""
    payload = {"work_item": item.pk, "kind": item.kind, **data}
    if item.case_id is not None:
        audit_record(actor=actor, verb=verb, subject_type="cases.case", subject_id=item.case_id, data=payload)
    else:
        audit_record(actor=actor, verb=verb, subject=item, data=payload)


def work_items_for_case(*, case: Case) -> QuerySet[WorkItem]:
    return WorkItem.objects.filter(case=case).select_related("claimed_by").order_by("-created_at")
