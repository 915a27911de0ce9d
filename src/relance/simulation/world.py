"""The demo world: a seeded, reproducible agency with three creditors, ~2,000 debtors, ~3,000 claims.

Everything goes through the real services (intake, ledger, audit), so the demo is what a real
placement would produce. Same seed, same world (names, amounts, dates relative to ``today``).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
from django.db import transaction
from faker import Faker
from schwifty import IBAN

from relance.cases.models import Case
from relance.claims.models import Claim
from relance.intake.services import claim_place
from relance.intake.validate import ClaimData, DebtorData
from relance.strategies.services import strategy_save
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor, User
from relance.tenancy.services import api_key_create

PARIS = ZoneInfo("Europe/Paris")
DEMO_PASSWORD = "relance-demo"  # noqa: S105 - embedded demo only; `relance demo` refuses to run in production


@dataclass(frozen=True)
class CreditorSpec:
    slug: str
    legal_name: str
    trade_name: str
    segment: str
    mode: str
    siren: str
    address: str
    prefix: str
    share: float  # of the claims


# Volt Électro's cases follow a strategy that uses every channel, so the demo (and `relance simulate`)
# shows e-mail, SMS, letter and call tasks side by side under one contact policy.
MULTICHANNEL = """\
key: demo-multichannel
version: 1
name: "Demo — e-mail, SMS, letter, call, final e-mail"
steps:
  - id: first_notice
    after_days: 0
    action: email
    template: first_notice
  - id: sms_reminder
    after_days: 4
    action: sms
    template: reminder
  - id: letter_reminder
    after_days: 8
    action: letter
    template: reminder
  - id: call
    after_days: 12
    action: call
    template: call_script
  - id: final_notice
    after_days: 16
    action: email
    template: final_notice
  - id: return
    after_days: 30
    action: return_to_creditor
