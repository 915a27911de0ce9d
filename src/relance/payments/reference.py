"""ISO 11649 creditor references (RF) for cases: building them, printing them, finding them in text.

Pure module: no Django import. DOMAIN-RULES §6.1: ``RF`` + 2 check digits (ISO 7064 MOD 97-10) + 1–21
alphanumerics, 5–25 characters in all, printed in groups of 4 (PAY-01, PAY-02); one RF per case,
derived from the case, used first when reconciling transfers (PAY-03, PAY-06). The check digits are
computed and verified by ``stdnum.iso11649`` / ``stdnum.iso7064.mod_97_10`` (python-stdnum).

Invariants: ``case_rf_reference`` is deterministic, at most 25 characters of ``[0-9A-Z]``, and always
validates; ``rf_find`` returns only references whose check digits hold, so a mistyped reference
almost never designates another case (MOD 97-10 catches every single-digit substitution).
"""

from __future__ import annotations

import re
from functools import lru_cache

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

RF_BODY_MAX = 21  # PAY-01: 1–21 alphanumerics after "RF" and the check digits
RF_MAX = 25

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
# Characters a payer or a bank puts between the groups of a reference ("RF18 5390-0754.7034", a line
# break where a 140-character Ustrd line was cut). Any other character ends the reference.
_SEPARATORS = frozenset(" \t\r\n-./")
_START = re.compile(r"RF", re.IGNORECASE)


def rf_body(case_reference: str) -> str:
    """The reference part of a case's RF: the case reference's ASCII letters and digits, uppercased.

    ``RL-7KQ2M9XA`` gives ``RL7KQ2M9XA``. Raises ``ValueError`` when nothing usable is left or when
    more than 21 characters are (case references are ``RL-`` + 8 characters, so neither happens).
    """
    body = _NOT_ALNUM.sub("", case_reference.upper())
    if not 1 <= len(body) <= RF_BODY_MAX:
        raise ValueError(f"case reference {case_reference!r} gives no RF body of 1 to {RF_BODY_MAX} characters")
    return body


def rf_from_body(body: str) -> str:
    """``RF`` + MOD 97-10 check digits + ``body`` (PAY-02), validated by python-stdnum."""
    body = body.upper()
    if not 1 <= len(body) <= RF_BODY_MAX or _NOT_ALNUM.search(body):
        raise ValueError(f"{body!r} is not 1 to {RF_BODY_MAX} letters or digits")
    check = mod_97_10.calc_check_digits(body + "RF")
    return str(iso11649.validate("RF" + check + body))


@lru_cache(maxsize=8192)
def case_rf_reference(case_reference: str) -> str:
    """The compact RF creditor reference of a case, e.g. ``RL-7KQ2M9XA`` → ``RF07RL7KQ2M9XA``.

    A pure function of the case reference, remembered per process (each case page and letter prints it)."""
    return rf_from_body(rf_body(case_reference))


@lru_cache(maxsize=8192)
def rf_format(reference: str) -> str:
    """Groups of 4 for people to read and type: ``RF18 5390 0754 7034`` (PAY-01). Remembered per
    process, as ``case_rf_reference``: the case page prints it at every view."""
    return str(iso11649.format(reference))


def rf_is_valid(reference: str) -> bool:
    return bool(iso11649.is_valid(reference))


def _printed_layout(breaks: frozenset[int], length: int) -> bool:
    """True when the separators sit where the printed form puts them: none, or every 4 characters.

    A separator between ``RF`` and the check digits (index 2) is tolerated. ``breaks`` holds the
    indexes (in the compact reference) of the characters that follow a separator.
    """
    inner = breaks - {2}
    return not inner or inner == set(range(4, length, 4))


def rf_candidates(text: str) -> list[str]:
    """Every valid RF reference that ``text`` may hold, most likely first.

    Free remittance text (camt ``RmtInf/Ustrd``, EPC max 140 characters per line) carries the
    reference as typed: with spaces or dashes between groups, in lowercase, cut by a line break,
    glued to the next word. For each ``RF`` followed by two digits, every length of 1–21 further
    letters or digits is tried and kept if its MOD 97 check holds. Order: by position in the text;
    then references laid out as printed (whole groups of 4, or one compact token), then those that
    end where a word ends, then the rest; longest first within each kind. The caller may check each
    against the references it issued; ``rf_find`` takes the first.
    """
    found: list[str] = []
    for start in _START.finditer(text):
        chars: list[str] = []
        breaks: set[int] = set()
        ends_at_boundary: list[bool] = []
        pending_break = False
        for ch in text[start.start() :]:
            if ch in _SEPARATORS:
                pending_break = bool(chars)
                if ends_at_boundary:
                    ends_at_boundary[-1] = True
                continue
            up = ch.upper()
            if not ("0" <= up <= "9" or "A" <= up <= "Z"):
                if ends_at_boundary:
                    ends_at_boundary[-1] = True
                break
            if len(chars) == RF_MAX:
                break  # a longer run of letters and digits: the reference ends inside a word
            if pending_break:
                breaks.add(len(chars))
                pending_break = False
            chars.append(up)
            ends_at_boundary.append(False)
        else:
            if ends_at_boundary:
                ends_at_boundary[-1] = True
        if len(chars) < 5 or not (chars[2].isdigit() and chars[3].isdigit()):
            continue
        ranked: list[tuple[int, int, str]] = []
        for length in range(5, len(chars) + 1):
            candidate = "".join(chars[:length])
            if not iso11649.is_valid(candidate):
                continue
            inside = frozenset(b for b in breaks if b < length)
            boundary = ends_at_boundary[length - 1]
            tier = 0 if boundary and _printed_layout(inside, length) else 1 if boundary else 2
            ranked.append((tier, -length, candidate))
        found.extend(c for _, _, c in sorted(ranked) if c not in found)
    return found


def rf_find(text: str) -> str | None:
    """The RF reference written in free text, compact and validated, or ``None``."""
    candidates = rf_candidates(text)
    return candidates[0] if candidates else None
