"""The audit data's JSON text, fast path: ``native_json`` writes what ``compact_json`` writes (invariant 7).

The chain's hash covers the data's JSON text; bulk appends write it with orjson (``native_json``) and
verification re-derives it with the standard library (``row_hash``): the two must give the same
characters for every value the fast path receives (JSON-native values: no floats).
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from relance.audit.chain import compact_json, hash_head, hash_join, hash_middle, native_json, row_hash

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits as well: orjson refuses them, compact_json writes them
    st.text(),  # any code point, control characters and lone surrogates included
    st.text(alphabet=st.characters(codec="utf-8"), max_size=5),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=500)
@given(value=values)
def test_property_native_json_is_compact_json(value: object) -> None:
    try:
        expected = compact_json(value)
    except UnicodeEncodeError:  # pragma: no cover - compact_json does not encode
        return
    assert native_json(value) == expected


@settings(max_examples=300)
@given(data=st.dictionaries(st.text(max_size=12), scalars, max_size=14))
def test_property_a_flat_event_hashes_the_same_either_way(data: dict[str, object]) -> None:
    """A flat dict of plain values, the engine's kind of event: the chain's own hash of the row."""
    stored = native_json(data)
    try:
        stored.encode()
    except UnicodeEncodeError:
        return  # a lone surrogate cannot be hashed by either path
    at = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
    digest = hash_join(
        42, hash_head(at, "system:engine"), hash_middle("action.queued", "cases.case", "7", stored), "a" * 64
    )
    assert digest == row_hash(
        seq=42,
        occurred_at=at,
        actor="system:engine",
        verb="action.queued",
        subject_type="cases.case",
        subject_id="7",
        data=json.loads(stored),
        prev_hash="a" * 64,
    )


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_enums_and_the_engine_event_are_written_alike() -> None:
    event = {
        "key": "default",
        "version": 1,
        "variant": "",
        "routed": False,
        "from": "new",
        "to": Colour.RED,
        "reason": "step first_notice — relance « amiable »\n",
        "level": Level.HIGH,
        "action": 2**40,
        "step": None,
        "list": [1, "é", {"b": 1, "a": [True]}],
    }
    assert native_json(event) == compact_json(event)
    assert native_json({"big": 2**70}) == '{"big":1180591620717411303424}'
