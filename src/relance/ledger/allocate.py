"""Allocation of a payment over ordered buckets (pure).

The caller orders the buckets by the jurisdiction's rule (France: interest before principal,
C. civ. 1343-1; among claims, the oldest due first, C. civ. 1342-10 [S]). What exceeds every bucket
is returned as the remainder: an overpayment is a refundable balance, never silently kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Allocation:
    key: str
    amount: int


def allocate(amount: int, buckets: Sequence[tuple[str, int]]) -> tuple[list[Allocation], int]:
    """Fill ``buckets`` (key, open amount) in order with ``amount``; return allocations and remainder."""
    if amount < 0:
        raise ValueError("cannot allocate a negative amount")
    remaining = amount
    allocations: list[Allocation] = []
    for key, open_amount in buckets:
        if remaining == 0:
            break
        if open_amount <= 0:
            continue
        take = min(remaining, open_amount)
        allocations.append(Allocation(key, take))
        remaining -= take
    return allocations, remaining
