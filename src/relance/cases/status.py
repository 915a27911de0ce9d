"""The case status machine (DESIGN.md): pure, no Django.

new → active → (promised | in_plan | disputed | on_hold) → paid | settled | returned | written_off | closed
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    PROMISED = "promised"
    IN_PLAN = "in_plan"
    DISPUTED = "disputed"
    ON_HOLD = "on_hold"
    PAID = "paid"
    SETTLED = "settled"
    RETURNED = "returned"
    WRITTEN_OFF = "written_off"
    CLOSED = "closed"


TERMINAL = frozenset({Status.PAID, Status.SETTLED, Status.RETURNED, Status.WRITTEN_OFF, Status.CLOSED})
# States in which the strategy engine may contact the debtor (invariant 5: never while disputed).
CHASEABLE = frozenset({Status.NEW, Status.ACTIVE})
_ENDINGS = frozenset(TERMINAL)
_WAITING = frozenset({Status.PROMISED, Status.IN_PLAN, Status.DISPUTED, Status.ON_HOLD})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.ACTIVE, Status.DISPUTED, Status.ON_HOLD} | _ENDINGS),
    Status.ACTIVE: frozenset(_WAITING | _ENDINGS),
    Status.PROMISED: frozenset({Status.ACTIVE, Status.IN_PLAN, Status.DISPUTED, Status.ON_HOLD} | _ENDINGS),
    Status.IN_PLAN: frozenset({Status.ACTIVE, Status.DISPUTED, Status.ON_HOLD} | _ENDINGS),
    Status.DISPUTED: frozenset({Status.ACTIVE, Status.ON_HOLD} | _ENDINGS),
    Status.ON_HOLD: frozenset({Status.ACTIVE, Status.DISPUTED} | _ENDINGS),
    # A paid case reopens only if the payment is reversed (chargeback, returned direct debit).
    Status.PAID: frozenset({Status.ACTIVE, Status.CLOSED}),
    Status.SETTLED: frozenset({Status.CLOSED}),
    Status.RETURNED: frozenset(),
    Status.WRITTEN_OFF: frozenset(),
    Status.CLOSED: frozenset(),
}


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]
