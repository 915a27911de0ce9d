"""E-mail and phone normalisation for intake, with the same results as the libraries, cheaper (pure).

Validation spends most of its time in ``email_validator`` and ``phonenumbers``; a claims file
repeats the same domains (and often the same debtors) on many rows, so:

* an e-mail whose local part is a plain ASCII dot-atom and whose domain is plain ASCII is checked
  as local part (one precompiled regex) + domain (``email_validator`` once per distinct domain, the
  result cached); anything else goes through ``email_validator`` whole. Equal results either way
  (``tests/intake/test_normalise.py`` checks it with Hypothesis);
* a phone number is parsed by ``phonenumbers`` once per distinct (text, region), cached.

Both return ``(normalised, "")`` or ``("", error text)``; caches are bounded (LRU).
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# RFC 5322 dot-atom of ASCII "atext" characters, as email_validator accepts it unchanged.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_CACHE = 1 << 16


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


@functools.lru_cache(maxsize=_CACHE)
def email_normalise(text: str) -> tuple[str, str]:
    """(normalised address, "") or ("", why it is invalid), as ``email_validator`` says."""
    local, at, domain = text.rpartition("@")
    if at and len(local) <= 64 and len(text) <= 200 and _LOCAL.fullmatch(local) and _DOMAIN.fullmatch(domain):
        normal_domain = _domain(domain)
        if normal_domain is not None:
            return f"{local}@{normal_domain}", ""
    return email_full(text)


@functools.lru_cache(maxsize=_CACHE)
def phone_normalise(text: str, region: str) -> str | None:
    """The E.164 form of a valid number, else None."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
