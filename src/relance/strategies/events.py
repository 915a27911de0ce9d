"""Which audit records are strategy events (pure): the platform's facts mapped onto ``document.EVENTS``.

Every state change already leaves an audit row (invariant 7), so reactions read the trail instead of
asking payments, comms or the portal to call into strategies (they may not import it: DESIGN.md
layering). ``event_kind`` returns None for rows that are not events.
"""

from __future__ import annotations

from collections.abc import Mapping

# Verbs that may be events; the engine only reads these rows.
EVENT_VERBS = frozenset(
    {
        "payment.received",
        "case.status_changed",
        "action.bounced",
        "letter.returned",
        "portal.verified",
        "debtor.sms_opt_out",
        "debtor.email_opt_out",
        "plan.instalment_missed",
    }
)
_SIMPLE = {
    "action.bounced": "bounce",
    "letter.returned": "bounce",
    "portal.verified": "portal_visit",
    "debtor.sms_opt_out": "opt_out",
    "debtor.email_opt_out": "opt_out",
    "plan.instalment_missed": "instalment_missed",
}


def event_kind(verb: str, data: Mapping[str, object], *, outstanding_minor: int) -> str | None:
    if verb in _SIMPLE:
        return _SIMPLE[verb]
    if verb == "payment.received":
        return "payment_full" if outstanding_minor <= 0 else "payment_partial"
    if verb == "case.status_changed":
        before, after = data.get("from"), data.get("to")
        if after == "promised":
            return "promise_made"
        if after == "disputed":
            return "dispute_opened"
        if before == "disputed" and after == "active":
            return "dispute_answered"
    return None
