"""Strategies against the database: routing and A/B/n assignment recorded on the case, reactions to
events read from the audit trail, new versions, migration of cases, the 30-day dry run."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from relance.audit.models import AuditEvent
from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.services import case_promise, case_transition
from relance.cases.status import Status
from relance.comms.models import Action
from relance.core.errors import ConflictError
from relance.core.money import Money
from relance.payments.models import Payment
from relance.payments.services import payment_record
from relance.strategies.decide import variant_for
from relance.strategies.dryrun import strategy_dry_run
from relance.strategies.engine import engine_tick
from relance.strategies.models import EventCursor, Strategy
from relance.strategies.selectors import strategy_doc
from relance.strategies.services import (
    StrategyInvalidError,
    case_events_wake,
    strategy_enable,
    strategy_migrate_cases,
    strategy_save,
    strategy_save_new_version,
)
from relance.tenancy.actors import Actor
from support import next_working_day_at

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")

AB = """key: ab
version: 1
name: "A/B"
applies_to: "creditor == 'shop'"
priority: 50
variants:
  - {name: A, share: 50}
  - {name: B, share: 50}
steps:
  - {id: first, at: placement + 0d, action: email, template: first_notice}
  - {id: reminder_a, at: placement + 5d, action: email, template: reminder, variants: [A]}
  - {id: reminder_b, at: placement + 9d, action: email, template: reminder, variants: [B]}
  - {id: final, at: previous + 5d, action: email, template: final_notice}
reactions:
  - on: payment_partial
    action: email
    template: reminder
