"""Pure hashing of audit rows: the same function writes and verifies the chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> Any:
    """JSON-native copy of ``value`` (dates and decimals as strings), as it will be stored."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def row_hash(
    *,
    seq: int,
    occurred_at: datetime,
    actor: str,
    verb: str,
    subject_type: str,
    subject_id: str,
    data: Any,
    prev_hash: str,
) -> str:
    payload = json.dumps(
        [
            seq,
            occurred_at.isoformat(timespec="microseconds"),
            actor,
            verb,
            subject_type,
            subject_id,
            canonical(data),
            prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainRow:
    id: int
    seq: int
    occurred_at: datetime
    actor: str
    verb: str
    subject_type: str
    subject_id: str
    data: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    row_id: int
    seq: int
    reason: str


def verify_rows(rows: Iterable[ChainRow]) -> tuple[int, ChainBreak | None]:
    """Walk rows in ``seq`` order; return how many verified and the first break, if any."""
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for row in rows:
        if row.seq != expected_seq:
            return count, ChainBreak(row.id, row.seq, f"sequence gap: expected {expected_seq}")
        if row.prev_hash != expected_prev:
            return count, ChainBreak(row.id, row.seq, "prev_hash does not match previous row")
        recomputed = row_hash(
            seq=row.seq,
            occurred_at=row.occurred_at,
            actor=row.actor,
            verb=row.verb,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            data=row.data,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            return count, ChainBreak(row.id, row.seq, "content does not match its hash")
        expected_prev = row.hash
        expected_seq += 1
        count += 1
    return count, None
