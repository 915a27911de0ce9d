"""Does the name on a bank transfer designate the case's debtor? Pure rules, no Django import.

Used only for the third step of the matching cascade (amount equal to a case's outstanding balance
and the payer's name matching), after the RF reference (DOMAIN-RULES PAY-06). Banks write names in
capitals, without accents, surname first or last, with titles ("M OU MME MARTIN JEANNE"), and cut
them at 70 or 140 characters; so names compare as sets of normalised words.
"""

from __future__ import annotations

import re
import unicodedata

# Words that say nothing about who pays: titles, conjunctions, company legal forms.
_NOISE = frozenset(
    {
        "M", "MR", "MME", "MLLE", "MONSIEUR", "MADAME", "MADEMOISELLE", "OU", "ET", "OR", "AND",
        "MRS", "MS", "DR", "SAS", "SASU", "SARL", "EURL", "SA", "SCI", "SNC", "EI", "EIRL", "LTD",
        "GMBH", "STE", "SOCIETE",
    }
)  # fmt: skip


def name_words(text: str) -> list[str]:
    """Uppercase ASCII words of ``text`` without accents or punctuation: ``Lefèvre-Dupont`` → LEFEVRE, DUPONT."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    return [w for w in re.split(r"[^0-9A-Z]+", ascii_text) if w]


def person_matches(*, first_name: str, last_name: str, payer: str) -> bool:
    """Every word of the last name is in the payer's name; each first-name word too, or its initial."""
    payer_words = set(name_words(payer)) - _NOISE
    last = name_words(last_name)
    if not last or not payer_words:
        return False
    if not all(w in payer_words for w in last):
        return False
    return all(w in payer_words or w[0] in payer_words for w in name_words(first_name))


def company_matches(*, company_name: str, payer: str) -> bool:
    """Every meaningful word of the company's name is in the payer's name (legal forms ignored)."""
    payer_words = set(name_words(payer)) - _NOISE
    wanted = [w for w in name_words(company_name) if w not in _NOISE]
    return bool(wanted) and all(w in payer_words for w in wanted)
