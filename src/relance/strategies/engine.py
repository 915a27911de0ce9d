"""The engine tick: claim due cases, decide, apply — one transaction per batch.

On PostgreSQL due cases are claimed with ``FOR UPDATE SKIP LOCKED``, so any number of engine workers
can run side by side; on SQLite a single writer holds the database lock. The unique constraint on
(case, step_key) of the outbox is the last line of defence: a step is never decided twice.
"""

from __future__ import annotations

import gc
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
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
from relance.core.sql import int_array
from relance.strategies.bulk import CASE_FIELDS, ActionRow, actions_copy, cases_update_copy, utc_cursor
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
_DUE_ARRAY = "{" + ",".join(DUE_STATUSES) + "}"  # the statuses' array literal (plain names: nothing to quote)


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


# A debtor's channels depend on four facts only: one frozenset per combination, made once per process.
_CHANNELS: dict[tuple[bool, bool, bool, bool], frozenset[str]] = {}


def _channel_set(letter: bool, email: bool, phone: bool, sms: bool) -> frozenset[str]:
    key = (letter, email, phone, sms)
    found = _CHANNELS.get(key)
    if found is None:
        channels = {"letter"} if letter else set()
        if email:
            channels.add("email")
        if phone:
            channels.add("call")
            if sms:
                channels.add("sms")
        found = _CHANNELS[key] = frozenset(channels)
    return found


def _channels(debtor: Debtor | DebtorFacts) -> frozenset[str]:
    # A returned letter (NPAI) means the address is wrong: the letter step is skipped, with its reason.
    # They answered STOP (``sms_opt_out``): the SMS step is skipped, not queued and blocked.
    return _channel_set(
        bool(debtor.address_line1) and not debtor.address_invalid,
        bool(debtor.email) and not debtor.email_opt_out and not debtor.email_bounced,
        bool(debtor.phone),
        not debtor.sms_opt_out,
    )


def _snapshot(
    case: Case,
    *,
    outstanding_minor: int,
    recent_contacts: Sequence[datetime],
    missing_evidence: tuple[str, ...],
    due_date: date | None,
    claims: int,
    contacts_sent: int,
) -> CaseSnapshot:
    """A ``CaseSnapshot`` of one case read whole (its debtor and creditor loaded), from its facts."""
    debtor = case.debtor
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
        events=tuple(_events(case, outstanding_minor)),
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


def _batch_missing_evidence(batch: Sequence[BatchCase], required: dict[int, list[str]]) -> dict[int, tuple[str, ...]]:
    """Each case's missing evidence kinds (``required``: the evidence each creditor's mandate requires)."""
    wanting = [c for c in batch if required[c.creditor_id]]
    if not wanting:
        return {}
    held: dict[int, dict[int, set[str]]] = {}
    rows = Claim.objects.filter(case_link__case_id__in=[c.id for c in wanting]).values_list(
        "case_link__case_id", "pk", "evidence__kind"
    )
    for case_id, claim_id, kind in rows:
        kinds = held.setdefault(case_id, {}).setdefault(claim_id, set())
        if kind:
            kinds.add(kind)
    return {c.id: evidence_missing(required[c.creditor_id], held.get(c.id, {}).values()) for c in wanting}


