"""The actor: who is doing something, as the services and selectors see it.

One value object for staff users, creditor users, API keys, debtors on the portal and the system
(engine, simulator). Selectors scope every read through it (the one choke point, invariant 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relance.tenancy.models import ApiKey, User


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # "staff" | "creditor" | "api" | "debtor" | "system"
    id: str  # stable id for the audit trail: user pk, key prefix, case pk, process name
    role: str = ""
    creditor_id: int | None = None
    agency_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def is_staff(self) -> bool:
        return self.kind in {"staff", "system"}

    @classmethod
    def system(cls, name: str = "engine") -> Actor:
        return cls(kind="system", id=name, role="system")

    @classmethod
    def for_user(cls, user: User) -> Actor:
        if user.is_creditor_user:
            return cls(
                kind="creditor",
                id=str(user.pk),
                role=user.role,
                creditor_id=user.creditor_id,
                agency_id=user.agency_id,
            )
        return cls(kind="staff", id=str(user.pk), role=user.role, agency_id=user.agency_id)

    @classmethod
    def for_api_key(cls, key: ApiKey) -> Actor:
        return cls(kind="api", id=key.key_prefix, role="api", creditor_id=key.creditor_id)

    @classmethod
    def for_debtor(cls, *, case_id: int) -> Actor:
        return cls(kind="debtor", id=f"case-{case_id}", role="debtor")
