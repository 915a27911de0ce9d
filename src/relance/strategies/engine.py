"""The engine tick: claim due cases, decide, apply — one transaction per batch.

On PostgreSQL due cases are claimed with ``FOR UPDATE SKIP LOCKED``, so any number of engine workers
can run side by side; on SQLite a single writer holds the database lock. The unique constraint on
(case, step_key) of the outbox is the last line of defence: a step is never decided twice.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from relance.audit.services import PendingEvent, audit_record, audit_record_many
from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.cases.services import case_transition_in_memory
from relance.cases.status import Status
from relance.claims.models import Claim, Debtor
from relance.claims.selectors import evidence_missing, evidence_missing_for_case
from relance.comms.models import Action
from relance.comms.policy import ContactPolicy
from relance.comms.services import debtor_recent_contacts, debtors_recent_contacts
from relance.strategies.bulk import CASE_FIELDS, ActionRow, actions_copy, cases_update_copy
from relance.strategies.decide import CaseEvent, CaseSnapshot, Outcome, decide
from relance.strategies.document import StrategyDoc
from relance.strategies.selectors import (
    case_events_since,
    cases_events_since,
    cases_facts,
    strategy_doc,
    strategy_routing_candidates,
)
from relance.strategies.services import (
    case_events_wake,
    case_strategy_assign_in_memory,
    snapshot_with_assignment,
)
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

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

    def merge(self, other: TickReport) -> None:
        self.cases += other.cases
        self.contacts.update(other.contacts)
        self.transitions.update(other.transitions)
        self.deferred += other.deferred
        self.errors += other.errors

    def __str__(self) -> str:
        contacts = ", ".join(f"{k} {v}" for k, v in sorted(self.contacts.items())) or "none"
        moves = ", ".join(f"{k} {v}" for k, v in sorted(self.transitions.items())) or "none"
        return (
            f"{self.cases} cases decided; contacts queued: {contacts}; transitions: {moves};"
            f" deferred: {self.deferred}; errors: {self.errors}"
        )


class DebtorFacts(NamedTuple):
    """What a snapshot reads of a debtor (a batch reads these columns, not whole ``Debtor`` rows)."""

    timezone: str
    address_line1: str
    address_invalid: bool
    email: str
    email_opt_out: bool
    email_bounced: bool
    phone: str
    sms_opt_out: bool
    kind: str
    language: str


_DEBTOR_ANNOTATIONS = {f"debtor_{name}": F(f"debtor__{name}") for name in DebtorFacts._fields}


_debtor_columns = attrgetter(*_DEBTOR_ANNOTATIONS)


def _debtor_facts(case: Case) -> DebtorFacts:
    """The debtor columns the batch query annotated on ``case``."""
    return DebtorFacts._make(_debtor_columns(case))


def _channels(debtor: Debtor | DebtorFacts) -> frozenset[str]:
    # A returned letter (NPAI) means the address is wrong: the letter step is skipped, with its reason.
    channels = {"letter"} if debtor.address_line1 and not debtor.address_invalid else set()
    if debtor.email and not debtor.email_opt_out and not debtor.email_bounced:
        channels.add("email")
    if debtor.phone:
        channels.add("call")
        if not debtor.sms_opt_out:  # they answered STOP: the step is skipped, not queued and blocked
            channels.add("sms")
    return frozenset(channels)


def _snapshot(
    case: Case,
    *,
    outstanding_minor: int,
    recent_contacts: Sequence[datetime],
    missing_evidence: tuple[str, ...],
    due_date: date | None,
    claims: int,
    contacts_sent: int,
    events: Sequence[CaseEvent] | None = None,
    debtor: Debtor | DebtorFacts | None = None,
) -> CaseSnapshot:
    """The one place a ``CaseSnapshot`` is made, from facts read one case at a time or a batch at a time."""
    debtor = case.debtor if debtor is None else debtor
    return CaseSnapshot(
        case_id=case.id,
        status=Status(case.status),
        step_index=case.step,
        placed_at=case.placed_at,
        outstanding_minor=outstanding_minor,
        debtor_timezone=debtor.timezone,
        channels=_channels(debtor),
        recent_contacts=tuple(recent_contacts),
        promise_date=case.promise_date,
        missing_evidence=missing_evidence,
        # Strategy documents: delays, conditions, variants and reactions (docs/strategies.md).
        step_at=case.step_at,
        due_date=due_date,
        variant=case.variant,
        events=tuple(_events(case, outstanding_minor) if events is None else events),
        segment=case.creditor.segment,
        creditor=case.creditor.slug,
        debtor_kind=debtor.kind,
        language=debtor.language[:2],
        claims=claims,
        contacts_sent=contacts_sent,
    )


def _events(case: Case, outstanding_minor: int) -> list[CaseEvent]:
    return case_events_since(
        case_id=case.pk, debtor_id=case.debtor_id, after_seq=case.event_seq, outstanding_minor=outstanding_minor
    )


def snapshot(case: Case, now: datetime) -> CaseSnapshot:
    """What ``decide`` sees of one case at ``now`` (a few queries; the tick reads whole batches)."""
    dues = list(case.claims.values_list("due_date", flat=True))
    return _snapshot(
        case,
        outstanding_minor=case_outstanding_minor(case=case),
        recent_contacts=debtor_recent_contacts(debtor_id=case.debtor_id, now=now),
        missing_evidence=evidence_missing_for_case(case_id=case.pk, required=case.creditor.required_evidence),
        due_date=min(dues) if dues else None,
        claims=len(dues),
        contacts_sent=Action.objects.filter(case_id=case.pk).count(),
    )


def _batch_missing_evidence(batch: Sequence[Case]) -> dict[int, tuple[str, ...]]:
    wanting = [c for c in batch if c.creditor.required_evidence]
    if not wanting:
        return {}
    held: dict[int, dict[int, set[str]]] = {}
    rows = Claim.objects.filter(case_link__case_id__in=[c.pk for c in wanting]).values_list(
        "case_link__case_id", "pk", "evidence__kind"
    )
    for case_id, claim_id, kind in rows:
        kinds = held.setdefault(case_id, {}).setdefault(claim_id, set())
        if kind:
            kinds.add(kind)
    return {c.pk: evidence_missing(c.creditor.required_evidence, held.get(c.pk, {}).values()) for c in wanting}


# What a batch reads of its cases (``_snapshot``, the writes); their debtors' columns are annotated
# (``DebtorFacts``) and their creditors read once per batch: not every column of three tables as
# model instances, which made building the batch cost as much as deciding it.
_BATCH_COLUMNS = (
    # Not loaded: ``updated_at`` (the batch writes its own time) and ``next_action_at`` (every outcome
    # sets it, or the transition clears it; a path that did not would read it then, correctly).
    *(f for f in CASE_FIELDS if f not in ("updated_at", "next_action_at")),
    "creditor_id",
    "debtor_id",
    "placed_at",
    "promise_date",
)
_CREDITOR_COLUMNS = ("segment", "slug", "required_evidence")


def _attach_creditors(batch: list[Case]) -> None:
    """Each case's creditor, read once per batch (a batch has few creditors) instead of once per row."""
    creditors = Creditor.objects.only(*_CREDITOR_COLUMNS).in_bulk({c.creditor_id for c in batch})
    cached = Case.creditor.field.set_cached_value
    for case in batch:
        cached(case, creditors[case.creditor_id])


