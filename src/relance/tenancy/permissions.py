"""The permission matrix (issue 6) as data, and the one check every page and API call goes through.

``MATRIX`` says which roles hold each permission; ``docs/permissions.md`` prints the same table
(a test keeps the two equal). Pages declare their permission with ``@requires("…")`` (see
``backoffice.access``); API operations declare their key scope with ``auth=scoped("…")``
(see ``api.auth``). The generic test ``tests/backoffice/test_permission_matrix.py`` reads those
declarations, calls every page and every API operation as every role, with the actor's own ids
and with another creditor's, and asserts 403/404 wherever this matrix says no.

Role-level checks ("may this role open this kind of page at all?") live here; object-level scoping
("is this case this creditor's?") lives in the querysets (``Case.objects.visible_to(actor)``): a
creditor asking for another creditor's object gets the same 404 as for an absent one (invariant 6).
"""

from __future__ import annotations

from relance.core.errors import PermissionDeniedError
from relance.tenancy.actors import Actor

AGENCY_ADMIN = "agency_admin"
SUPERVISOR = "supervisor"
AGENT = "agent"
AUDITOR = "auditor"
CREDITOR_ADMIN = "creditor_admin"
CREDITOR_VIEWER = "creditor_viewer"

ROLES: tuple[str, ...] = (AGENCY_ADMIN, SUPERVISOR, AGENT, AUDITOR, CREDITOR_ADMIN, CREDITOR_VIEWER)
STAFF: frozenset[str] = frozenset({AGENCY_ADMIN, SUPERVISOR, AGENT, AUDITOR})
EVERYONE: frozenset[str] = frozenset(ROLES)
OPERATORS: frozenset[str] = frozenset({AGENCY_ADMIN, SUPERVISOR, AGENT})  # staff who work cases

# permission -> (roles holding it, what it lets them do). Add a row for a new kind of page; the
# generic test and docs/permissions.md pick it up.
MATRIX: dict[str, tuple[frozenset[str], str]] = {
    "account.security": (EVERYONE, "Manage one's own two-factor authentication and recovery codes"),
    "cases.view": (EVERYONE, "List cases and open a case page (debtor's personal data; audited)"),
    "cases.work": (OPERATORS, "Act on a case: calls, notes, holds, promises, discounts, return, write-off"),
    "cases.recall": (frozenset({CREDITOR_ADMIN}), "Take a case back from the agency (creditor portal)"),
    "queues.view": (STAFF, "See the work queues and their items"),
    "queues.work": (OPERATORS, "Take the next item of a queue and act on it (each queue names its roles)"),
    "dashboards.view": (EVERYONE, "Dashboards and their CSV/XLSX exports (figures, no personal data)"),
    "evidence.download": (EVERYONE, "Download a file of evidence (audited)"),
    "outbox.view": (EVERYONE, "List messages and read one (audited)"),
    "imports.view": (EVERYONE, "List file imports and read their reports"),
    "imports.upload": (OPERATORS | {CREDITOR_ADMIN}, "Upload a file of claims"),
    "intake.mapping": (OPERATORS | {CREDITOR_ADMIN}, "Edit a creditor's import mapping"),
    "debtors.review": (STAFF, "Review possible duplicate debtors (all creditors)"),
    "debtors.merge": (OPERATORS, "Decide a possible duplicate: merge into the known debtor, or keep apart"),
    "strategies.view": (STAFF, "Read strategies and templates"),
    "strategies.edit": (frozenset({AGENCY_ADMIN, SUPERVISOR}), "Edit strategies and templates"),
    "disputes.answer": (frozenset({AGENCY_ADMIN, SUPERVISOR, CREDITOR_ADMIN}), "Answer a dispute with evidence"),
    "returns.decide": (
        frozenset({AGENCY_ADMIN, SUPERVISOR, CREDITOR_ADMIN}),
        "Confirm that returned goods arrived (the claim is cancelled) or refuse the return",
    ),
    "returns.settings": (frozenset({CREDITOR_ADMIN}), "Set the creditor's return policy shown to its debtors"),
    "payments.report": (OPERATORS | {CREDITOR_ADMIN}, "Record a payment the creditor received directly"),
    "payments.events": (STAFF, "See card payment (PSP) events that were ignored or wait for their payment"),
    "notifications.view": (EVERYONE, "Read the creditor notifications (payments, disputes, proposals)"),
    "remittances.view": (
        frozenset({AGENCY_ADMIN, SUPERVISOR, AUDITOR, CREDITOR_ADMIN, CREDITOR_VIEWER}),
        "Read remittances and fee invoices",
    ),
    "remittances.manage": (frozenset({AGENCY_ADMIN}), "Prepare and send remittances"),
    "audit.search": (frozenset({AGENCY_ADMIN, AUDITOR}), "Search access audit events (who read what, when, why)"),
    "api_keys.manage": (frozenset({AGENCY_ADMIN, CREDITOR_ADMIN}), "Create and revoke API keys"),
    "webhooks.view": (
        frozenset({AGENCY_ADMIN, SUPERVISOR, CREDITOR_ADMIN, CREDITOR_VIEWER}),
        "See webhook endpoints and the delivery log",
    ),
    "webhooks.manage": (frozenset({AGENCY_ADMIN, CREDITOR_ADMIN}), "Configure webhook endpoints; replay deliveries"),
    "creditor.security": (
        frozenset({AGENCY_ADMIN, CREDITOR_ADMIN}),
        "Require two-factor authentication for a creditor's users",
    ),
}

# API key scopes -> what they allow (enforced by ``api.auth.scoped``).
API_SCOPES: dict[str, str] = {
    "read": "Read cases, imports, mappings and evidence status",
    "write": "Act on cases (e.g. report a payment received directly, pause, close)",
    "intake": "Place claims, upload files, attach evidence, save the import mapping",
}


class UnknownPermissionError(KeyError):
    """A view asked for a permission that is not in ``MATRIX`` (a typo must not open a page)."""


def roles_for(permission: str) -> frozenset[str]:
    try:
        return MATRIX[permission][0]
    except KeyError:
        raise UnknownPermissionError(permission) from None


def allowed(actor: Actor, permission: str) -> bool:
    """Whether ``actor``'s role holds ``permission``; the system actor holds every one."""
    roles = roles_for(permission)
    if actor.kind == "system":
        return True
    return actor.kind in {"staff", "creditor"} and actor.role in roles


def authorize(actor: Actor, permission: str) -> None:
    """The choke point: raise ``PermissionDeniedError`` (403) unless ``actor`` holds ``permission``."""
    if not allowed(actor, permission):
        raise PermissionDeniedError(
            "Your role does not allow this.", permission=permission, role=actor.role or actor.kind
        )


def is_second_factor_required(*, role: str, creditor_requires: bool, has_device: bool) -> bool:
    """Staff always need a second factor; a creditor user when they set one up or their admin requires it."""
    return role in STAFF or creditor_requires or has_device
