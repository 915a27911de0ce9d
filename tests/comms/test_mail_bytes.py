"""The dispatcher writes its e-mails directly (``comms.mail.alternative_message``) instead of through
Django's ``EmailMultiAlternatives`` (issue 4, speed): the bytes must be the ones Django writes.

Django's message is built as the e-mail sender used to build it, its random boundary and its Date are
read back and given to ``alternative_message``, and the two are compared byte for byte — and also
parsed with ``email.message_from_bytes`` (headers, multipart/alternative structure, charsets,
transfer encodings, decoded bodies).
"""

from __future__ import annotations

import email
import re
import smtplib
import string
from email.charset import Charset

import pytest
from django.core.mail import BadHeaderError, EmailMultiAlternatives
from django.core.mail.message import sanitize_address
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.comms.mail import (
    _DOT,
    _EOL,
    _UTF8,
    RawMessage,
    _smtp_body,
    alternative_message,
    envelope_address,
    smtp_path,
)

L111_8 = "Article L111-8 du code des procédures civiles d'exécution : les frais de recouvrement…"
UNSUBSCRIBE = "<https://relance.example.fr/hooks/email/unsubscribe/" + "eyJkIjoxMjM0NX0" * 4 + ":1xWPtO:QQ-xeRH/>"


def _headers(action: int, unsubscribe: str = UNSUBSCRIBE) -> dict[str, str]:
    return {
        "Message-ID": f"<action-{action}@relance.example.fr>",
        "X-Relance-Action": str(action),
        "List-Unsubscribe": unsubscribe,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _both(  # noqa: PLR0917 - one call per case
    subject: str, text: str, html: str, to: str, reply_to: list[str], headers: dict[str, str]
) -> tuple[bytes, RawMessage | None]:
    django = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email="Relance <relance@relance.example.fr>",
        to=[to],
        reply_to=reply_to or None,
        headers=headers,
    )
    django.attach_alternative(html, "text/html")
    try:
        expected = django.message().as_bytes(linesep="\r\n")
    except Exception as refused:  # e.g. a value that would smuggle in a header: refused the same way
        with pytest.raises(type(refused)):
            alternative_message(
                subject=subject, text=text, html=html, from_email="r@x.fr", to=[to], headers=list(headers.items())
            )
        return b"", None
    boundary = re.search(rb'boundary="([^"]+)"', expected)
    date = re.search(rb"\r\nDate: ([^\r]+)\r\n", expected)
    assert boundary is not None and date is not None
    mine = alternative_message(
        subject=subject,
        text=text,
        html=html,
        from_email="Relance <relance@relance.example.fr>",
        to=[to],
        reply_to=reply_to,
        headers=list(headers.items()),
        boundary=boundary.group(1).decode(),
        date=date.group(1).decode(),
    )
    return expected, mine


def _same_parsed(expected: bytes, mine: bytes) -> None:
    a, b = email.message_from_bytes(expected), email.message_from_bytes(mine)
    assert a.items() == b.items()
    assert a.get_content_type() == b.get_content_type() == "multipart/alternative"
    for pa, pb in zip(a.walk(), b.walk(), strict=True):
        assert pa.items() == pb.items()
        assert pa.get_content_charset() == pb.get_content_charset()
        assert pa.get("Content-Transfer-Encoding") == pb.get("Content-Transfer-Encoding")
        if not pa.is_multipart():
            assert pa.get_payload(decode=True) == pb.get_payload(decode=True)