def engine_tick(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    policy: ContactPolicy | None = None,
    actor: Actor | None = None,
) -> TickReport:
    """Decide every case due at ``now``; each case at most once per tick.

    Per batch: claim the due cases (``SKIP LOCKED`` on PostgreSQL, so workers share the work), read
    what ``decide`` needs for the whole batch in a handful of queries, decide in memory, then write
    the actions, the cases and the audit events in bulk — all in the batch's one transaction
    (invariant 3). On PostgreSQL the reads take the batch's ids as array parameters and the writes
    go through ``COPY`` and one ``UPDATE … FROM unnest`` (``strategies.bulk``); elsewhere the ORM does
    the same reads and writes. If the bulk write fails, the batch is redone case by case, each in its
    own savepoint, so one bad case never blocks the others.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.RELANCE_ENGINE_BATCH_SIZE
    policy = policy or ContactPolicy()
    actor = actor or Actor.system("engine")
    # The process's long-lived objects (modules, Django's registries) are left out of the cyclic
    # garbage collector's passes while the tick runs: a batch allocates thousands of small objects,
    # and each full pass walked every one of those as well (≈ 20 µs per case). Everything is handed
    # back to the collector when the tick ends, so a long-lived process (``relance run``) keeps
    # collecting as before.
    gc.freeze()
    try:
        return _tick(now=now, batch_size=batch_size, policy=policy, actor=actor)
    finally:
        gc.unfreeze()


def _batch_settings() -> None:
    """PostgreSQL's JIT compiler off for the batch's statements (``SET LOCAL``: this transaction only).

    The batch reads take a thousand ids as one array, so their estimated cost passes ``jit_above_cost``
    and PostgreSQL compiled them to machine code on every batch (≈ 8 ms a batch, 8 µs a case, for a
    statement that runs in a few ms): JIT pays off for long analytical queries, never here. Set per
    transaction, never per session, so nothing leaks through a transaction-pooling proxy.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _tick(*, now: datetime, batch_size: int, policy: ContactPolicy, actor: Actor) -> TickReport:
    report = TickReport()
    case_events_wake(now=now)  # cases with new events (payments, promises, bounces…) react now
    docs: dict[tuple[str, int], StrategyDoc] = {}
    # Read once per tick, like the strategy documents: a strategy enabled during a tick routes new
    # cases from the next tick on.
    candidates = strategy_routing_candidates()
    last_id = 0
    while True:
        with transaction.atomic():
            _batch_settings()
            qs = (
                Case.objects.filter(status__in=DUE_STATUSES, next_action_at__lte=now, pk__gt=last_id)
                .only(*_BATCH_COLUMNS)
                .annotate(**_DEBTOR_ANNOTATIONS)
                .order_by("pk")
            )
            if connection.vendor == "postgresql":
                qs = qs.select_for_update(skip_locked=True, of=("self",))
            batch = list(qs[:batch_size])
            if not batch:
                break
            last_id = batch[-1].pk
            _attach_creditors(batch)
            partial = TickReport()
            try:
                with transaction.atomic():
                    _decide_batch(
                        batch, now=now, policy=policy, actor=actor, report=partial, docs=docs, candidates=candidates
                    )
            except Exception:
                log.exception("engine batch from case %s failed; deciding its cases one by one", batch[0].pk)
                for case in batch:
                    _decide_one(case=case, now=now, policy=policy, actor=actor, report=report)
            else:
                report.merge(partial)
    return report


