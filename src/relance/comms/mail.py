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

import email.policy
import random
import re
import smtplib
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import base64mime, quoprimime
from email.charset import RFC2047_CHROME_LEN, Charset
from email.header import Header
from email.utils import formatdate
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import (
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    BadHeaderError,
    forbid_multi_line_headers,
    sanitize_address,
)

_EOL = re.compile(rb"\r\n|\n|\r(?!\n)")
_DOT = re.compile(rb"(?m)^\.")
_COMPAT32 = email.policy.compat32.clone(linesep="\r\n")  # the policy Django's messages are written with
_PRINTABLE = re.compile(r"[ -~]*\Z")  # printable ASCII and spaces: nothing the email package would fold
# Printable ASCII without spaces, "," or ";": a value compat32 cannot break anywhere (a URL, an id).
_UNBREAKABLE = re.compile(r"[!-+\--:<-~]+\Z")
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
# An address Django's ``sanitize_address`` returns unchanged: dot-atom local part, ASCII domain labels.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]{{1,63}}(?:\.[A-Za-z0-9-]{{1,63}})*\Z")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message already written out: SMTP envelope and the bytes (CRLF line ends) as Django writes them."""

    sender: str
    recipients: list[str]
    data: bytes


def envelope_address(address: str) -> str:
    """``sanitize_address(address, "utf-8")``, without parsing the common plain ASCII address."""
    if _PLAIN_ADDRESS.match(address):
        return address
    return _sanitized(address)


@lru_cache(maxsize=64)
def _sanitized(address: str) -> str:
    return str(sanitize_address(address, "utf-8"))


def smtp_path(address: str) -> str:
    """``smtplib.quoteaddr(address)`` (the ``<…>`` of ``MAIL FROM``/``RCPT TO``), without parsing a plain
    address (tested equal)."""
    if _PLAIN_ADDRESS.match(address):
        return f"<{address}>"
    return _quoted(address)


@lru_cache(maxsize=64)
def _quoted(address: str) -> str:
    return str(smtplib.quoteaddr(address))


class _UTF8(Charset):
    """``Charset("utf-8")`` whose ``header_encode_lines`` gives the same encoded words in linear time.

    The email package re-encodes the growing line for every character to measure it (quadratic, most of
    the cost of an accented subject); the measure only depends on the line's bytes (base64: their count;
    quoted-printable: the sum over bytes), so it is kept as a running total here. Tested against the
    package with Hypothesis.
    """

    def __init__(self) -> None:
        super().__init__("utf-8")

    def header_encode_lines(self, string: str, maxlengths: Any) -> list[str | None]:
        codec = self.output_codec or "us-ascii"
        encoder_module: Any = self._get_encoder(string.encode(codec, "surrogateescape"))  # type: ignore[attr-defined]
        base64 = encoder_module is base64mime
        extra = len(self.get_output_charset() or "") + RFC2047_CHROME_LEN
        lines: list[str | None] = []
        current: list[str] = []
        size = 0  # base64: bytes in the line; quoted-printable: its encoded length
        maxlen = next(maxlengths) - extra
        # The measure only grows with each character: when the whole string fits, it is one encoded word.
        whole = string.encode(codec, "surrogateescape")
        total = len(whole) if base64 else quoprimime.header_length(whole)
        if string and ((total + 2) // 3 * 4 if base64 else total) <= maxlen:
            return [encoder_module.header_encode(whole, codec)]
        for character in string:
            octets = character.encode(codec, "surrogateescape")
            grown = size + (len(octets) if base64 else quoprimime.header_length(octets))
            length = (grown + 2) // 3 * 4 if base64 else grown
            if length > maxlen:
                if not lines and not current:
                    lines.append(None)
                else:
                    lines.append(encoder_module.header_encode("".join(current).encode(codec, "surrogateescape"), codec))
                current = [character]
                size = len(octets) if base64 else quoprimime.header_length(octets)
                maxlen = next(maxlengths) - extra
            else:
                current.append(character)
                size = grown
        lines.append(encoder_module.header_encode("".join(current).encode(codec, "surrogateescape"), codec))
        return lines


_UTF8_CHARSET = _UTF8()


def _subject(value: str) -> str:
    """``forbid_multi_line_headers("Subject", value, "utf-8")``'s value, with the linear-time charset."""
    if "\n" in value or "\r" in value:
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r} for header 'Subject')")
    if value.isascii():
        return str(Header(value).encode())
    return str(Header(value, _UTF8_CHARSET).encode())


def _header(name: str, value: str) -> bytes:
    """One header line as the email package's compat32 policy folds it (Django's messages use it)."""
    if len(name) + len(value) <= 76 and _PRINTABLE.match(value):
        return f"{name}: {value}\r\n".encode("ascii")  # short ASCII: compat32 leaves it as it is
    if len(name) + len(value) > 76 and _UNBREAKABLE.match(value):
        return f"{name}: \r\n {value}\r\n".encode("ascii")  # too long and unbreakable: on its own line
    return bytes(_COMPAT32.fold_binary(name, value))


