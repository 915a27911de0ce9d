"""SMS text rules (pure): GSM-7 or UCS-2, segments, cost, and STOP keywords.

Sources: 3GPP TS 23.038 §6.2.1 (the GSM 7-bit default alphabet and its extension table, whose
characters are sent as ESC + char and so take two septets) and TS 23.040 §9.2.3.24.1 (a concatenated
SMS carries a 6-byte user data header, leaving 153 septets or 67 UCS-2 characters per part instead of
160 or 70). A two-septet character or a UTF-16 surrogate pair is never split across two parts, so a
part can end one unit short; segments are counted by packing, as handsets and providers do.

Invariants: a non-empty text has at least one segment; appending a character never lowers the
count; the cost is segments × the per-segment price, in integer minor units.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

# TS 23.038 default alphabet (0x1B, the escape to the extension table, is not a character).
# 0x09 is "Ç" in the standard; handsets commonly show "ç", but a "ç" sent by a provider is UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# TS 23.038 extension table: each is sent as ESC + char (two septets).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT = 160, 153
UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SmsSize:
    """How a text travels: its encoding, its length in units (septets or UTF-16 code units), its parts."""

    encoding: Encoding
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 7-bit basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _unit_sizes(text: str) -> tuple[Encoding, list[int]]:
    if is_gsm7(text):
        return "GSM-7", [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    # UCS-2 on the wire is UTF-16: a character outside the BMP (an emoji) takes a surrogate pair.
    return "UCS-2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(sizes: list[int], part_limit: int) -> int:
    """Parts needed when no character may straddle two parts."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > part_limit:
            parts, used = parts + 1, 0
        used += size
    return parts


def sms_size(text: str) -> SmsSize:
    """Encoding, units and segment count of ``text`` (0 segments only for the empty text)."""
    encoding, sizes = _unit_sizes(text)
    units = sum(sizes)
    single, part = (GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT) if encoding == "GSM-7" else (UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT)
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        segments = _pack(sizes, part)
    return SmsSize(encoding=encoding, units=units, segments=segments)


def sms_segments(text: str) -> int:
    return sms_size(text).segments


def sms_cost_minor(text: str, *, segment_price_minor: int) -> int:
    """What the text costs: segments × the provider's per-segment price (integer minor units)."""
    if segment_price_minor < 0:
        raise ValueError("a per-segment price cannot be negative")
    return sms_segments(text) * segment_price_minor


# Typography our templates and number formatting produce that GSM-7 lacks; each would switch the whole
# message to UCS-2 (70 characters a part instead of 160) for no visible gain on a phone.
_GSM_FRIENDLY = str.maketrans(
    {
        "\u00a0": " ",  # no-break space (Babel puts one before "€")
        "\u202f": " ",  # narrow no-break space (French number grouping)
        "\u2009": " ",
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
    }
)


def sms_normalize(text: str) -> str:
    """One line of GSM-friendly text: typographic spaces, quotes and dashes made plain."""
    return " ".join(text.translate(_GSM_FRIENDLY).split())


# Opt-out keywords. French operators' convention (charte SMS+ / AF2M) is "STOP" to the sender, often
# written "STOP SMS" or "STOP au 36xxx"; French speakers also answer "ARRET"/"ARRÊT". The English set is
# the one Twilio's default opt-out handling recognises (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT).
STOP_KEYWORDS = frozenset(
    {"STOP", "STOPSMS", "STOPALL", "ARRET", "ARRETER", "ARRETEZ", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def is_stop_request(body: str) -> bool:
    """True when an inbound SMS asks to stop: its first word is an opt-out keyword.

    Case, accents and punctuation are ignored ("stop", "Stop.", "STOP SMS", "Arrêt", "arret svp");
    when in doubt we stop: an unwanted solicitation costs more than a missed reminder.
    """
    words = "".join(ch if ch.isalnum() else " " for ch in _fold(body)).split()
    if not words:
        return False
    return words[0] in STOP_KEYWORDS or "".join(words[:2]) in STOP_KEYWORDS