def _strategy(docs: dict[tuple[str, int], StrategyDoc], case: Case) -> StrategyDoc:
    key = (case.strategy_key, case.strategy_version)
    if key not in docs:
        docs[key] = strategy_doc(key=case.strategy_key, version=case.strategy_version)
    return docs[key]


def _decide_batch(
    batch: list[Case],
    *,
    now: datetime,
    policy: ContactPolicy,
    actor: Actor,
    report: TickReport,
    docs: dict[tuple[str, int], StrategyDoc],
    candidates: list[StrategyDoc],
) -> None:
    found = cases_facts(case_ids=[c.id for c in batch])
    recent = debtors_recent_contacts(debtor_ids=list({c.debtor_id for c in batch}), now=now)
    missing = _batch_missing_evidence(batch)
    events = cases_events_since(cases=[(c.id, c.debtor_id, c.event_seq, found[c.id].outstanding_minor) for c in batch])
    assignments: dict[int, dict[str, Any]] = {}
    decided: list[tuple[Case, Outcome]] = []
    for case in batch:
        known = found[case.id]
        first_look = case.step_at is None  # routed and given its variant, written with the batch
        # Routing reads the case's facts; with no strategy to route to, the case keeps its strategy
        # and its snapshot is made once, after the assignment (``snapshot_with_assignment`` otherwise).
        routing = first_look and case.step == 0 and bool(candidates)
        doc = _strategy(docs, case)
        if first_look and not routing:
            doc, assigned = case_strategy_assign_in_memory(
                case=case, snapshot=None, now=now, current=doc, candidates=candidates
            )
            assignments[case.id] = assigned.data
        facts = _snapshot(
            case,
            outstanding_minor=known.outstanding_minor,
            recent_contacts=recent[case.debtor_id],
            missing_evidence=missing.get(case.id, ()),
            due_date=known.due_date,
            claims=known.claims,
            contacts_sent=known.contacts_sent,
            events=events[case.id],
            debtor=_debtor_facts(case),
        )
        if routing:
            doc, assigned = case_strategy_assign_in_memory(
                case=case, snapshot=facts, now=now, current=doc, candidates=candidates
            )
            assignments[case.id] = assigned.data
            facts = snapshot_with_assignment(facts, case)
        if facts.events:
            case.event_seq = max(e.id for e in facts.events)
        outcome = decide(facts, doc, policy, now)
        # The next case of the same debtor must see these contacts (the cap is per debtor).
        recent[case.debtor_id].extend(now for _ in outcome.contacts)
        decided.append((case, outcome))
    _apply_batch(decided, now=now, actor=actor, report=report, assigned=assignments)


