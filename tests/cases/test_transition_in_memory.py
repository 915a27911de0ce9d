"""``case_transition_in_memory``: the bulk writers' transition (the engine's batches), without writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relance.cases.services import case_transition_in_memory
from relance.cases.status import CHASEABLE, TERMINAL, Status, can_transition
from relance.core.errors import InvalidTransitionError

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


@dataclass
class Row:
    pk: int
    status: str
    closed_at: datetime | None = None
    next_action_at: datetime | None = NOW


@given(source=st.sampled_from(list(Status)), target=st.sampled_from(list(Status)))
def test_the_row_gets_the_plain_stored_value_and_the_event_plain_strings(source: Status, target: Status) -> None:
    row = Row(pk=7, status=source.value)  # as read from the database: a plain string
    if source != target and not can_transition(source, target):
        with pytest.raises(InvalidTransitionError):
            case_transition_in_memory(case=row, to=target, reason="r", now=NOW)
        assert row.status == source.value
        return
    moved = case_transition_in_memory(case=row, to=target, reason="r", now=NOW)
    if source == target:
        assert moved is None
        return
    assert moved is not None
    fields, event = moved
    assert type(row.status) is str and row.status == target.value
    assert (event.verb, event.subject_type, event.subject_id) == ("case.status_changed", "cases.case", 7)
    assert event.data == {"from": source.value, "to": target.value, "reason": "r"}
    assert {type(event.data["from"]), type(event.data["to"])} == {str}
    assert fields[:2] == ["status", "updated_at"]
    if target in TERMINAL:
        assert (row.closed_at, row.next_action_at) == (NOW, None)
    elif target not in CHASEABLE:
        assert row.next_action_at is None


def test_an_unknown_stored_status_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="not a valid Status"):
        case_transition_in_memory(case=Row(pk=1, status="bogus"), to=Status.ACTIVE, now=NOW)
