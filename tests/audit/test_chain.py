"""Pure hashing of audit rows (DESIGN invariant 7: the chain verifies end to end, tampering is detected)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.audit.chain import GENESIS, ChainBreak, ChainRow, canonical, row_hash, verify_rows

START = datetime(2025, 6, 2, 9, 30, 15, 123456, tzinfo=UTC)
VERBS = ["case.create", "case.hold", "payment.record", "action.sent", "engine.deferred"]
# Fields covered by the hash (``seq``, the table's key, among them).
HASHED_FIELDS = ["seq", "occurred_at", "actor", "verb", "subject_type", "subject_id", "data", "prev_hash", "hash"]


def make_chain(length: int) -> list[ChainRow]:
    """A good chain built the way ``audit_record`` builds it."""
    rows: list[ChainRow] = []
    prev = GENESIS
    for n in range(length):
        fields: dict[str, Any] = {
            "seq": n + 1,
            "occurred_at": START + timedelta(minutes=n, microseconds=n),
            "actor": f"user:{n % 3}",
            "verb": VERBS[n % len(VERBS)],
            "subject_type": "cases.case",
            "subject_id": str(10 + n % 4),
            "data": canonical({"n": n, "amount": Decimal("12.50"), "on": START.date(), "note": "réglé"}),
            "prev_hash": prev,
        }
        digest = row_hash(**fields)
        rows.append(ChainRow(hash=digest, **fields))
        prev = digest
    return rows


def tamper(row: ChainRow, field: str) -> ChainRow:
    """The row with one hashed field changed to a different value."""
    current = getattr(row, field)
    if field == "seq":
        changed: Any = current + 1
    elif field == "occurred_at":
        changed = current + timedelta(microseconds=1)
    elif field == "data":
        changed = {**current, "amount": "1250.00"}
    elif field in {"prev_hash", "hash"}:
        changed = ("f" if current[0] != "f" else "e") + current[1:]
    else:
        changed = current + "x"
    return replace(row, **{field: changed})


def test_good_chain_verifies() -> None:
    rows = make_chain(12)
    assert verify_rows(rows) == (12, None)


def test_empty_chain_verifies() -> None:
    assert verify_rows([]) == (0, None)


def test_rows_may_be_streamed() -> None:
    assert verify_rows(iter(make_chain(5))) == (5, None)


def test_first_row_must_start_from_genesis() -> None:
    rows = make_chain(3)
    assert rows[0].prev_hash == GENESIS
    # A chain that starts with its second row (the first deleted) is detected at that row.
    count, broken = verify_rows(rows[1:])
    assert count == 0
    assert broken is not None
    assert broken.seq == rows[1].seq


def test_hash_depends_on_every_content_field() -> None:
    row = make_chain(1)[0]
    fields = {name: getattr(row, name) for name in HASHED_FIELDS if name != "hash"}
    original = row_hash(**fields)
    for name in fields:
        changed = tamper(row, name)
        assert row_hash(**{**fields, name: getattr(changed, name)}) != original, name


def test_data_is_hashed_as_stored() -> None:
    # Decimals and dates are stored as JSON strings; the hash is the same before and after storage.
    raw = {"amount": Decimal("12.50"), "on": START.date(), "nested": {"b": 1, "a": [1, 2]}}
    common = {
        "seq": 1,
        "occurred_at": START,
        "actor": "a",
        "verb": "v",
        "subject_type": "t",
        "subject_id": "1",
        "prev_hash": GENESIS,
    }
    assert row_hash(data=raw, **common) == row_hash(data=canonical(raw), **common)
    assert canonical(raw) == {"amount": "12.50", "on": "2025-06-02", "nested": {"a": [1, 2], "b": 1}}


@pytest.mark.parametrize("field", HASHED_FIELDS)
@pytest.mark.parametrize("index", [0, 3, 7])
def test_changing_a_field_is_detected_at_that_row(field: str, index: int) -> None:
    rows = make_chain(8)
    rows[index] = tamper(rows[index], field)
    count, broken = verify_rows(rows)
    assert broken is not None
    assert broken.seq == rows[index].seq
    assert count == index


def test_content_change_reason() -> None:
    rows = make_chain(4)
    rows[2] = tamper(rows[2], "actor")
    _, broken = verify_rows(rows)
    assert broken == ChainBreak(seq=3, reason="content does not match its hash")


def test_rehashing_a_tampered_row_is_still_detected_at_the_next_row() -> None:
    # An attacker who recomputes the tampered row's hash breaks the link to the following row.
    rows = make_chain(5)
    forged = replace(rows[1], actor="someone-else")
    forged = replace(
        forged,
        hash=row_hash(**{name: getattr(forged, name) for name in HASHED_FIELDS if name != "hash"}),
    )
    rows[1] = forged
    count, broken = verify_rows(rows)
    assert count == 2
    assert broken == ChainBreak(seq=3, reason="prev_hash does not match previous row")


def test_deleting_a_row_is_detected_at_the_next_row() -> None:
    rows = make_chain(6)
    del rows[3]
    count, broken = verify_rows(rows)
    assert count == 3
    assert broken is not None
    assert broken.seq == rows[3].seq  # the row that followed the deleted one
    assert "sequence gap" in broken.reason


def test_swapping_two_rows_is_detected() -> None:
    rows = make_chain(6)
    rows[1], rows[4] = rows[4], rows[1]
    count, broken = verify_rows(rows)
    assert count == 1
    assert broken is not None
    assert broken.seq == rows[1].seq


def test_only_the_first_break_is_reported() -> None:
    rows = make_chain(6)
    rows[1] = tamper(rows[1], "verb")
    rows[4] = tamper(rows[4], "verb")
    _, broken = verify_rows(rows)
    assert broken is not None
    assert broken.seq == rows[1].seq


# --- properties ------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(data=st.data(), length=st.integers(min_value=1, max_value=25), field=st.sampled_from(HASHED_FIELDS))
def test_property_any_single_field_change_is_detected_at_its_row(data: st.DataObject, length: int, field: str) -> None:
    rows = make_chain(length)
    index = data.draw(st.integers(min_value=0, max_value=length - 1))
    rows[index] = tamper(rows[index], field)
    count, broken = verify_rows(rows)
    assert count == index
    assert broken is not None
    assert broken.seq == rows[index].seq


@settings(max_examples=200)
@given(data=st.data(), length=st.integers(min_value=2, max_value=25))
def test_property_deleting_any_row_but_the_last_is_detected(data: st.DataObject, length: int) -> None:
    rows = make_chain(length)
    index = data.draw(st.integers(min_value=0, max_value=length - 2))
    successor = rows[index + 1]
    del rows[index]
    count, broken = verify_rows(rows)
    assert count == index
    assert broken is not None
    assert broken.seq == successor.seq


@settings(max_examples=200)
@given(data=st.data(), length=st.integers(min_value=2, max_value=25))
def test_property_swapping_any_two_rows_is_detected(data: st.DataObject, length: int) -> None:
    rows = make_chain(length)
    first = data.draw(st.integers(min_value=0, max_value=length - 2))
    second = data.draw(st.integers(min_value=first + 1, max_value=length - 1))
    rows[first], rows[second] = rows[second], rows[first]
    count, broken = verify_rows(rows)
    assert count == first
    assert broken is not None
    assert broken.seq == rows[first].seq


@settings(max_examples=100)
@given(length=st.integers(min_value=0, max_value=40))
def test_property_untouched_chains_verify(length: int) -> None:
    assert verify_rows(make_chain(length)) == (length, None)
