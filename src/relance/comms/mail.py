"""SMTP with a hand-over point: how each e-mail reaches the server at most once (issue 4).

SMTP has no idempotency key: a message whose final ``.`` the server received is delivered, whether or
not the client lived to read the ``250``. So the dispatcher records *before* that ``.`` that it is
handing the message over, and the record is conditional on its lease:

1. ``sending`` (committed at claim, with the dispatcher run's lease): nothing reached the server yet.
   A dispatcher that dies here leaves nothing behind at the server (a connection dropped inside
   ``DATA`` aborts the SMTP transaction): recovery puts the action back in the queue, it is sent later.
2. ``MAIL FROM``, ``RCPT TO``, ``DATA`` and the whole message, **without** the terminating ``.``.
3. ``on_handover()``: the action becomes ``handover`` in one committed UPDATE that also checks the
   lease. If another run took the action over (lease expired), the UPDATE matches nothing, the
   connection is dropped and the message is never completed.
4. The ``.``, then the server's reply; ``sent`` is recorded (batched with the next hand-over).

A dispatcher killed between 3 and 4 leaves ``handover``: the message was delivered once or not at all,
and nothing can tell which (only the mail server's log, or an ESP's delivery webhook, can). Recovery
marks such an action ``failed`` with that reason instead of sending it again: never twice, and the
residual window is one network round trip per message.

Backends without a hand-over point (anymail's ESPs, file, console) are used through Django's ordinary
``send_messages``; for them the stored ``Message-ID`` is the action id, which ESPs and mailboxes use to
spot a duplicate, and their webhooks settle the action.
"""

from __future__ import annotations

import re
import smtplib
import socket
from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address

_EOL = re.compile(rb"\r\n|\n|\r(?!\n)")
_DOT = re.compile(rb"(?m)^\.")


class HandoverAborted(Exception):  # noqa: N818 - a signal, not a failure
    """``on_handover`` refused: the message was not completed, the server discards it."""


class HandoverSMTPBackend(EmailBackend):
    """Django's SMTP backend plus ``send_with_handover`` (the connection is kept open between messages)."""

    def open(self) -> bool | None:
        opened = super().open()
        sock = getattr(self.connection, "sock", None)
        if opened and sock is not None:
            # The final "." goes out alone after the hand-over record: without TCP_NODELAY, Nagle's
            # algorithm holds it until the server's delayed ACK of the body (tens of milliseconds).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return opened

    def send_with_handover(self, message: EmailMessage, on_handover: Callable[[], None]) -> None:
        """Send one message; call ``on_handover`` just before the final ``.``; raise on any refusal."""
        if self.connection is None:
            self.open()
        conn = self.connection
        if conn is None:  # open() failed silently (fail_silently)
            raise smtplib.SMTPServerDisconnected("no SMTP connection")
        encoding = message.encoding or settings.DEFAULT_CHARSET
        sender = sanitize_address(message.from_email, encoding)
        recipients = [sanitize_address(addr, encoding) for addr in message.recipients()]
        data = message.message().as_bytes(linesep="\r\n")
        try:
            conn.ehlo_or_helo_if_needed()
            code, reply = conn.mail(sender)
            if code != 250:
                conn.rset()
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            refused = {}
            for rcpt in recipients:
                code, reply = conn.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, reply)
            if len(refused) == len(recipients):
                conn.rset()
                raise smtplib.SMTPRecipientsRefused(refused)
            conn.putcmd("data")
            code, reply = conn.getreply()
            if code != 354:
                conn.rset()
                raise smtplib.SMTPDataError(code, reply)
            body = _DOT.sub(b"..", _EOL.sub(b"\r\n", data))
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            conn.send(body)
        except smtplib.SMTPServerDisconnected:
            self.connection = None
            raise
        try:
            on_handover()
        except BaseException:
            self._drop()  # inside DATA: closing without "." aborts the transaction at the server
            raise
        conn.send(b".\r\n")
        code, reply = conn.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None