class BatchCase:
    """A claimed case as a batch reads it: the engine's columns of the case and its debtor's facts.

    Not a ``Case`` model instance (building a thousand of those, with their debtors and creditors, cost
    as much as deciding them): the plain columns the snapshot, the transition and the writes need, read
    by one query. The engine changes these attributes in memory, then writes its fields back in bulk
    (``_cases_update``), exactly as it did with model instances.

    The annotations below are the one list of those columns, in the order a batch row holds them: the
    slots, the row's unpacking (``_row_init``) and the claim's columns (``_BATCH_COLUMNS``) are made
    from it. ``updated_at`` is not read (``_apply_batch`` sets it to the batch's time before any write),
    ``debtor`` holds the row's debtor columns (``DebtorFacts``) and ``loaded`` the row as read (the
    update leaves out the fields no case of the batch changed).
    """

    id: int
    status: str
    step: int
    step_at: datetime | None
    event_seq: int
    next_action_at: datetime | None
    closed_at: datetime | None
    strategy_key: str
    strategy_version: int
    variant: str
    creditor_id: int
    debtor_id: int
    placed_at: datetime
    promise_date: date | None
    updated_at: datetime
    debtor: DebtorFacts
    loaded: Sequence[Any]
    __slots__ = tuple(__annotations__)

    def __init__(self, row: Sequence[Any]) -> None:  # pragma: no cover - replaced by ``_row_init`` below
        """``row``: the values of ``_BATCH_COLUMNS``, in order."""
        raise NotImplementedError

    @property
    def pk(self) -> int:
        return self.id


_CASE_COLUMNS = tuple(name for name in BatchCase.__slots__ if name not in {"updated_at", "debtor", "loaded"})


def _row_init(columns: Sequence[str]) -> Any:
    """``BatchCase.__init__``: one unpacking of the row's case columns into the slots, then its debtor's.

    Generated from the column list (as ``dataclass`` generates its ``__init__``), so the list is written
    once; the same code as the unpacking written by hand.
    """
    targets = "".join(f"self.{name}, " for name in columns)
    source = (
        "def __init__(self, row):\n"
        f"    ({targets}) = row[:{len(columns)}]\n"
        f"    self.debtor = make_debtor(row[{len(columns)}:])\n"
        "    self.loaded = row\n"
    )
    namespace: dict[str, Any] = {"make_debtor": DebtorFacts._make}
    exec(source, namespace)  # noqa: S102 - our own attribute names
    return namespace["__init__"]


BatchCase.__init__ = _row_init(_CASE_COLUMNS)  # type: ignore[method-assign]

# What a batch reads of its cases, in ``BatchCase``'s order: the case's columns the snapshot and the
# writes need, then its debtor's (``DebtorFacts``); its creditor is read once per batch.
_BATCH_COLUMNS = (*_CASE_COLUMNS, *(f"debtor__{name}" for name in DebtorFacts._fields))


class CreditorFacts(NamedTuple):
    """What a snapshot reads of a creditor, once per batch."""

    segment: str
    slug: str
    required_evidence: list[str]


def _batch_claim(*, now: datetime, after: int, size: int) -> list[BatchCase]:
    """Claim the next due cases after id ``after`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), as plain rows."""
    if connection.vendor == "postgresql":
        with utc_cursor() as cursor:
            params = {"due": _DUE_ARRAY, "now": now, "after": after, "size": size}
            # Planned at each batch, never prepared: which index serves it (the primary key's order, or
            # the (status, next_action_at) index when few cases are due) depends on the values, and a
            # generic plan made once per connection would keep one choice for every tick.
            cursor.execute(_CLAIM_SQL, params, prepare=False)
            return [BatchCase(row) for row in cursor.fetchall()]
    qs = Case.objects.filter(status__in=DUE_STATUSES, next_action_at__lte=now, pk__gt=after).order_by("pk")
    return [BatchCase(row) for row in qs.values_list(*_BATCH_COLUMNS)[:size]]


