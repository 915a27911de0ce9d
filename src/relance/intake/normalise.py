"""E-mail normalisation for intake, with exactly ``email_validator``'s results, cheaper (pure).

Validation spent much of its time in ``email_validator``, and a claims file repeats the same few
domains on every row: an address whose local part is a plain ASCII dot-atom and whose domain is plain
ASCII is checked as local part (one precompiled regex) + domain (``email_validator`` once per distinct
domain, cached); anything else goes through ``email_validator`` whole. Equal results either way
(``tests/intake/test_normalise.py`` checks it with Hypothesis). ``validate.py`` caches per address.
"""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email

# RFC 5322 dot-atom of ASCII "atext" characters, as email_validator accepts it unchanged.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


def email_full(text: str) -> tuple[str, str]:
    """``email_validator`` itself (no deliverability check): the reference."""
    try:
        return validate_email(text, check_deliverability=False).normalized, ""
    except EmailNotValidError as exc:
        return "", str(exc)


@functools.lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """The normalised domain when ``x@domain`` is valid, else None (then the full check explains why)."""
    normalised, error = email_full(f"x@{domain}")
    if error or not normalised.isascii():
        return None
    return normalised[2:]


def email_normalise(text: str) -> tuple[str, str]:
    """(normalised address, "") or ("", why it is invalid), as ``email_validator`` says."""
    local, at, domain = text.rpartition("@")
    if at and len(local) <= 64 and len(text) <= 200 and _LOCAL.fullmatch(local) and _DOMAIN.fullmatch(domain):
        normal_domain = _domain(domain)
        if normal_domain is not None:
            return f"{local}@{normal_domain}", ""
    return email_full(text)