def _cases_update(cases: list[Case]) -> None:
    """Write the engine's fields of many cases (``COPY`` and one ``UPDATE … FROM`` on PostgreSQL)."""
    if connection.vendor == "postgresql":
        cases_update_copy(cases)
    else:
        Case.objects.bulk_update(cases, list(CASE_FIELDS), batch_size=500)


def _actions_insert(rows: list[ActionRow], *, now: datetime) -> list[int]:
    """Insert the batch's outbox actions (``COPY`` on PostgreSQL); their ids, in order."""
    if connection.vendor == "postgresql":
        return actions_copy(rows, now=now)
    created = Action.objects.bulk_create(
        Action(case_id=c, debtor_id=d, channel=ch, template=t, step_key=k, scheduled_at=at)
        for c, d, ch, t, k, at in rows
    )
    return [a.pk for a in created]


# The verb of a case's one audit event per tick: the most significant of what happened to it.
VERB_STATUS, VERB_QUEUED, VERB_DEFERRED, VERB_ASSIGNED = (
    "case.status_changed",
    "action.queued",
    "engine.deferred",
    "strategy.assigned",
)


def _apply_batch(
    decided: list[tuple[Case, Outcome]],
    *,
    now: datetime,
    actor: Actor,
    report: TickReport,
    assigned: dict[int, dict[str, Any]] | None = None,
) -> None:
    """Write a batch's outcomes: actions, case changes (transitions included) and audit events in bulk.

    Each case that changed gets ONE audit event for this tick (docs/decisions/0002-engine-one-event-per-case.md),
    whose data carries all it carried as separate events before: the strategy assignment at a first look
    (``key``, ``version``, ``variant``, ``routed``), the status change (``from``, ``to``, ``reason``), the
    queued action (``action``, ``channel``, ``template``, ``step``) and a deferral's ``reason``. Its verb
    is the most significant of these: ``case.status_changed`` > ``action.queued`` > ``engine.deferred`` >
    ``strategy.assigned`` — so readers of those verbs (webhooks, strategy events, the case page) see
    what they saw before.
    """
    actions: list[ActionRow] = []
    queued: list[dict[str, Any]] = []  # the data of the event naming each action, in the order of ``actions``
    changed: list[Case] = []
    events: list[PendingEvent] = []
    assigned = assigned or {}
    touched = timezone.now()  # updated_at is wall-clock time, whatever instant the engine plays
    for case, outcome in decided:
        report.cases += 1
        data = assigned.get(case.id)
        verb = VERB_ASSIGNED if data is not None else ""
        data = dict(data) if data is not None else {}
        if outcome.transition is not None:
            moved = case_transition_in_memory(case=case, to=outcome.transition, reason=outcome.reason, now=now)
            if moved is not None:
                data.update(moved[1].data)
                verb = VERB_STATUS
            report.transitions[outcome.transition.value] += 1
        case.updated_at = touched
        changed.append(case)  # its step, event cursor or next look change, whatever the outcome
        if len(outcome.contacts) > 1:  # pragma: no cover - decide queues at most one contact per case and tick
            raise RuntimeError("one audit event per case and tick names at most one action")
        for contact in outcome.contacts:
            actions.append(
                (case.id, case.debtor_id, contact.channel, contact.template, contact.step_key, contact.at or now)
            )
            data.update(channel=contact.channel, template=contact.template, step=contact.step_key)
            queued.append(data)
            verb = verb if verb == VERB_STATUS else VERB_QUEUED
            report.contacts[contact.channel] += 1
        if outcome.next_step is not None:
            # Also when the step ended the automatic flow (escalated: on hold), so resuming goes on after it.
            case.step = outcome.next_step
            case.step_at = now
        if Status(case.status) in (Status.NEW, Status.ACTIVE, Status.PROMISED):
            case.next_action_at = outcome.next_action_at
        if outcome.notes and not outcome.contacts:
            report.deferred += 1
            data["reason"] = outcome.reason
            verb = verb if verb == VERB_STATUS else VERB_DEFERRED
        if verb:
            events.append(PendingEvent(verb, "cases.case", case.id, data))
    if actions:
        for pk, data in zip(_actions_insert(actions, now=touched), queued, strict=True):
            data["action"] = pk
    if changed:
        _cases_update(changed)
    if events:
        audit_record_many(actor=actor, events=events)  # one COPY on PostgreSQL


