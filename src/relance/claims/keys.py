"""Normalised keys a debtor is matched on (pure): e-mail, and last name + first name + postcode."""

from __future__ import annotations

import functools
import unicodedata


@functools.lru_cache(maxsize=1 << 16)  # names repeat across a file's rows: fold each once
def fold(text: str) -> str:
    """Case-, accent- and space-insensitive form of a name."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(plain.casefold().replace("-", " ").split())


def email_key(email: str) -> str:
    return email.strip().lower()


def name_key(*, last_name: str, first_name: str, postcode: str) -> str:
    last = fold(last_name)
    compact = "".join(postcode.split()).upper()
    return f"{last}|{fold(first_name)}|{compact}" if last and compact else ""