# The ORM's query above, on PostgreSQL through ``utc_cursor`` (its ``timestamptz`` loader). Only the cases
# are locked, in a sub-select, before their debtors are joined: workers skip each other's batches and
# never wait on a debtor row, and a case another worker holds is skipped before its debtor is read.
# With two workers nearly every claim passes over the other's batch in flight: joined in the locking
# scan, each of those 1,000 rows was joined to its debtor and then dropped (≈ 2 ms a batch, measured
# with a batch held by another connection; the same time as before when nothing is held). A
# ``MATERIALIZED`` CTE in place of the sub-select measured slower (docs/benchmarks.md, "Fifth session").
_CLAIM_SQL = (
    "SELECT "  # noqa: S608 - our own names
    + ", ".join(f"d.{c.removeprefix('debtor__')}" if c.startswith("debtor__") else f"c.{c}" for c in _BATCH_COLUMNS)
    + " FROM (SELECT "
    + ", ".join(_CASE_COLUMNS)
    + f" FROM {Case._meta.db_table}"
    " WHERE status = ANY(%(due)s::text[]) AND next_action_at <= %(now)s AND id > %(after)s"
    " ORDER BY id LIMIT %(size)s FOR UPDATE SKIP LOCKED) AS c"
    f" JOIN {Debtor._meta.db_table} d ON d.id = c.debtor_id ORDER BY c.id"
)


def _batch_creditors(batch: Sequence[BatchCase]) -> dict[int, CreditorFacts]:
    """The batch's creditors (a batch has few), read once instead of once per case."""
    ids = list({c.creditor_id for c in batch})
    if connection.vendor == "postgresql":  # the same columns without building an ORM query per batch
        with utc_cursor() as cursor:
            cursor.execute(_CREDITORS_SQL, [int_array(ids)], prepare=True)
            # Django loads jsonb as text on its connections (the ORM parses it): parse it likewise.
            return {
                pk: CreditorFacts(segment, slug, json.loads(required) if isinstance(required, str) else required)
                for pk, segment, slug, required in cursor.fetchall()
            }
    rows = Creditor.objects.filter(pk__in=ids).values_list("pk", "segment", "slug", "required_evidence")
    return {pk: CreditorFacts(*rest) for pk, *rest in rows}


_CREDITORS_SQL = (
    f"SELECT id, segment, slug, required_evidence FROM {Creditor._meta.db_table} WHERE id = ANY(%s::bigint[])"  # noqa: S608
)


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
    # The instant in UTC, as ``timezone.now()`` gives it and the database returns every date: the same
    # instant whatever clock the caller read it on, and durations (``+ 7 days``) counted in real time,
    # as the contact policy counts them. Comparing it with the cases' dates then takes no time-zone
    # conversion (≈ 4 µs per case when the caller passed, say, Paris time).
    now = (now or timezone.now()).astimezone(UTC)
    batch_size = batch_size or settings.RELANCE_ENGINE_BATCH_SIZE
    policy = policy or ContactPolicy()
    actor = actor or Actor.system("engine")
    # Nor does the collector run in the middle of a batch, where its passes (set off every 700
    # allocations) walked the batch's own rows again and again (≈ 4 µs per case): objects are freed as
    # before when no longer used, and what a batch may leave in reference cycles is collected once the
    # batch is over (``_tick``). The collector is left as it was found when the tick ends.
    collecting = gc.isenabled()
    gc.disable()
    # The process's long-lived objects (modules, Django's registries) are left out of the cyclic
    # garbage collector's passes while the tick runs: a batch allocates thousands of small objects,
    # and each full pass walked every one of those as well (≈ 20 µs per case). Everything is handed
    # back to the collector when the tick ends, so a long-lived process (``relance run``) keeps
    # collecting as before.
    gc.freeze()
    try:
        return _tick(now=now, batch_size=batch_size, policy=policy, actor=actor)
    finally:
        if collecting:
            gc.enable()
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
            batch = _batch_claim(now=now, after=last_id, size=batch_size)
            if not batch:
                break
            last_id = batch[-1].id
            partial = TickReport()
            try:
                with transaction.atomic():
                    _decide_batch(
                        batch, now=now, policy=policy, actor=actor, report=partial, docs=docs, candidates=candidates
                    )
            except Exception:
                log.exception("engine batch from case %s failed; deciding its cases one by one", batch[0].pk)
                for case in batch:
                    _decide_one(case_id=case.id, now=now, policy=policy, actor=actor, report=report)
            else:
                report.merge(partial)
        batch = []
        gc.collect(0)  # the batch's cycles, if any (the collector is off during the tick: ``engine_tick``)
    return report


