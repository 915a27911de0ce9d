"""Debtor matching (pure): is this incoming debtor someone we already know?

Rules, strongest first (issue 3 item 5):
1. the normalised e-mail, 2. the SIREN — strong identifiers: a match is taken as is;
3. phone + last name, 4. last name + first name + postcode — weak: taken only when they point to
exactly one known debtor and no strong identifier contradicts it (both have an e-mail, or a SIREN,
and they differ). Otherwise the match is ambiguous: a new debtor is created and the candidates go to
a review list for a person to decide — never merged automatically.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from relance.claims.keys import email_key, fold, name_key


@dataclass(frozen=True, slots=True)
class Person:
    """What matching looks at, for a known debtor (``id``) or an incoming one (``id`` 0)."""

    id: int
    email: str = ""
    siren: str = ""
    phone: str = ""
    last_name: str = ""
    first_name: str = ""
    postcode: str = ""

    def keys(self) -> dict[str, str]:
        last = fold(self.last_name)
        return {
            "email": email_key(self.email),
            "siren": self.siren.strip(),
            "phone_name": f"{self.phone}|{last}" if self.phone and last else "",
            "name_postcode": name_key(last_name=self.last_name, first_name=self.first_name, postcode=self.postcode),
        }


@dataclass(frozen=True, slots=True)
class Match:
    debtor_id: int | None  # None: create a new debtor
    rule: str  # email | siren | phone+name | name+postcode | new | ambiguous
    candidates: tuple[int, ...] = ()  # for "ambiguous": the known debtors a person should review


_STRONG = ("email", "siren")
_WEAK = (("phone_name", "phone+name"), ("name_postcode", "name+postcode"))


@dataclass
class DebtorIndex:
    """Known debtors by each matching key; new debtors are added as they are created."""

    by_key: dict[str, dict[str, set[int]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    people: dict[int, Person] = field(default_factory=dict)

    def add(self, person: Person) -> None:
        self.people[person.id] = person
        for name, value in person.keys().items():
            if value:
                self.by_key[name][value].add(person.id)

    def match(self, incoming: Person) -> Match:
        keys = incoming.keys()
        for name in _STRONG:
            found = self.by_key[name].get(keys[name]) if keys[name] else None
            if found:
                return Match(min(found), name)
        candidates: dict[int, str] = {}
        for name, rule in _WEAK:
            for known in self.by_key[name].get(keys[name], ()) if keys[name] else ():
                candidates.setdefault(known, rule)
        if not candidates:
            return Match(None, "new")
        if len(candidates) == 1:
            ((known, rule),) = candidates.items()
            if not _contradicts(self.people[known], incoming):
                return Match(known, rule)
        return Match(None, "ambiguous", tuple(sorted(candidates)))


def _contradicts(known: Person, incoming: Person) -> bool:
    """Both carry a strong identifier of the same kind, and they differ."""
    a, b = known.keys(), incoming.keys()
    return any(a[name] and b[name] and a[name] != b[name] for name in _STRONG)
