"""French jurisdiction pack: texts and parameters the letters and the ledger must respect (pure)."""

from __future__ import annotations

# FR-COL-07 [V]: CPCE L111-8, 2nd and 3rd paragraphs, version in force since 19/03/2014
# (LEGIARTI000025025657). R124-4 5° requires reproducing them verbatim in Mode B letters.
L111_8_VERSION = "2014-03-19"
L111_8_PARAGRAPHS = (
    "Les frais de recouvrement entrepris sans titre exécutoire restent à la charge du créancier, "
    "sauf s'ils concernent un acte dont l'accomplissement est prescrit par la loi au créancier. "
    "Toute stipulation contraire est réputée non écrite, sauf disposition législative contraire.",
    "Cependant, le créancier qui justifie du caractère nécessaire des démarches entreprises pour "
    "recouvrer sa créance peut demander au juge de l'exécution de laisser tout ou partie des frais "
    "ainsi exposés à la charge du débiteur de mauvaise foi.",
)

# FR-COL-05 1°: the collector states that it carries on an amicable collection activity.
AMICABLE_COLLECTION_STATEMENT = "exerce une activité de recouvrement amiable de créances"

# FR-COL-15 / FR-COL-17 [S]: words that make a message look like a judicial act or a threat.
FORBIDDEN_WORDS = (
    "commandement de payer",
    "sommation",
    "signification",
    "exécutoire",
    "saisie",
    "huissier",
    "commissaire de justice",
    "tribunal",
    "république française",
    "dernier avis avant poursuites",
    "banque de france",
)


def forbidden_words_in(text: str) -> list[str]:
    """FR-COL-15/17: forbidden wording found in a rendered message (case-insensitive)."""
    lowered = text.lower()
    return [word for word in FORBIDDEN_WORDS if word in lowered]
