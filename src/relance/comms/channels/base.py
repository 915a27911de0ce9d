"""What every channel sender provides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from relance.claims.models import Debtor
from relance.comms.models import Action


@dataclass(frozen=True, slots=True)
class Sent:
    """What left, exactly as the debtor receives it (kept on the Action)."""

    to_address: str
    subject: str
    body_text: str
    body_html: str
    content_hash: str
    provider_message_id: str
    # Facts worth keeping in the audit row (e.g. SMS encoding, segments and cost); never secrets.
    meta: dict[str, Any] = field(default_factory=dict)
    # E-mail through ``comms.mail``: the dispatcher already recorded it (``handover``) before the final ".".
    handed_over: bool = False


@dataclass
class SendContext:
    """Per-dispatch resources shared by the senders (connections, batch folders…)."""

    now: datetime
    resources: dict[str, Any] = field(default_factory=dict)


class ChannelSender(Protocol):
    def blocked(self, action: Action, debtor: Debtor) -> str:
        """Why this debtor cannot be reached on this channel now ("" when they can)."""
        ...

    def send(self, action: Action, context: SendContext) -> Sent:
        """Hand the message to the provider; raise on failure (the action is then marked failed)."""
        ...
