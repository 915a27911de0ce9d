"""Generate a realistic French-format claims CSV (Excel export style): `;`, decimal comma, dd/mm/yyyy.

Streaming and fast (no Faker per row): names, streets and cities come from small pools drawn with a
seeded RNG, so 1,000,000 rows take seconds and the same seed gives the same file.
"""

from __future__ import annotations

import argparse
import random
from datetime import date, timedelta
from pathlib import Path

from faker.providers.person.fr_FR import Provider as PersonFR

# Faker's French name lists (219 first names, 400 last names) and postcodes over every department:
# realistic diversity, so namesakes in one postcode are as rare as in real portfolios.
FIRST = [n for n in PersonFR.first_names if n.encode("cp1252", "ignore").decode("cp1252") == n]
LAST = [n for n in PersonFR.last_names if n.encode("cp1252", "ignore").decode("cp1252") == n]
STREETS = [
    "rue de la Paix",
    "avenue Jean Jaurès",
    "boulevard Victor Hugo",
    "rue du Moulin",
    "place de l'Église",
    "rue des Lilas",
    "chemin des Vignes",
    "allée des Tilleuls",
]
CITIES = [
    ("75011", "Paris"),
    ("69007", "Lyon"),
    ("13006", "Marseille"),
    ("33000", "Bordeaux"),
    ("31000", "Toulouse"),
    ("44000", "Nantes"),
    ("59000", "Lille"),
    ("67000", "Strasbourg"),
    ("35000", "Rennes"),
    ("06000", "Nice"),
]
HEADER = (
    "external_ref;invoice_number;invoice_date;due_date;amount;currency;debtor.first_name;debtor.last_name;"
    "debtor.email;debtor.phone;debtor.address_line1;debtor.postcode;debtor.city\n"
)


def amount_text(rng: random.Random) -> str:
    value = min(max(rng.lognormvariate(4.3, 0.8), 12.0), 2000.0)
    cents = round(value * 100)
    euros, cents = divmod(cents, 100)
    whole = f"{euros:,}".replace(",", " ")  # French thousands separator
    return f"{whole},{cents:02d}"


def generate(path: Path, rows: int, seed: int = 1, debtors: int | None = None) -> None:
    rng = random.Random(seed)
    debtors = debtors or max(1, rows * 2 // 3)
    today = date(2026, 11, 20)
    with path.open("w", encoding="cp1252", newline="") as out:
        out.write(HEADER)
        for n in range(rows):
            d = rng.randrange(debtors)
            drng = random.Random(d * 7919 + seed)
            first, last = drng.choice(FIRST), drng.choice(LAST)
            _, city = drng.choice(CITIES)
            postcode = f"{drng.randint(1, 95):02d}{drng.randint(0, 99):02d}0"
            invoice = today - timedelta(days=rng.randint(20, 120))
            due = invoice + timedelta(days=14)
            out.write(
                f"CL-{n:08d};F{n:08d};{invoice:%d/%m/%Y};{due:%d/%m/%Y};{amount_text(rng)};EUR;{first};{last};"
                f"client{d}@exemple.fr;06 {drng.randint(10, 38)} {drng.randint(10, 99)} "
                f"{drng.randint(10, 99)} {drng.randint(10, 99)};"
                f"{drng.randint(1, 120)} {drng.choice(STREETS)};{postcode};{city}\n"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.path, args.rows, args.seed)
