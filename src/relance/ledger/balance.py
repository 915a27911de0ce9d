"""Pure validation of ledger lines: the same rule the PostgreSQL trigger enforces at commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from relance.core.errors import UnbalancedTransactionError, ValidationError


@dataclass(frozen=True, slots=True)
class Line:
    """One intended posting: account key, positive debit or credit in minor units, currency."""

    account: str
    currency: str
    debit: int = 0
    credit: int = 0

    @classmethod
    def dr(cls, account: str, amount: int, currency: str) -> Line:
        return cls(account=account, currency=currency, debit=amount)

    @classmethod
    def cr(cls, account: str, amount: int, currency: str) -> Line:
        return cls(account=account, currency=currency, credit=amount)


def check_balanced(lines: Iterable[Line]) -> None:
    """Raise unless every line has one positive side and each currency's debits equal credits."""
    totals: dict[str, int] = defaultdict(int)
    count = 0
    for line in lines:
        count += 1
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (line.debit, line.credit)):
            raise ValidationError("Ledger amounts must be integers (minor units).", account=line.account)
        if line.debit < 0 or line.credit < 0 or (line.debit > 0) == (line.credit > 0):
            raise ValidationError("A posting has exactly one positive side (debit or credit).", account=line.account)
        totals[line.currency] += line.debit - line.credit
    if count < 2:
        raise UnbalancedTransactionError("A transaction needs at least two postings.")
    off = {cur: diff for cur, diff in totals.items() if diff != 0}
    if off:
        raise UnbalancedTransactionError(
            "Debits and credits differ: " + ", ".join(f"{cur} {diff:+d}" for cur, diff in sorted(off.items())),
            difference=off,
        )
