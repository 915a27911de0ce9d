"""The pure decision function with the richer documents: delays, conditions, actions, variants,
reactions, routing. No database."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from relance.cases.status import Status
from relance.comms.policy import ContactPolicy
from relance.strategies.decide import CaseEvent, CaseSnapshot, decide, route, variant_for
from relance.strategies.document import parse_strategy

PARIS = ZoneInfo("Europe/Paris")
POLICY = ContactPolicy(closed_days=frozenset())
# Monday 2 June 2025, 11:00 in Paris.
PLACED = datetime(2025, 6, 2, 11, tzinfo=PARIS)
DAY = timedelta(days=1)
ALL = frozenset({"email", "sms", "letter", "call"})


def doc(body: str, head: str = 'key: t\nversion: 1\nname: "T"\n'):
    return parse_strategy(head + body)


def snap(**fields: object) -> CaseSnapshot:
    base = CaseSnapshot(
        case_id=1, status=Status.ACTIVE, step_index=0, placed_at=PLACED, outstanding_minor=12050, channels=ALL
    )
    return replace(base, **fields)


def test_previous_step_delay_counts_from_when_the_last_step_was_done() -> None:
    strategy = doc(
        "steps:\n  - {id: a, at: placement + 0d, action: email, template: t}\n"
        "  - {id: b, at: previous + 3d, action: sms, template: t}\n"
    )
    done_at = PLACED + 2 * DAY  # the first step went two days late (policy, engine pause…)
    outcome = decide(snap(step_index=1, step_at=done_at), strategy, POLICY, PLACED + 4 * DAY)
    assert outcome.reason == "waiting"
    assert outcome.next_action_at == done_at + 3 * DAY
    # Deciding the first step schedules the second from now.
    first = decide(snap(status=Status.NEW), strategy, POLICY, PLACED)
    assert first.next_action_at == PLACED + 3 * DAY


def test_pre_due_reminder_is_sent_before_the_due_date_and_skipped_after_it() -> None:
    strategy = doc(
        "steps:\n  - {id: pre, at: due - 5d, action: email, template: pre_due}\n"
        "  - {id: after, at: due + 1d, action: email, template: t}\n"
    )
    due = date(2025, 6, 20)
    early = decide(snap(status=Status.NEW, due_date=due), strategy, POLICY, PLACED)
    assert early.reason == "waiting"
    assert early.next_action_at == datetime(2025, 6, 15, tzinfo=PARIS)
    at = datetime(2025, 6, 16, 11, tzinfo=PARIS)  # Monday, 4 days before
    sent = decide(snap(status=Status.NEW, due_date=due), strategy, POLICY, at)
    assert [c.template for c in sent.contacts] == ["pre_due"]
    late = decide(snap(due_date=date(2025, 5, 1)), strategy, POLICY, PLACED)
    assert late.contacts == ()
    assert "due date already passed" in late.reason


def test_promise_anchored_step_without_promise_is_skipped() -> None:
    strategy = doc("steps:\n  - {id: p, at: promise + 1d, action: sms, template: t}\n")
    outcome = decide(snap(), strategy, POLICY, PLACED)
    assert outcome.next_step == 1
    assert "no promise date" in outcome.reason


def test_condition_false_skips_the_step_with_its_reason() -> None:
    strategy = doc("steps:\n  - {id: big, after_days: 0, action: call, template: c, when: 'outstanding >= 300'}\n")
    outcome = decide(snap(), strategy, POLICY, PLACED)
    assert outcome.contacts == ()
    assert outcome.next_step == 1
    assert "condition not met (outstanding >= 300)" in outcome.reason
    rich = decide(snap(outstanding_minor=50_000), strategy, POLICY, PLACED)
    assert [c.channel for c in rich.contacts] == ["call"]


def test_wait_escalate_return_close() -> None:
    strategy = doc(
        "steps:\n  - {id: w, after_days: 0, action: wait}\n  - {id: e, after_days: 5, action: escalate, reason: big}\n"
    )
    waited = decide(snap(), strategy, POLICY, PLACED)
    assert (waited.contacts, waited.next_step, waited.next_action_at) == ((), 1, PLACED + 5 * DAY)
    escalated = decide(snap(step_index=1), strategy, POLICY, PLACED + 5 * DAY)
    assert escalated.transition == Status.ON_HOLD
    assert "big" in escalated.reason


def test_variant_steps_only_for_their_variant() -> None:
    strategy = doc(
        "variants:\n  - {name: A, share: 50}\n  - {name: B, share: 50}\n"
        "steps:\n  - {id: a, after_days: 3, action: sms, template: t, variants: [A]}\n"
        "  - {id: b, after_days: 6, action: sms, template: t, variants: [B]}\n"
    )
    a = decide(snap(variant="A"), strategy, POLICY, PLACED + 3 * DAY)
    assert [c.step_key for c in a.contacts] == ["t:v1:a"]
    b = decide(snap(variant="B"), strategy, POLICY, PLACED + 3 * DAY)
    assert b.reason == "waiting"
    assert b.next_action_at == PLACED + 6 * DAY


def test_variant_assignment_is_deterministic_and_follows_the_split() -> None:
    strategy = doc(
        "variants:\n  - {name: A, share: 20}\n  - {name: B, share: 30}\n  - {name: C, share: 50}\n"
        "steps:\n  - {id: s, after_days: 0, action: wait}\n"
    )
    first = [variant_for(case_id=i, strategy=strategy) for i in range(1, 5001)]
    assert first == [variant_for(case_id=i, strategy=strategy) for i in range(1, 5001)]
    counts = Counter(first)
    assert abs(counts["A"] / 5000 - 0.2) < 0.03
    assert abs(counts["B"] / 5000 - 0.3) < 0.03
    assert abs(counts["C"] / 5000 - 0.5) < 0.03
    # A new version keeps the same variant for a case (the hash uses the key, not the version).
    v2 = replace(strategy, version=2)
    assert all(variant_for(case_id=i, strategy=v2) == first[i - 1] for i in range(1, 200))
    assert variant_for(case_id=1, strategy=doc("steps:\n  - {id: s, after_days: 0, action: wait}\n")) == ""


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**12))
def test_variant_is_always_a_declared_one(case_id: int) -> None:
    strategy = doc(
        "variants:\n  - {name: A, share: 1}\n  - {name: B, share: 99}\n"
        "steps:\n  - {id: s, after_days: 0, action: wait}\n"
    )
    assert variant_for(case_id=case_id, strategy=strategy) in {"A", "B"}


REACTIVE = (
    "steps:\n  - {id: first, after_days: 0, action: email, template: first_notice}\n"
    "  - {id: reminder, after_days: 10, action: email, template: reminder}\n"
    "reactions:\n"
    "  - on: payment_partial\n    goto: reminder\n"
    "  - on: bounce\n    action: letter\n    template: first_notice\n    when: has_address\n"
    "  - on: instalment_missed\n    action: escalate\n"
    "  - on: promise_broken\n    action: sms\n    template: reminder\n"
)


def test_reaction_sends_once_per_event_with_its_own_key() -> None:
    strategy = doc(REACTIVE)
    event = CaseEvent(id=77, kind="bounce", at=PLACED)
    outcome = decide(snap(step_index=1, events=(event,)), strategy, POLICY, PLACED + DAY)
    assert [(c.channel, c.step_key) for c in outcome.contacts] == [("letter", "t:v1:on1:bounce:77")]
    assert outcome.next_step is None  # the sequence itself does not move


def test_reaction_goto_moves_the_case() -> None:
    strategy = doc(REACTIVE)
    outcome = decide(
        snap(step_index=0, events=(CaseEvent(5, "payment_partial", PLACED),)), strategy, POLICY, PLACED + DAY
    )
    assert outcome.next_step == 1
    assert outcome.next_action_at == PLACED + 10 * DAY


def test_reaction_escalates() -> None:
    outcome = decide(
        snap(step_index=1, events=(CaseEvent(9, "instalment_missed", PLACED),)), doc(REACTIVE), POLICY, PLACED + DAY
    )
    assert outcome.transition == Status.ON_HOLD


def test_broken_promise_triggers_its_reaction() -> None:
    promised = snap(status=Status.PROMISED, step_index=1, promise_date=date(2025, 6, 3))
    outcome = decide(promised, doc(REACTIVE), POLICY, datetime(2025, 6, 4, 11, tzinfo=PARIS))
    assert outcome.transition == Status.ACTIVE
    assert [c.channel for c in outcome.contacts] == ["sms"]


def test_reaction_contact_deferred_by_policy_is_queued_later() -> None:
    strategy = doc(REACTIVE)
    sunday = datetime(2025, 6, 8, 11, tzinfo=PARIS)
    outcome = decide(snap(step_index=1, events=(CaseEvent(1, "promise_broken", sunday),)), strategy, POLICY, sunday)
    (contact,) = outcome.contacts
    assert contact.at is not None and contact.at > sunday  # no SMS on Sunday: queued for Monday


def test_routing_picks_the_first_matching_candidate() -> None:
    small = doc(
        "steps:\n  - {id: s, after_days: 0, action: wait}\n",
        'key: small\nversion: 1\nname: S\napplies_to: "outstanding < 300"\n',
    )
    b2b = doc(
        "steps:\n  - {id: s, after_days: 0, action: wait}\n",
        "key: b2b\nversion: 1\nname: B\napplies_to: \"segment == 'b2b'\"\n",
    )
    assert route(snap(segment="b2b"), [b2b, small], PLACED) == b2b
    assert route(snap(), [b2b, small], PLACED) == small
    assert route(snap(outstanding_minor=90_000), [b2b, small], PLACED) is None


def test_an_answered_dispute_is_no_longer_an_open_one() -> None:
    strategy = doc(
        "steps:\n  - {id: first, after_days: 0, action: email, template: t}\n"
        "  - {id: reminder, after_days: 10, action: email, template: reminder}\n"
        "reactions:\n  - on: dispute_opened\n    action: escalate\n  - on: dispute_answered\n    goto: reminder\n"
    )
    events = (CaseEvent(3, "dispute_opened", PLACED), CaseEvent(8, "dispute_answered", PLACED + DAY))
    outcome = decide(snap(step_index=0, events=events), strategy, POLICY, PLACED + 2 * DAY)
    assert outcome.transition is None
    assert outcome.next_step == 1
