"""The engine tick: claim due cases, decide, apply — one transaction per batch.

On PostgreSQL due cases are claimed with ``FOR UPDATE SKIP LOCKED``, so any number of engine workers
can run side by side; on SQLite a single writer holds the database lock. The unique constraint on
(case, step_key) of the outbox is the last line of defence: a step is never decided twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.cases.services import case_transition
from relance.cases.status import Status
from relance.claims.selectors import evidence_missing_for_case
from relance.comms.models import Action
from relance.comms.policy import ContactPolicy
from relance.comms.services import action_queue, debtor_recent_contacts
from relance.strategies.decide import CaseSnapshot, Outcome, decide
from relance.strategies.selectors import case_events_since, strategy_doc
from relance.strategies.services import case_events_wake, case_strategy_assign, snapshot_with_assignment
from relance.tenancy.actors import Actor

log = logging.getLogger("relance.engine")

ERROR_RETRY = timedelta(hours=1)
DUE_STATUSES = (Status.NEW.value, Status.ACTIVE.value, Status.PROMISED.value)


@dataclass
class TickReport:
    cases: int = 0
    contacts: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    deferred: int = 0
    errors: int = 0

    def __str__(self) -> str:
        contacts = ", ".join(f"{k} {v}" for k, v in sorted(self.contacts.items())) or "none"
        moves = ", ".join(f"{k} {v}" for k, v in sorted(self.transitions.items())) or "none"
        return (
            f"{self.cases} cases decided; contacts queued: {contacts}; transitions: {moves};"
            f" deferred: {self.deferred}; errors: {self.errors}"
        )


def snapshot(case: Case, now: datetime) -> CaseSnapshot:
    debtor = case.debtor
    # A returned letter (NPAI) means the address is wrong: the letter step is skipped, with its reason.
    channels = {"letter"} if debtor.address_line1 and not debtor.address_invalid else set()
    if debtor.email and not debtor.email_opt_out and not debtor.email_bounced:
        channels.add("email")
    if debtor.phone:
        channels.add("call")
        if not debtor.sms_opt_out:  # they answered STOP: the step is skipped, not queued and blocked
            channels.add("sms")
    outstanding = case_outstanding_minor(case=case)
    claims = list(case.claims.values_list("due_date", flat=True))
    return CaseSnapshot(
        case_id=case.pk,
        status=Status(case.status),
        step_index=case.step,
        placed_at=case.placed_at,
        outstanding_minor=outstanding,
        debtor_timezone=debtor.timezone,
        channels=frozenset(channels),
        recent_contacts=tuple(debtor_recent_contacts(debtor_id=debtor.pk, now=now)),
        promise_date=case.promise_date,
        missing_evidence=evidence_missing_for_case(case_id=case.pk, required=case.creditor.required_evidence),
        # Strategy documents: delays, conditions, variants and reactions (docs/strategies.md).
        step_at=case.step_at,
        due_date=min(claims) if claims else None,
        variant=case.variant,
        events=tuple(
            case_events_since(
                case_id=case.pk, debtor_id=debtor.pk, after_seq=case.event_seq, outstanding_minor=outstanding
            )
        ),
        segment=case.creditor.segment,
        creditor=case.creditor.slug,
        debtor_kind=debtor.kind,
        language=debtor.language[:2],
        claims=len(claims),
        contacts_sent=Action.objects.filter(case_id=case.pk).count(),
    )


def engine_tick(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    policy: ContactPolicy | None = None,
    actor: Actor | None = None,
) -> TickReport:
    """Decide every case due at ``now``; each case at most once per tick."""
    now = now or timezone.now()
    batch_size = batch_size or settings.RELANCE_ENGINE_BATCH_SIZE
    policy = policy or ContactPolicy()
    actor = actor or Actor.system("engine")
    report = TickReport()
    case_events_wake(now=now)  # cases with new events (payments, promises, bounces…) react now
    last_id = 0
    while True:
        with transaction.atomic():
            qs = (
                Case.objects.filter(status__in=DUE_STATUSES, next_action_at__lte=now, pk__gt=last_id)
                .select_related("debtor", "creditor")
                .order_by("pk")
            )
            if connection.vendor == "postgresql":
                qs = qs.select_for_update(skip_locked=True, of=("self",))
            batch = list(qs[:batch_size])
            if not batch:
                break
            for case in batch:
                _decide_one(case=case, now=now, policy=policy, actor=actor, report=report)
            last_id = batch[-1].pk
    return report


def _decide_one(*, case: Case, now: datetime, policy: ContactPolicy, actor: Actor, report: TickReport) -> None:
    """One case in its own savepoint: a failure is recorded and retried later, never blocks the batch."""
    try:
        with transaction.atomic():
            facts = snapshot(case, now)
            if case.step_at is None:  # first look: routed to a strategy and given its variant, recorded
                doc = case_strategy_assign(case=case, snapshot=facts, now=now, actor=actor)
                facts = snapshot_with_assignment(facts, case)
            else:
                doc = strategy_doc(key=case.strategy_key, version=case.strategy_version)
            if facts.events:
                case.event_seq = max(e.id for e in facts.events)
            apply_outcome(case=case, outcome=decide(facts, doc, policy, now), now=now, actor=actor, report=report)
    except Exception as exc:
        log.exception("engine failed on case %s", case.pk)
        report.errors += 1
        Case.objects.filter(pk=case.pk).update(next_action_at=now + ERROR_RETRY)
        audit_record(
            actor=actor, verb="engine.error", subject=case, data={"error": f"{type(exc).__name__}: {exc}"[:300]}
        )


def apply_outcome(*, case: Case, outcome: Outcome, now: datetime, actor: Actor, report: TickReport) -> None:
    """Write one case's outcome; runs inside the batch transaction (invariant 3)."""
    report.cases += 1
    if outcome.transition is not None:
        case_transition(case=case, to=outcome.transition, actor=actor, reason=outcome.reason, now=now)
        report.transitions[outcome.transition.value] += 1
    for contact in outcome.contacts:
        action_queue(
            case=case,
            channel=contact.channel,
            template=contact.template,
            step_key=contact.step_key,
            scheduled_at=contact.at or now,
            actor=actor,
        )
        report.contacts[contact.channel] += 1
    if outcome.next_step is not None:
        # Also when the step ended the automatic flow (escalated: on hold), so resuming goes on after it.
        case.step = outcome.next_step
        case.step_at = now
    if Status(case.status) in (Status.NEW, Status.ACTIVE, Status.PROMISED):
        case.next_action_at = outcome.next_action_at
        case.save(update_fields=["step", "step_at", "event_seq", "next_action_at", "updated_at"])
    elif outcome.next_step is not None or case.event_seq:
        case.save(update_fields=["step", "step_at", "event_seq", "updated_at"])
    if outcome.notes and not outcome.contacts:
        report.deferred += 1
        audit_record(actor=actor, verb="engine.deferred", subject=case, data={"reason": outcome.reason})
