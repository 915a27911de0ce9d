"""The one exception tree of Relance.

Every domain error has a stable ``code``, an HTTP status and structured fields; the API renders them
as RFC 7807 problem details. "Not found" and "not yours" answer the same (``NotFoundError``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request cannot be processed"

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.message = message or self.title
        self.fields = fields
        super().__init__(self.message)

    def problem(self) -> dict[str, Any]:
        """RFC 7807 problem details."""
        return {
            "type": f"https://relance.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.message,
            "code": self.code,
            **{k: v for k, v in self.fields.items() if _jsonable(v)},
        }


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict) or value is None


class ValidationError(DomainError):
    code = "validation"
    status = 422
    title = "Invalid input"


class NotFoundError(DomainError):
    code = "not_found"
    status = 404
    title = "Not found"


class PermissionDeniedError(DomainError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class ConflictError(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict with the current state"


class InvalidTransitionError(ConflictError):
    code = "case.invalid_transition"
    title = "This change of status is not allowed"


class UnbalancedTransactionError(ValidationError):
    code = "ledger.unbalanced"
    title = "Ledger transaction does not balance"


class AuditChainError(DomainError):
    code = "audit.chain_broken"
    status = 500
    title = "Audit chain does not verify"