def _strategy(docs: dict[tuple[str, int], StrategyDoc], key: str, version: int) -> StrategyDoc:
    doc = docs.get((key, version))
    if doc is None:
        doc = docs[key, version] = strategy_doc(key=key, version=version)
    return doc


def _decide_batch(
    batch: list[BatchCase],
    *,
    now: datetime,
    policy: ContactPolicy,
    actor: Actor,
    report: TickReport,
    docs: dict[tuple[str, int], StrategyDoc],
    candidates: list[StrategyDoc],
) -> None:
    creditors = _batch_creditors(batch)
    found = cases_facts(case_ids=[c.id for c in batch])
    recent = debtors_recent_contacts(debtor_ids=list({c.debtor_id for c in batch}), now=now)
    missing = _batch_missing_evidence(batch, {pk: c.required_evidence for pk, c in creditors.items()})
    events = cases_events_since(cases=[(c.id, c.debtor_id, c.event_seq, found[c.id].outstanding_minor) for c in batch])
    assignments: dict[int, dict[str, Any]] = {}
    decided: list[tuple[BatchCase, Outcome]] = []
    statuses = {s.value: s for s in Status}
    for case in batch:
        known = found[case.id]
        first_look = case.step_at is None  # routed and given its variant, written with the batch
        # Routing reads the case's facts; with no strategy to route to, the case keeps its strategy
        # and its snapshot is made once, after the assignment (``snapshot_with_assignment`` otherwise).
        routing = first_look and case.step == 0 and bool(candidates)
        doc = _strategy(docs, case.strategy_key, case.strategy_version)
        if first_look and not routing:
            doc, assigned = case_strategy_assign_in_memory(
                case=case, snapshot=None, now=now, current=doc, candidates=candidates
            )
            assignments[case.id] = assigned.data
        debtor = case.debtor
        creditor = creditors[case.creditor_id]
        case_events = events[case.id]
        facts = CaseSnapshot(
            case.id,
            statuses[case.status],
            case.step,
            case.placed_at,
            known.outstanding_minor,
            debtor.timezone,
            _channels(debtor),
            tuple(recent[case.debtor_id]),
            case.promise_date,
            missing.get(case.id, ()),
            case.step_at,
            known.due_date,
            case.variant,
            tuple(case_events),
            creditor.segment,
            creditor.slug,
            debtor.kind,
            debtor.language[:2],
            known.contacts_sent,
            known.claims,
        )
        if routing:
            doc, assigned = case_strategy_assign_in_memory(
                case=case, snapshot=facts, now=now, current=doc, candidates=candidates
            )
            assignments[case.id] = assigned.data
            facts = snapshot_with_assignment(facts, case)
        if case_events:
            case.event_seq = max(e.id for e in case_events)
        outcome = decide(facts, doc, policy, now)
        if outcome.contacts:  # the next case of the same debtor must see them (the cap is per debtor)
            recent[case.debtor_id].extend([now] * len(outcome.contacts))
        decided.append((case, outcome))
    _apply_batch(decided, now=now, actor=actor, report=report, assigned=assignments)