def _decide_one(*, case: Case, now: datetime, policy: ContactPolicy, actor: Actor, report: TickReport) -> None:
    """One case in its own savepoint: a failure is recorded and retried later, never blocks the batch.

    The same decision and the same writes as a batch of one (``_apply_batch``), so a case decided here
    leaves the same rows and the same single audit event as in a batch.
    """
    try:
        with transaction.atomic():
            # Read afresh and whole: the failed bulk attempt may have changed it in memory.
            case = Case.objects.select_related("debtor", "creditor").get(pk=case.pk)
            facts = snapshot(case, now)
            assigned: dict[int, dict[str, Any]] = {}
            doc = strategy_doc(key=case.strategy_key, version=case.strategy_version)
            if case.step_at is None:  # first look: routed to a strategy and given its variant, recorded
                doc, event = case_strategy_assign_in_memory(
                    case=case, snapshot=facts, now=now, current=doc, candidates=strategy_routing_candidates()
                )
                assigned[case.pk] = event.data
                facts = snapshot_with_assignment(facts, case)
            if facts.events:
                case.event_seq = max(e.id for e in facts.events)
            one = TickReport()
            _apply_batch([(case, decide(facts, doc, policy, now))], now=now, actor=actor, report=one, assigned=assigned)
            report.merge(one)
    except Exception as exc:
        log.exception("engine failed on case %s", case.pk)
        report.errors += 1
        Case.objects.filter(pk=case.pk).update(next_action_at=now + ERROR_RETRY)
        audit_record(
            actor=actor, verb="engine.error", subject=case, data={"error": f"{type(exc).__name__}: {exc}"[:300]}
        )
