"""Writes of strategies: saving versions, routing a case to a strategy and its variant, migrating cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from importlib import resources
from typing import Protocol

from django.db import transaction
from django.db.models import Max

from relance.audit.models import AuditEvent
from relance.audit.services import PendingEvent, audit_record
from relance.cases.models import Case
from relance.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from relance.strategies.decide import CaseSnapshot, route, variant_for
from relance.strategies.document import StrategyDoc, StrategyDocumentError, parse_strategy
from relance.strategies.events import EVENT_VERBS, event_kind
from relance.strategies.models import EventCursor, Strategy
from relance.strategies.selectors import (
    strategy_doc,
    strategy_doc_of,
    strategy_latest_versions,
)
from relance.tenancy.actors import Actor

# Shipped with Relance: installed (not enabled) by ``migrate``; ``default`` is the fallback.
SHIPPED = ("default.yaml", "b2c_small.yaml", "b2c_high.yaml", "b2b_pre_due.yaml")
WAKE_BATCH = 10_000


class StrategyInvalidError(ValidationError):
    code = "strategy.invalid"
    title = "The strategy document is not valid"


@transaction.atomic
def strategy_save(*, source: str, make_default: bool = False, actor: Actor) -> Strategy:
    """Validate and store a strategy version; an identical existing version is returned as is."""
    doc = parse_strategy(source)
    strategy, created = Strategy.objects.get_or_create(
        key=doc.key, version=doc.version, defaults={"name": doc.name, "source": source, "priority": doc.priority}
    )
    if not created and strategy.source != source:
        raise ConflictError(f"Strategy {doc.key} v{doc.version} exists with other content: bump the version.")
    if make_default and not strategy.is_default:
        Strategy.objects.filter(is_default=True).update(is_default=False)
        strategy.is_default = True
        strategy.save(update_fields=["is_default", "updated_at"])
    if created:
        # A new version of an enabled strategy stays enabled (routing always uses the newest version).
        if Strategy.objects.filter(key=doc.key, enabled=True).exclude(pk=strategy.pk).exists():
            strategy.enabled = True
            strategy.save(update_fields=["enabled", "updated_at"])
        audit_record(
            actor=actor, verb="strategy.saved", subject=strategy, data={"key": doc.key, "version": doc.version}
        )
    return strategy


@transaction.atomic
def strategy_save_new_version(*, source: str, actor: Actor) -> Strategy:
    """The editor's save: the document becomes the next version of its key (its ``version`` is set).

    Raises ``StrategyInvalidError`` with ``line``, ``where`` and ``problem`` on an invalid document.
    """
    try:
        doc = parse_strategy(source)
    except StrategyDocumentError as exc:
        raise StrategyInvalidError(str(exc), line=exc.line, where=exc.where, problem=exc.problem) from None
    latest = Strategy.objects.filter(key=doc.key).aggregate(v=Max("version"))["v"] or 0
    if doc.version <= latest:
        source = _set_version(source, latest + 1)
    return strategy_save(source=source, actor=actor)


def _set_version(source: str, version: int) -> str:
    lines = source.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("version:"):
            lines[index] = f"version: {version}\n"
            return "".join(lines)
    return f"version: {version}\n{source}"


@transaction.atomic
def strategy_enable(*, key: str, enabled: bool, actor: Actor) -> None:
    """Turn routing of new cases to ``key`` on or off (every version of the key)."""
    if not Strategy.objects.filter(key=key).exists():
        raise NotFoundError(f"No strategy {key}.", key=key)
    Strategy.objects.filter(key=key).update(enabled=enabled)
    audit_record(actor=actor, verb="strategy.enabled" if enabled else "strategy.disabled", data={"key": key})


def strategy_install_default(*, actor: Actor) -> Strategy:
    """Install the shipped strategies; ``default`` becomes the default (fallback) strategy."""
    folder = resources.files("relance.strategies")
    default = strategy_save(
        source=folder.joinpath(SHIPPED[0]).read_text(encoding="utf-8"), make_default=True, actor=actor
    )
    for name in SHIPPED[1:]:
        doc = parse_strategy(folder.joinpath(name).read_text(encoding="utf-8"))
        if not Strategy.objects.filter(key=doc.key, version=doc.version).exists():
            strategy_save(source=folder.joinpath(name).read_text(encoding="utf-8"), actor=actor)
    return default


class CaseStrategyFields(Protocol):
    """What routing reads and sets of a case: a ``Case``, or the engine's lighter batch row."""

    id: int
    step: int
    placed_at: datetime
    step_at: datetime | None
    strategy_key: str
    strategy_version: int
    variant: str


def case_strategy_assign_in_memory(
    *,
    case: CaseStrategyFields,
    snapshot: CaseSnapshot | None,
    now: datetime,
    current: StrategyDoc,
    candidates: list[StrategyDoc],
) -> tuple[StrategyDoc, PendingEvent]:
    """First look at a case: route it to a strategy (if it has not started one) and give it a variant.

    Nothing is written here: the engine records the case's new fields (strategy key, version, variant,
    ``step_at``) and the returned audit event's data with the rest of its tick, in its own transaction,
    so the results of the variants can be compared later. A case keeps what it gets here.

    ``snapshot`` may be None when there is nothing to route to (no ``candidates``, or the case has
    started its strategy): routing is the only reader of the case's facts.
    """
    doc, routed = current, False
    if case.step == 0 and candidates:
        if snapshot is None:
            raise ValueError("routing a case to a strategy needs its snapshot")
        chosen = route(snapshot, candidates, now)
        if chosen is not None and (chosen.key, chosen.version) != (doc.key, doc.version):
            doc, routed = chosen, True
    case.strategy_key, case.strategy_version = doc.key, doc.version
    case.variant = variant_for(case_id=case.id, strategy=doc)
    case.step_at = case.placed_at
    data = {"key": doc.key, "version": doc.version, "variant": case.variant, "routed": routed}
    return doc, PendingEvent("strategy.assigned", "cases.case", case.id, data)