def _cases_update(cases: list[Case | BatchCase]) -> None:
    """Write the engine's fields of many cases (one ``UPDATE … FROM unnest`` on PostgreSQL)."""
    if connection.vendor == "postgresql":
        before: list[tuple[Any, ...] | None] | None = None
        if all(isinstance(c, BatchCase) for c in cases):  # the fields as read under the batch's row locks
            loaded = dict(zip(_BATCH_COLUMNS, zip(*(c.loaded for c in cases), strict=True), strict=True))  # type: ignore[union-attr]
            before = [loaded.get(name) for name in CASE_FIELDS]
        cases_update_copy(cases, before=before)
    else:  # the ORM writes model instances: the batch's rows become ones holding the fields it writes
        rows = [c if isinstance(c, Case) else Case(id=c.id, **{f: getattr(c, f) for f in CASE_FIELDS}) for c in cases]
        Case.objects.bulk_update(rows, list(CASE_FIELDS), batch_size=500)


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
    decided: Sequence[tuple[Case | BatchCase, Outcome]],
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
    events: list[PendingEvent] = []
    assigned = assigned or {}  # each case's assignment data, made for this batch: extended in place
    touched = timezone.now()  # updated_at is wall-clock time, whatever instant the engine plays
    transitions, contacts_queued = report.transitions, report.contacts
    report.cases += len(decided)
    for case, outcome in decided:
        data = assigned.get(case.id)
        if data is None:
            data, verb = {}, ""
        else:
            verb = VERB_ASSIGNED
        if outcome.transition is not None:
            moved = case_transition_in_memory(case=case, to=outcome.transition, reason=outcome.reason, now=now)
            if moved is not None:
                data.update(moved[1].data)
                verb = VERB_STATUS
            transitions[_STATUS_VALUE[outcome.transition]] += 1
        case.updated_at = touched  # its step, event cursor or next look change, whatever the outcome
        if outcome.contacts:
            if len(outcome.contacts) > 1:  # pragma: no cover - decide queues at most one contact per case and tick
                raise RuntimeError("one audit event per case and tick names at most one action")
            contact = outcome.contacts[0]
            actions.append(
                (case.id, case.debtor_id, contact.channel, contact.template, contact.step_key, contact.at or now)
            )
            data["channel"], data["template"], data["step"] = contact.channel, contact.template, contact.step_key
            queued.append(data)
            if verb != VERB_STATUS:
                verb = VERB_QUEUED
            contacts_queued[contact.channel] += 1
        elif outcome.notes:
            report.deferred += 1
            data["reason"] = outcome.reason
            if verb != VERB_STATUS:
                verb = VERB_DEFERRED
        if outcome.next_step is not None:
            # Also when the step ended the automatic flow (escalated: on hold), so resuming goes on after it.
            case.step = outcome.next_step
            case.step_at = now
        if case.status in _OPEN:
            case.next_action_at = outcome.next_action_at
        if verb:
            events.append(PendingEvent(verb, "cases.case", case.id, data))
    if actions:
        for pk, data in zip(_actions_insert(actions, now=touched), queued, strict=True):
            data["action"] = pk
    if decided:
        _cases_update([case for case, _ in decided])
    if events:
        audit_record_many(actor=actor, events=events)  # one COPY on PostgreSQL


_OPEN = frozenset({Status.NEW.value, Status.ACTIVE.value, Status.PROMISED.value})  # the engine looks at them again
_STATUS_VALUE = {s: s.value for s in Status}  # ``.value`` without the enum's Python-level descriptor, per case


def _decide_one(*, case_id: int, now: datetime, policy: ContactPolicy, actor: Actor, report: TickReport) -> None:
    """One case in its own savepoint: a failure is recorded and retried later, never blocks the batch.

    The same decision and the same writes as a batch of one (``_apply_batch``), so a case decided here
    leaves the same rows and the same single audit event as in a batch.
    """
    try:
        with transaction.atomic():
            # Read afresh and whole: the failed bulk attempt may have changed it in memory.
            case = Case.objects.select_related("debtor", "creditor").get(pk=case_id)
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
        log.exception("engine failed on case %s", case_id)
        report.errors += 1
        Case.objects.filter(pk=case_id).update(next_action_at=now + ERROR_RETRY)
        audit_record(
            actor=actor,
            verb="engine.error",
            subject_type="cases.case",
            subject_id=case_id,
            data={"error": f"{type(exc).__name__}: {exc}"[:300]},
        )
