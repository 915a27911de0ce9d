"""The case status machine (pure): which moves are allowed, and which states end a case."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.cases.status import CHASEABLE, TERMINAL, TRANSITIONS, Status, can_transition

statuses = st.sampled_from(list(Status))


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(Status)
    for targets in TRANSITIONS.values():
        assert all(isinstance(target, Status) for target in targets)


@pytest.mark.parametrize("final", [Status.RETURNED, Status.WRITTEN_OFF, Status.CLOSED])
def test_final_states_have_no_exits(final: Status) -> None:
    assert final in TERMINAL
    for target in Status:
        assert not can_transition(final, target)


def test_paid_reopens_only_on_reversal_or_closes() -> None:
    # A paid case reopens only if the payment is reversed (chargeback, returned direct debit).
    assert {t for t in Status if can_transition(Status.PAID, t)} == {Status.ACTIVE, Status.CLOSED}


def test_settled_can_only_close() -> None:
    assert {t for t in Status if can_transition(Status.SETTLED, t)} == {Status.CLOSED}


def test_terminal_states_never_lead_to_a_waiting_or_disputed_state() -> None:
    waiting = {Status.PROMISED, Status.IN_PLAN, Status.DISPUTED, Status.ON_HOLD, Status.NEW}
    for final in TERMINAL:
        for target in waiting:
            assert not can_transition(final, target)


def test_disputed_cannot_go_back_to_new() -> None:
    assert not can_transition(Status.DISPUTED, Status.NEW)


def test_nothing_goes_back_to_new() -> None:
    # NEW means "never contacted"; once a case has moved it cannot pretend otherwise.
    for source in Status:
        assert not can_transition(source, Status.NEW)


def test_no_status_transitions_to_itself() -> None:
    for status in Status:
        assert not can_transition(status, status)


def test_disputed_is_never_chaseable() -> None:
    # Invariant 5: a disputed case is not chased until the dispute is answered.
    assert Status.DISPUTED not in CHASEABLE
    assert set(CHASEABLE) == {Status.NEW, Status.ACTIVE}
    assert not CHASEABLE & TERMINAL


def test_disputed_is_resumed_only_through_active() -> None:
    # Leaving a dispute for a chasing state goes through ACTIVE (dispute answered), never straight to
    # a promise or a plan.
    assert can_transition(Status.DISPUTED, Status.ACTIVE)
    assert not can_transition(Status.DISPUTED, Status.PROMISED)
    assert not can_transition(Status.DISPUTED, Status.IN_PLAN)


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        (Status.NEW, Status.ACTIVE, True),
        (Status.NEW, Status.DISPUTED, True),
        (Status.NEW, Status.PROMISED, False),
        (Status.ACTIVE, Status.PROMISED, True),
        (Status.ACTIVE, Status.IN_PLAN, True),
        (Status.ACTIVE, Status.PAID, True),
        (Status.PROMISED, Status.ACTIVE, True),  # promise broken
        (Status.PROMISED, Status.IN_PLAN, True),
        (Status.IN_PLAN, Status.PROMISED, False),
        (Status.ON_HOLD, Status.ACTIVE, True),
        (Status.ON_HOLD, Status.PROMISED, False),
        (Status.CLOSED, Status.ACTIVE, False),
        (Status.RETURNED, Status.ACTIVE, False),
    ],
)
def test_can_transition_examples(source: Status, target: Status, allowed: bool) -> None:
    assert can_transition(source, target) is allowed


def test_can_transition_accepts_stored_string_values() -> None:
    # The models store the value; StrEnum members compare equal to their strings.
    assert can_transition(Status("new"), Status("active"))
    assert not can_transition(Status("closed"), Status("active"))


def test_every_open_state_can_reach_an_end() -> None:
    for start in set(Status) - TERMINAL:
        seen, frontier = {start}, [start]
        while frontier:
            for target in TRANSITIONS[frontier.pop()]:
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert seen & TERMINAL, start


@settings(max_examples=200)
@given(source=statuses, target=statuses)
def test_property_table_and_can_transition_agree(source: Status, target: Status) -> None:
    allowed = can_transition(source, target)
    assert allowed == (target in TRANSITIONS[source])
    assert allowed == can_transition(Status(source.value), Status(target.value))
    if source in {Status.RETURNED, Status.WRITTEN_OFF, Status.CLOSED}:
        assert not allowed
    if target in {Status.NEW, source}:
        assert not allowed