def snapshot_with_assignment(snapshot: CaseSnapshot, case: CaseStrategyFields) -> CaseSnapshot:
    return replace(snapshot, variant=case.variant, step_at=case.step_at)


def case_events_wake(*, now: datetime) -> int:
    """Make cases with new events due now, so their strategy reacts at this tick; returns how many."""
    with transaction.atomic():
        cursor, created = EventCursor.objects.select_for_update().get_or_create(name="engine")
        if created:
            # Events before reactions existed are history, not news.
            cursor.seq = AuditEvent.objects.aggregate(m=Max("seq"))["m"] or 0
            cursor.save(update_fields=["seq"])
            return 0
        # The head first, then the events up to it: when fewer than a batch come back, every row up to
        # the head has been read and the cursor moves there, so the next wake-up reads only rows
        # appended since, even when none of those was an event (before, the cursor stayed at the last
        # event and each wake-up scanned again every row after it). Appends are serialised by the
        # chain's head lock until they commit, so no row at or below a committed head can appear later.
        head = AuditEvent.objects.aggregate(m=Max("seq"))["m"] or 0
        rows = list(
            AuditEvent.objects.filter(seq__gt=cursor.seq, seq__lte=head, verb__in=EVENT_VERBS)
            .order_by("seq")
            .values_list("seq", "subject_type", "subject_id", "verb", "data")[:WAKE_BATCH]
        )
        last_seq = rows[-1][0] if len(rows) == WAKE_BATCH else head
        if not rows:
            if last_seq > cursor.seq:
                cursor.seq = last_seq
                cursor.save(update_fields=["seq"])
            return 0
        rows = [r for r in rows if event_kind(r[3], r[4] or {}, outstanding_minor=0) is not None]
        case_ids = {int(r[2]) for r in rows if r[1] == "cases.case" and r[2].isdigit()}
        debtor_ids = {int(r[2]) for r in rows if r[1] == "claims.debtor" and r[2].isdigit()}
        due = Case.objects.filter(status__in=("new", "active", "promised"))
        woken = due.filter(pk__in=case_ids) | due.filter(debtor_id__in=debtor_ids)
        count = woken.exclude(next_action_at__lte=now).update(next_action_at=now)
        cursor.seq = last_seq
        cursor.save(update_fields=["seq"])
    return count


@transaction.atomic
def strategy_migrate_cases(*, key: str, from_version: int, to_version: int, actor: Actor) -> int:
    """Move the open cases of ``key`` v``from_version`` to v``to_version``, step by step id.

    A case whose current step id no longer exists starts the new version at its first step. Each moved
    case is audited; this is the only way a case changes version.
    """
    target = strategy_doc(key=key, version=to_version)
    source = strategy_doc(key=key, version=from_version)
    moved = 0
    for case in Case.objects.filter(
        strategy_key=key, strategy_version=from_version, status__in=("new", "active", "promised", "in_plan")
    ):
        step_id = source.steps[case.step].id if case.step < len(source.steps) else ""
        ids = [s.id for s in target.steps]
        new_step = ids.index(step_id) if step_id in ids else (len(ids) if case.step >= len(source.steps) else 0)
        case.strategy_version, case.step = to_version, new_step
        case.save(update_fields=["strategy_version", "step", "updated_at"])
        audit_record(
            actor=actor,
            verb="strategy.migrated",
            subject=case,
            data={"key": key, "from": from_version, "to": to_version, "step": step_id},
        )
        moved += 1
    return moved


OPERATOR_ROLES = frozenset({"agent", "supervisor", "agency_admin"})


@transaction.atomic
def case_strategy_change(*, case: Case, key: str, actor: Actor, now: datetime) -> Case:
    """An agent moves a case to another strategy (its newest version), from the first step.

    The case gets the new strategy's variant (deterministic, as at routing) and is due at once; the
    change is audited with what it replaced. Closed, disputed or held cases keep their strategy.
    """
    if actor.kind != "staff" or actor.role not in OPERATOR_ROLES:
        raise PermissionDeniedError("Only agents, supervisors and agency admins change a case's strategy.")
    latest = strategy_latest_versions().filter(key=key).first()
    if latest is None:
        raise ValidationError("No strategy has this key.", field="key")
    case = Case.objects.select_for_update().get(pk=case.pk)
    if case.status not in {"new", "active", "promised"}:
        raise ConflictError(f"A {case.status} case keeps its strategy.", field="key")
    doc = strategy_doc_of(latest)
    before = {"key": case.strategy_key, "version": case.strategy_version, "step": case.step, "variant": case.variant}
    case.strategy_key, case.strategy_version, case.step = doc.key, doc.version, 0
    case.variant = variant_for(case_id=case.pk, strategy=doc)
    case.step_at = now
    case.next_action_at = now
    case.save(
        update_fields=["strategy_key", "strategy_version", "step", "variant", "step_at", "next_action_at", "updated_at"]
    )
    audit_record(
        actor=actor,
        verb="strategy.changed",
        subject=case,
        data={"from": before, "key": doc.key, "version": doc.version, "variant": case.variant},
    )
    return case


__all__ = ["strategy_doc_of"]