def _text_part(subtype: str, content: str) -> bytes | None:
    """A text/* part as Django's ``SafeMIMEText(content, subtype, "utf-8")`` writes it, or ``None`` when
    Django would switch to quoted-printable (a line longer than RFC 5322's 998 bytes)."""
    lines = content.splitlines()
    limit = RFC5322_EMAIL_LINE_LENGTH_LIMIT
    # A line's UTF-8 takes at most 4 bytes a character: only lines longer than a quarter are measured.
    if lines and max(map(len, lines)) * 4 > limit:
        quarter = limit // 4
        if any(len(line.encode(errors="surrogateescape")) > limit for line in lines if len(line) > quarter):
            return None
    # As the email package's NLCRE (\r\n|\r|\n) substitution: every line break becomes CRLF.
    if "\r" in content:
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    try:
        body = content.replace("\n", "\r\n").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: leave it to the email package
        return None
    cte = "7bit" if content.isascii() else "8bit"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    head += f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    return head.encode("ascii") + body


def _boundary(parts: bytes) -> str:
    """A boundary drawn as the email package draws it, whose delimiter line never occurs in the parts."""
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}" + "=="  # noqa: S311 - not a secret
    found, counter = boundary, 0
    while b"--" + found.encode("ascii") in parts:  # stricter than the package's line match, no regex to compile
        found, counter = f"{boundary}.{counter}", counter + 1
    return found


def alternative_message(
    *,
    subject: str,
    text: str,
    html: str,
    from_email: str,
    to: Sequence[str],
    reply_to: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    boundary: str | None = None,
    date: str | None = None,
) -> RawMessage | None:
    """The bytes Django's ``EmailMultiAlternatives(subject, text, from_email, to, reply_to=…, headers=…)``
    with ``attach_alternative(html, "text/html")`` produces (``message().as_bytes(linesep="\r\n")``),
    written directly: the same headers in the same order and folding, the same parts, charset and
    transfer encodings. ``None`` when Django would quoted-printable encode a part (very long lines):
    the caller then uses Django. ``headers`` must hold ``Message-ID`` (and no ``Date``/address headers).
    ``boundary`` and ``date`` are for tests (compared byte for byte with Django's output).
    """
    text_part = _text_part("plain", text) if text else None
    html_part = _text_part("html", html)
    if (text and text_part is None) or html_part is None:
        return None
    parts = [p for p in (text_part, html_part) if p is not None]
    if boundary is None:
        boundary = _boundary(b"\r\n".join(parts))
    # compat32 folds this one after the ";" (the line is longer than 78 with the package's boundary).
    out = [f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode("ascii")]
    fields = [("MIME-Version", "1.0"), ("From", from_email)]
    if to:
        fields.append(("To", ", ".join(to)))
    if reply_to:
        fields.append(("Reply-To", ", ".join(reply_to)))
    fields.append(("Date", date or formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
    fields += headers
    out += [_header(*forbid_multi_line_headers(name, value, "utf-8")) for name, value in fields]
    out.insert(2, _header("Subject", _subject(subject)))  # after MIME-Version, as Django orders them
    dash = f"--{boundary}".encode("ascii")
    out.append(b"\r\n" + dash + b"\r\n" + (b"\r\n" + dash + b"\r\n").join(parts) + b"\r\n" + dash + b"--\r\n")
    return RawMessage(
        sender=envelope_address(from_email),
        recipients=[envelope_address(addr) for addr in to],
        data=b"".join(out),
    )


def _smtp_body(data: bytes) -> bytes:
    """CRLF line ends and dot-stuffing (RFC 5321 4.5.2), skipping the regex passes when nothing would change."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        data = _EOL.sub(b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = _DOT.sub(b"..", data)
    return data


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

    def send_with_handover(self, message: EmailMessage | RawMessage, on_handover: Callable[[], None]) -> None:
        """Send one message; call ``on_handover`` just before the final ``.``; raise on any refusal."""
        if self.connection is None:
            self.open()
        conn = self.connection
        if conn is None:  # open() failed silently (fail_silently)
            raise smtplib.SMTPServerDisconnected("no SMTP connection")
        if isinstance(message, RawMessage):
            sender, recipients, data = message.sender, message.recipients, message.data
        else:
            encoding = message.encoding or settings.DEFAULT_CHARSET
            sender = sanitize_address(message.from_email, encoding)
            recipients = [sanitize_address(addr, encoding) for addr in message.recipients()]
            data = message.message().as_bytes(linesep="\r\n")
        try:
            conn.ehlo_or_helo_if_needed()
            # smtplib's mail() and rcpt() without options, with the address quoted as quoteaddr does.
            conn.putcmd("mail", f"FROM:{smtp_path(sender)}")
            code, reply = conn.getreply()
            if code != 250:
                conn.rset()
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            refused = {}
            for rcpt in recipients:
                conn.putcmd("rcpt", f"TO:{smtp_path(rcpt)}")
                code, reply = conn.getreply()
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
            body = _smtp_body(data)
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
