"""Channel dispatchers: one sender per channel, registered here.

A sender turns one outbox Action into one message handed to a provider, using the action id as the
idempotency key, and returns what was sent (stored as rendered on the Action). Adding a channel is
adding a module with a ``ChannelSender`` and one ``register`` line below.
"""

from __future__ import annotations

from relance.comms.channels.base import ChannelSender, SendContext, Sent
from relance.comms.channels.call import CallSender
from relance.comms.channels.email import EmailSender
from relance.comms.channels.letter import LetterSender
from relance.comms.channels.sms import SmsSender

_SENDERS: dict[str, ChannelSender] = {}


def register(channel: str, sender: ChannelSender) -> None:
    _SENDERS[channel] = sender


def sender_for(channel: str) -> ChannelSender | None:
    return _SENDERS.get(channel)


register("email", EmailSender())
register("sms", SmsSender())
register("letter", LetterSender())
register("call", CallSender())

__all__ = ["ChannelSender", "SendContext", "Sent", "register", "sender_for"]