"""


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


def test_shipped_strategies_are_installed_but_not_enabled(db):
    keys = dict(Strategy.objects.values_list("key", "enabled"))
    assert keys == {"default": False, "b2c_small": False, "b2c_high": False, "b2b_pre_due": False}
    assert Strategy.objects.get(is_default=True).key == "default"


def test_an_enabled_strategy_routes_new_cases_and_records_the_variant(place):
    strategy_save(source=AB, actor=ACTOR)
    strategy_enable(key="ab", enabled=True, actor=ACTOR)
    cases = [place(f"INV-{n}", "80.00", email=f"d{n}@example.fr", last_name=f"N{n}").case for n in range(12)]
    other = place("INV-O", "80.00", creditor=Case.objects.first().creditor.agency.creditors.get(slug="other")).case

    engine_tick(now=_weekday_noon())

    doc = strategy_doc(key="ab", version=1)
    for case in cases:
        case.refresh_from_db()
        assert (case.strategy_key, case.strategy_version) == ("ab", 1)
        assert case.variant == variant_for(case_id=case.pk, strategy=doc)
        assert case.step_at == case.placed_at or case.step == 1
        # The first look's one event (here the status change, with the queued action) carries the assignment.
        event = AuditEvent.objects.get(actor="system:engine", subject_id=str(case.pk), data__has_key="variant")
        assert {k: event.data[k] for k in ("key", "version", "variant", "routed")} == {
            "key": "ab",
            "version": 1,
            "variant": case.variant,
            "routed": True,
        }
        assert Action.objects.get(case=case).step_key == "ab:v1:first"
    assert {c.variant for c in cases} == {"A", "B"}
    other.refresh_from_db()
    assert (other.strategy_key, other.variant) == ("default", "")  # its creditor is not 'shop'


def test_assignment_is_stable_across_ticks_and_versions(place):
    strategy_save(source=AB, actor=ACTOR)
    strategy_enable(key="ab", enabled=True, actor=ACTOR)
    case = place("INV-1", "80.00").case
    now = _weekday_noon()
    engine_tick(now=now)
    case.refresh_from_db()
    first = (case.strategy_version, case.variant)
    strategy_save_new_version(source=AB.replace('name: "A/B"', 'name: "A/B v2"'), actor=ACTOR)
    assert Strategy.objects.get(key="ab", version=2).enabled  # a new version of an enabled key stays enabled
    engine_tick(now=now + timedelta(days=20))
    case.refresh_from_db()
    assert (case.strategy_version, case.variant) == first  # a case keeps its version
    assert AuditEvent.objects.filter(subject_id=str(case.pk), data__has_key="variant").count() == 1


def test_partial_payment_wakes_the_case_and_its_reaction_fires_once(place):
    strategy_save(source=AB, actor=ACTOR)
    strategy_enable(key="ab", enabled=True, actor=ACTOR)
    case = place("INV-1", "80.00").case
    now = _weekday_noon()
    engine_tick(now=now)  # first notice (also creates the event cursor)
    case.refresh_from_db()
    later = now + timedelta(days=3)
    payment_record(
        case=case,
        amount=Money(2000, "EUR"),
        method=Payment.Method.SIMULATED,
        external_ref="p1",
        actor=ACTOR,
        received_at=later,
    )
    engine_tick(now=later)
    engine_tick(now=later + timedelta(minutes=5))
    reaction = Action.objects.filter(case=case, step_key__contains=":on0:payment_partial:")
    assert reaction.count() == 1
    assert reaction.get().template == "reminder"


def test_promise_made_is_an_event_but_contacts_wait_for_a_chaseable_case(place):
    case = place("INV-1", "80.00").case
    now = _weekday_noon()
    engine_tick(now=now)
    case.refresh_from_db()
    case_promise(case=case, on=(now + timedelta(days=5)).date(), amount_minor=8000, actor=ACTOR, now=now)
    report = engine_tick(now=now + timedelta(minutes=1))
    assert report.contacts == {}


def test_new_version_from_the_editor_bumps_the_version(db):
    saved = strategy_save_new_version(source=AB, actor=ACTOR)
    again = strategy_save_new_version(source=AB.replace("placement + 9d", "placement + 8d"), actor=ACTOR)
    assert (saved.version, again.version) == (1, 2)
    assert "version: 2" in again.source
    with pytest.raises(StrategyInvalidError) as info:
        strategy_save_new_version(
            source=AB.replace("action: email, template: final_notice", "action: fax"), actor=ACTOR
        )
    assert info.value.fields["line"] == 13
    assert info.value.fields["where"] == "steps[4].action"
    with pytest.raises(ConflictError):
        strategy_save(source=AB.replace("A/B", "other"), actor=ACTOR)


def test_migrating_cases_keeps_their_step_by_id(place):
    strategy_save(source=AB, actor=ACTOR)
    strategy_enable(key="ab", enabled=True, actor=ACTOR)
    case = place("INV-1", "80.00").case
    engine_tick(now=_weekday_noon())
    strategy_save_new_version(
        source=AB.replace("steps:\n", "steps:\n  - {id: hello, at: placement + 0d, action: wait}\n"), actor=ACTOR
    )
    assert strategy_migrate_cases(key="ab", from_version=1, to_version=2, actor=ACTOR) == 1
    case.refresh_from_db()
    doc = strategy_doc(key="ab", version=2)
    assert case.strategy_version == 2
    assert doc.steps[case.step].id in {"reminder_a", "reminder_b"}
    assert AuditEvent.objects.filter(verb="strategy.migrated", subject_id=str(case.pk)).exists()


def test_dry_run_counts_steps_channels_and_cost_without_writing(place, settings):
    settings.CHANNEL_UNIT_COST_MINOR = {"email": 1, "sms": 7, "letter": 150, "call": 200}
    strategy_save(source=AB, actor=ACTOR)
    for n in range(4):
        place(f"INV-{n}", "80.00", email=f"d{n}@example.fr", last_name=f"N{n}")
    before = (Action.objects.count(), AuditEvent.objects.count(), list(Case.objects.values_list("step", "variant")))

    report = strategy_dry_run(doc=strategy_doc(key="ab", version=1), now=_weekday_noon(), days=30)

    assert (Action.objects.count(), AuditEvent.objects.count()) == before[:2]
    assert list(Case.objects.values_list("step", "variant")) == before[2]
    assert report.cases == 4
    assert report.per_step[("first", "email")] == 4
    assert report.per_step[("final", "email")] == 4
    assert report.per_step[("reminder_a", "email")] + report.per_step[("reminder_b", "email")] == 4
    assert report.per_channel["email"] == 12
    assert report.cost_minor == 12
    assert sum(report.per_variant.values()) == 4


def test_an_escalated_case_goes_on_hold_and_resumes_after_the_escalation_step(place):
    source = (
        "key: esc\nversion: 1\nname: E\npriority: 99\n"
        "steps:\n  - {id: esc, at: placement + 0d, action: escalate, reason: look}\n"
        "  - {id: mail, at: previous + 0d, action: email, template: reminder}\n"
    )
    strategy_save(source=source, actor=ACTOR)
    strategy_enable(key="esc", enabled=True, actor=ACTOR)
    case = place("INV-1", "80.00").case
    now = _weekday_noon()
    engine_tick(now=now)
    case.refresh_from_db()
    assert (case.status, case.step) == (Status.ON_HOLD, 1)
    case_transition(case=case, to=Status.ACTIVE, actor=ACTOR, reason="agent resumes")
    Case.objects.filter(pk=case.pk).update(next_action_at=now)
    engine_tick(now=now + timedelta(days=3))
    assert Action.objects.get(case=case).step_key == "esc:v1:mail"


def test_the_wake_up_cursor_moves_past_rows_that_are_not_events_and_still_finds_later_events(place):
    """``case_events_wake`` reads the trail from its cursor: with no event among the new rows, the cursor
    moves to the head (the next wake-up does not read them again); an event appended after is found."""
    case = place("WK-1", "80.00").case
    now = _weekday_noon()
    case_events_wake(now=now)  # creates the cursor at the head
    cursor = EventCursor.objects.get(name="engine")
    for n in range(3):  # rows that are not events
        audit_record(actor=ACTOR, verb="case.viewed", subject=case, data={"n": n})
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert case_events_wake(now=now) == 0
    cursor.refresh_from_db()
    assert cursor.seq == head
    Case.objects.filter(pk=case.pk).update(next_action_at=now + timedelta(days=30))
    audit_record(actor=ACTOR, verb="letter.returned", subject=case, data={})  # an event: wakes the case
    assert case_events_wake(now=now) == 1
    assert Case.objects.get(pk=case.pk).next_action_at == now
    cursor.refresh_from_db()
    assert cursor.seq == AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