CASES = [
    # French: non-ASCII subject (RFC 2047), 8bit bodies, a long List-Unsubscribe folded on its own line.
    (
        "Facture impayée Bench SAS — 120,50 €",
        f"Bonjour Jeanne Martin,\n\nReste dû : 120,50 €\n\n--\n{L111_8}\n",
        "<!doctype html>\n<p>Bonjour Jeanne Martin,<br>Reste dû : <strong>120,50 €</strong></p>\n",
        "b0@example.fr",
        ["support@bench.fr"],
    ),
    # English, all ASCII: 7bit parts, ASCII subject, no Reply-To.
    ("Unpaid invoice F-1", "Hello,\n\nPlease pay.\n", "<p>Hello,</p>\n<p>Please pay.</p>\n", "a.b+c@example.co.uk", []),
    # A long ASCII subject (folded by Django's Header) and CRLF / lone CR line ends in the bodies.
    (
        "Reminder: " + "invoice F-2024-000123, " * 5 + "still due",
        "line one\r\nline two\rline three\n\n",
        "<p>x</p>\r\n<p>y</p>",
        "x@sub.example.fr",
        ["Support Team <help@bench.fr>"],
    ),
    # A long non-ASCII subject (several encoded words) and lines that start with a dot or "From ".
    (
        "Dernier rappel avant mise en demeure — créance n° F-2026-000987 — échéance dépassée de 45 jours",
        ".leading dot\nFrom here on\n..two dots\n",
        "<p>é</p>\n.\n",
        "z@example.fr",
        [],
    ),
    # A non-ASCII address (Django sanitises it into the header and the envelope).
    ("Rappel", "Texte.\n", "<p>Texte.</p>\n", "jérôme@exämple.fr", []),
]


def test_the_direct_bytes_are_the_bytes_django_writes():
    for n, (subject, text, html, to, reply_to) in enumerate(CASES):
        expected, mine = _both(subject, text, html, to, reply_to, _headers(n))
        assert mine is not None
        assert mine.data == expected, (n, expected, mine.data)
        _same_parsed(expected, mine.data)
        assert mine.sender == sanitize_address("Relance <relance@relance.example.fr>", "utf-8")
        assert mine.recipients == [sanitize_address(to, "utf-8")]


def test_a_short_unsubscribe_header_and_ascii_only_bodies_match_too():
    expected, mine = _both("Hi", "ok\n", "<p>ok</p>", "a@b.fr", [], _headers(7, "<https://x.fr/u/abc>"))
    assert mine is not None and mine.data == expected


def test_very_long_lines_are_left_to_django_which_switches_to_quoted_printable():
    long_line = "é" * 600  # 1,200 bytes on one line: more than RFC 5322's 998
    _, mine = _both("Rappel", f"{long_line}\n", "<p>ok</p>", "a@b.fr", [], _headers(1))
    assert mine is None
    _, mine = _both("Rappel", "ok\n", f"<p>{long_line}</p>", "a@b.fr", [], _headers(1))
    assert mine is None
    # 300 accented characters (600 bytes) stay under the limit: written directly, same bytes.
    expected, mine = _both("Rappel", "é" * 300 + "\n", "<p>ok</p>", "a@b.fr", [], _headers(1))
    assert mine is not None and mine.data == expected


def test_a_header_with_a_line_break_is_refused_as_django_refuses_it():
    with pytest.raises(BadHeaderError):
        alternative_message(
            subject="a\nBcc: x@evil.fr", text="t\n", html="<p>t</p>", from_email="r@x.fr", to=["a@b.fr"]
        )


def test_the_boundary_drawn_never_appears_in_the_parts():
    raw = alternative_message(
        subject="s", text="t\n", html="<p>t</p>", from_email="r@x.fr", to=["a@b.fr"], headers=[("Message-ID", "<m@x>")]
    )
    assert raw is not None
    parsed = email.message_from_bytes(raw.data)
    assert [p.get_content_type() for p in parsed.walk()] == ["multipart/alternative", "text/plain", "text/html"]
    assert [p.get_payload(decode=True) for p in parsed.get_payload()] == [b"t\r\n", b"<p>t</p>"]


header_text = st.text(alphabet=string.printable.replace("\r", "").replace("\n", "") + "éàü€—", max_size=120)