"""
MULTICHANNEL_CREDITOR = "volt-electro"

CREDITORS = (
    CreditorSpec(
        "maison-lumiere",
        "Maison Lumière SAS",
        "Maison Lumière",
        "b2c",
        "B",
        "732829320",
        "12 rue du Faubourg Saint-Antoine, 75011 Paris",
        "ML",
        0.5,
    ),
    CreditorSpec(
        "volt-electro",
        "Volt Électro SARL",
        "Volt Électro",
        "b2c",
        "B",
        "552120222",
        "45 avenue Jean Jaurès, 69007 Lyon",
        "VE",
        0.35,
    ),
    CreditorSpec(
        "bureau-plus",
        "Bureau Plus Distribution SA",
        "Bureau Plus",
        "b2b",
        "A",
        "443061841",
        "8 boulevard de l'Industrie, 31200 Toulouse",
        "BP",
        0.15,
    ),
)


def realistic_amount(rng: random.Random, segment: str) -> Decimal:
    """Most claims 15–300 EUR, a long tail to 2,000 (log-normal, clipped), B2B a bit larger."""
    mu, sigma = (4.3, 0.75) if segment == "b2c" else (5.0, 0.8)
    value = min(max(rng.lognormvariate(mu, sigma), 12.0), 2000.0)
    cents = round(value * 100)
    if rng.random() < 0.6:  # shop prices end in .90/.99/.00
        cents = cents // 100 * 100 + rng.choice((0, 90, 99))
    return Decimal(max(cents, 1200)) / 100


@dataclass
class DemoWorld:
    agency: Agency
    creditors: list[Creditor]
    agent: User
    creditor_user: User
    api_key: str
    claims: int


def build_demo_world(*, seed: int, debtors: int = 2000, claims: int = 3000, today: date | None = None) -> DemoWorld:
    """Create the demo world in one transaction (nothing half-written if interrupted)."""
    today = today or datetime.now(PARIS).date()
    rng = random.Random(seed)
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    system = Actor.system("demo")
    with transaction.atomic():
        agency = Agency.objects.create(
            legal_name="Recouvrement Courtois SAS",
            siren="404833048",
            vat_number="FR83404833048",
            address="3 place de la Bourse, 33000 Bordeaux",
            email="contact@recouvrement-courtois.example",
            phone="+33556000000",
            trust_iban="FR7630006000011234567890189",
        )
        creditors = [
            Creditor.objects.create(
                agency=agency,
                slug=spec.slug,
                legal_name=spec.legal_name,
                trade_name=spec.trade_name,
                siren=spec.siren,
                address=spec.address,
                segment=spec.segment,
                mode=spec.mode,
                support_email=f"compta@{spec.slug}.example",
                # Where remittances are paid (pain.001); never shown to debtors (FR-COL-02).
                remittance_iban=str(IBAN.generate("FR", bank_code="30004", account_code=f"{n:011d}")),
            )
            for n, spec in enumerate(CREDITORS, start=1)
        ]
        agent = User.objects.create_user(
            username="agent",
            password=DEMO_PASSWORD,
            first_name="Camille",
            last_name="Agent",
            email="agent@recouvrement-courtois.example",
            role=User.Role.AGENT,
            agency=agency,
        )
        creditor_user = User.objects.create_user(
            username="maison",
            password=DEMO_PASSWORD,
            first_name="Léa",
            last_name="Martin",
            email="lea@maison-lumiere.example",
            role=User.Role.CREDITOR_ADMIN,
            agency=agency,
            creditor=creditors[0],
        )
        User.objects.create_user(
            username="admin",
            password=DEMO_PASSWORD,
            role=User.Role.AGENCY_ADMIN,
            agency=agency,
            is_staff=True,
        )
        _, secret = api_key_create(creditor=creditors[0], name="demo", scopes=["read", "intake", "write"], actor=system)

        people = [_person(fake, rng, i) for i in range(debtors)]
        weights = [spec.share for spec in CREDITORS]
        for n in range(claims):
            index = rng.choices(range(len(CREDITORS)), weights=weights)[0]
            spec, creditor = CREDITORS[index], creditors[index]
            debtor = people[rng.randrange(debtors)]
            if spec.segment == "b2b":
                debtor = _company(fake, rng, debtor)
            invoice_date = today - timedelta(days=rng.randint(20, 120) + (30 if spec.segment == "b2b" else 0))
            due_date = invoice_date + timedelta(days=30 if spec.segment == "b2b" else rng.choice((0, 7, 14)))
            # Placements over the last 30 days; `relance demo` then plays that past (play_history).
            placed_day = min(max(today - timedelta(days=rng.randint(0, 29)), due_date + timedelta(days=1)), today)
            placed_at = datetime.combine(placed_day, time(rng.randint(8, 18), rng.randint(0, 59)), tzinfo=PARIS)
            claim_place(
                creditor=creditor,
                data=ClaimData(
                    external_ref=f"{spec.prefix}-{100000 + n}",
                    invoice_number=f"F{invoice_date:%Y}-{spec.prefix}{50000 + n}",
                    invoice_date=invoice_date,
                    due_date=due_date,
                    amount=str(realistic_amount(rng, spec.segment)),
                    currency="EUR",
                    description=_order(rng, spec.slug),
                    debtor=debtor,
                ),
                actor=system,
                placed_at=placed_at,
            )
        multichannel = strategy_save(source=MULTICHANNEL, actor=system)
        Case.objects.filter(creditor__slug=MULTICHANNEL_CREDITOR).update(
            strategy_key=multichannel.key, strategy_version=multichannel.version
        )
    return DemoWorld(agency, creditors, agent, creditor_user, secret, Claim.objects.count())


def _person(fake: Faker, rng: random.Random, i: int) -> DebtorData:
    first, last = fake.first_name(), fake.last_name()
    domain = rng.choice(("orange.fr", "gmail.com", "free.fr", "laposte.net", "sfr.fr"))
    email = f"{_ascii(first)}.{_ascii(last)}{i}@{domain}"
    return DebtorData(
        kind="person",
        first_name=first,
        last_name=last,
        email=email,
        phone=_phone(rng, "+336"),
        address_line1=fake.street_address(),
        postcode=fake.postcode(),
        city=fake.city(),
        country="FR",
        language="en" if rng.random() < 0.04 else "fr",
    )


def _company(fake: Faker, rng: random.Random, contact: DebtorData) -> DebtorData:
    name = fake.company()
    return DebtorData(
        kind="company",
        company_name=name,
        siren=fake.siren().replace(" ", ""),
        last_name=contact.last_name,
        first_name=contact.first_name,
        email=f"compta@{_ascii(name)[:20]}.fr",
        phone=_phone(rng, "+331"),
        address_line1=fake.street_address(),
        postcode=fake.postcode(),
        city=fake.city(),
    )


def _phone(rng: random.Random, prefix: str) -> str:
    """A number libphonenumber accepts as valid (not every French range is allocated)."""
    while True:
        candidate = f"{prefix}{rng.randint(10000000, 99999999)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            return candidate


def _order(rng: random.Random, slug: str) -> str:
    items = {
        "maison-lumiere": ("Robe en lin", "Veste en jean", "Baskets cuir", "Pull mérinos", "Sac cabas"),
        "volt-electro": ("Casque audio", "Enceinte connectée", "Tablette 10 pouces", "Aspirateur robot", "Montre GPS"),
        "bureau-plus": ("Ramettes A4 x50", "Cartouches toner", "Fauteuils de bureau", "Classeurs x200", "Agendas 2027"),
    }[slug]
    return f"Commande : {rng.choice(items)}"


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum()) or "x"