@settings(max_examples=150, deadline=None)
@given(subject=header_text, action=st.integers(min_value=1, max_value=10**12), unsubscribe=header_text)
def test_any_subject_and_header_value_gives_django_s_bytes(subject: str, action: int, unsubscribe: str):
    expected, mine = _both(subject, "t\n", "<p>t</p>", "a@b.fr", [], _headers(action, unsubscribe))
    assert mine is None if not expected else mine is not None and mine.data == expected


local = st.from_regex(r"\A[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\.[A-Za-z0-9_-]{1,5}){0,2}\Z")
domain = st.from_regex(r"\A[A-Za-z0-9-]{1,12}(\.[A-Za-z0-9-]{1,8}){1,2}\Z")


@settings(max_examples=200, deadline=None)
@given(local=local, domain=domain)
def test_plain_envelope_addresses_are_what_sanitize_address_returns(local: str, domain: str):
    address = f"{local}@{domain}"
    try:
        expected = sanitize_address(address, "utf-8")
    except (ValueError, UnicodeError):
        return  # Django refuses it; envelope_address is only given addresses the message already accepted
    assert envelope_address(address) == expected


def test_unusual_envelope_addresses_go_through_sanitize_address():
    for address in ["Jeanne <j@x.fr>", "a..b@x.fr", "jérôme@exämple.fr", '"a b"@x.fr']:
        assert envelope_address(address) == sanitize_address(address, "utf-8")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200),
    first=st.integers(min_value=1, max_value=90),
    rest=st.integers(min_value=1, max_value=90),
)
def test_the_linear_subject_encoder_gives_the_email_package_s_encoded_words(text: str, first: int, rest: int):
    def lengths(first: int, rest: int):  # type: ignore[no-untyped-def]
        yield first
        while True:
            yield rest

    expected = Charset("utf-8").header_encode_lines(text, lengths(first, rest))
    assert _UTF8().header_encode_lines(text, lengths(first, rest)) == expected


@settings(max_examples=200, deadline=None)
@given(subject=st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=150))
def test_any_unicode_subject_gives_django_s_bytes(subject: str):
    expected, mine = _both(subject, "t\n", "<p>t</p>", "a@b.fr", [], _headers(1))
    assert mine is None if not expected else mine is not None and mine.data == expected


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=60) | st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b" "])).map(b"".join))
def test_the_smtp_body_is_what_the_regex_passes_give(data: bytes):
    assert _smtp_body(data) == _DOT.sub(b"..", _EOL.sub(b"\r\n", data))


unbreakable = st.text(alphabet=string.ascii_letters + string.digits + "<>/:._-=?&%~+!$'()*@[]^`{|}\"#", max_size=300)


@settings(max_examples=200, deadline=None)
@given(unsubscribe=unbreakable, name=st.sampled_from(["List-Unsubscribe", "X", "X-Relance-A-Much-Longer-Name"]))
def test_long_unbreakable_header_values_give_django_s_bytes(unsubscribe: str, name: str):
    """A signed URL longer than the line: compat32 puts it alone on the next line; so does the shortcut."""
    headers = {**_headers(7), name: unsubscribe}
    expected, mine = _both("Relance", "t\n", "<p>t</p>", "a@b.fr", [], headers)
    assert mine is None if not expected else mine is not None and mine.data == expected


line_breaks = st.lists(st.sampled_from(["a", "é", "\r", "\n", "\r\n", " ", "x" * 300, "€" * 260])).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=line_breaks, html=line_breaks)
def test_bodies_with_any_line_breaks_and_long_lines_give_django_s_bytes(text: str, html: str):
    expected, mine = _both("Relance", text or "t", html, "a@b.fr", [], _headers(3))
    if mine is not None:  # None: a line over 998 bytes, left to Django
        assert mine.data == expected


@settings(max_examples=200, deadline=None)
@given(local=local, domain=domain)
def test_the_smtp_path_of_an_address_is_smtplib_s(local: str, domain: str):
    for address in (f"{local}@{domain}", f"Jeanne <{local}@{domain}>", f'"{local} x"@{domain}'):
        assert smtp_path(address) == smtplib.quoteaddr(address)
