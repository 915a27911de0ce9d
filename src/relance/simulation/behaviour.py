"""Debtor behaviour model and the day-by-day simulator.

Each case gets a persona drawn from a seeded hash (same seed, same personas); contacts the real
engine sends trigger the persona's reactions some days later, which go through the real services
(payments, promises, disputes). The figures are reproducible for a given database and seed.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Max, Min, Sum

from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.cases.services import case_dispute, case_promise
from relance.cases.status import Status
from relance.comms.models import Action
from relance.comms.services import outbox_dispatch
from relance.core.money import Money
from relance.payments.models import Payment
from relance.payments.services import payment_record
from relance.strategies.engine import engine_tick
from relance.strategies.services import strategy_enable
from relance.tenancy.actors import Actor

PARIS = ZoneInfo("Europe/Paris")

# persona -> (share, contact number that triggers the reaction)
PERSONAS: dict[str, float] = {
    "prompt": 0.22,  # pays in full a few days after the first notice
    "reminded": 0.18,  # pays after the reminder
    "last_call": 0.08,  # pays after the final notice
    "promiser": 0.10,  # promises a date; keeps it two times out of three
    "partial": 0.06,  # pays half after the first notice, the rest after the reminder
    "disputer": 0.05,  # disputes after the first notice
    "silent": 0.31,  # never answers
}


def persona_for(seed: int, case_id: int) -> tuple[str, random.Random]:
    digest = hashlib.sha256(f"{seed}:{case_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    pick, acc = rng.random(), 0.0
    for name, share in PERSONAS.items():
        acc += share
        if pick < acc:
            return name, rng
    return "silent", rng


@dataclass
class Event:
    kind: str  # pay | pay_half | promise | dispute
    case_id: int
    promise_days: int = 0
    keep: bool = True


@dataclass
class SimulationReport:
    days: int
    seed: int
    start: date
    cases: int
    outstanding_at_start: int
    recovered: int = 0
    currency: str = "EUR"
    contacts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    promises: int = 0
    promises_kept: int = 0
    disputes: int = 0
    # "strategy/variant" -> [cases, outstanding at start, recovered, contacts], for A/B/n comparisons.
    variants: dict[str, list[int]] = field(default_factory=dict)

    @property
    def recovery_rate(self) -> float:
        return self.recovered / self.outstanding_at_start if self.outstanding_at_start else 0.0

    def lines(self) -> list[str]:
        contacts = ", ".join(f"{k} {v}" for k, v in sorted(self.contacts.items())) or "none"
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        return [
            f"simulated {self.days} days from {self.start} with seed {self.seed} over {self.cases} open cases",
            f"outstanding at start: {Money(self.outstanding_at_start, self.currency).format('en_GB')}",
            f"recovered: {Money(self.recovered, self.currency).format('en_GB')}",
            f"recovery rate: {self.recovery_rate:.2%}",
            f"contacts sent per channel: {contacts}",
            f"promises: {self.promises} made, {self.promises_kept} kept; disputes: {self.disputes}",
            f"case statuses at end: {statuses}",
            *self.variant_lines(),
        ]

    def variant_lines(self) -> list[str]:
        """One line per strategy variant: cases, recovery rate, contacts per case (issue 4, A/B/n)."""
        out = []
        for name, (cases, start, recovered, contacts) in sorted(self.variants.items()):
            rate = recovered / start if start else 0.0
            out.append(
                f"variant {name}: {cases} cases, recovered {Money(recovered, self.currency).format('en_GB')}"
                f" of {Money(start, self.currency).format('en_GB')} ({rate:.2%}),"
                f" {contacts / cases if cases else 0:.2f} contacts per case"
            )
        return out


def simulate(
    *, days: int, seed: int, commit: bool = False, start: date | None = None, enable: tuple[str, ...] = ()
) -> SimulationReport:
    """Play ``days`` days on the current database; rolled back unless ``commit``.

    ``start`` defaults to the day after the latest placement, so a run is reproducible on a given
    database whatever the wall clock says.
    """
    with transaction.atomic():
        for key in enable:  # route new cases to these strategies for this run (A/B/n comparisons)
            strategy_enable(key=key, enabled=True, actor=Actor.system("simulator"))
        report = _play(days=days, seed=seed, start=start)
        if not commit:
            transaction.set_rollback(True)
    return report


def play_history(*, seed: int, today: date) -> SimulationReport | None:
    """Give the demo world a past: play from the first placement up to yesterday, and keep it."""
    first_placed = Case.objects.aggregate(m=Min("placed_at"))["m"]
    if first_placed is None:
        return None
    start = first_placed.astimezone(PARIS).date()
    return simulate(days=(today - start).days, seed=seed, commit=True, start=start)


def _play(*, days: int, seed: int, start: date | None) -> SimulationReport:
    if start is None:
        last_placed = Case.objects.aggregate(m=Max("placed_at"))["m"]
        start = (last_placed.astimezone(PARIS).date() if last_placed else date(2026, 1, 5)) + timedelta(days=1)
    open_cases = list(
        Case.objects.filter(status__in=[Status.NEW.value, Status.ACTIVE.value]).values_list("pk", flat=True)
    )
    start_outstanding = {c.pk: case_outstanding_minor(case=c) for c in Case.objects.filter(pk__in=open_cases)}
    outstanding = sum(start_outstanding.values())
    report = SimulationReport(
        days=days, seed=seed, start=start, cases=len(open_cases), outstanding_at_start=outstanding
    )
    actor = Actor.system("simulator")
    agenda: dict[date, list[Event]] = defaultdict(list)
    contacts_seen: Counter[int] = Counter()
    mail = get_connection("django.core.mail.backends.dummy.EmailBackend")
    first_payment_id = Payment.objects.aggregate(m=Max("pk"))["m"] or 0
    for offset in range(days):
        day = start + timedelta(days=offset)
        for hour in (9, 15):
            now = datetime.combine(day, time(hour, 30), tzinfo=PARIS)
            engine_tick(now=now, actor=actor)
            sent = outbox_dispatch(now=now, limit=100_000, email_connection=mail, actor=actor)
            report.contacts.update(sent.sent)
            for action in Action.objects.filter(status=Action.Status.SENT, sent_at=now).values("case_id"):
                contacts_seen[action["case_id"]] += 1
                _react(seed, action["case_id"], contacts_seen[action["case_id"]], day, agenda)
        now = datetime.combine(day, time(19, 0), tzinfo=PARIS)
        for event in agenda.pop(day, []):
            _apply(event, seed=seed, now=now, actor=actor, report=report, agenda=agenda)
    report.recovered = (
        Payment.objects.filter(pk__gt=first_payment_id, case_id__in=open_cases).aggregate(s=Sum("amount_minor"))["s"]
        or 0
    )
    report.statuses.update(Case.objects.filter(pk__in=open_cases).values_list("status", flat=True))
    _per_variant(report, open_cases, start_outstanding, first_payment_id)
    return report


def _per_variant(report: SimulationReport, case_ids: list[int], start: dict[int, int], first_payment_id: int) -> None:
    """Group the results by the strategy variant each case was given (recorded on the case)."""
    paid = dict(
        Payment.objects.filter(pk__gt=first_payment_id, case_id__in=case_ids)
        .values_list("case_id")
        .annotate(s=Sum("amount_minor"))
        .values_list("case_id", "s")
    )
    sent = Counter(
        Action.objects.filter(
            case_id__in=case_ids, sent_at__isnull=False, sent_at__gte=_start_instant(report)
        ).values_list("case_id", flat=True)
    )
    for case_id, key, variant in Case.objects.filter(pk__in=case_ids).values_list("pk", "strategy_key", "variant"):
        row = report.variants.setdefault(f"{key}/{variant or '-'}", [0, 0, 0, 0])
        row[0] += 1
        row[1] += start.get(case_id, 0)
        row[2] += paid.get(case_id, 0) or 0
        row[3] += sent[case_id]


def _start_instant(report: SimulationReport) -> datetime:
    return datetime.combine(report.start, time(0), tzinfo=PARIS)


def _react(seed: int, case_id: int, contact_number: int, day: date, agenda: dict[date, list[Event]]) -> None:
    persona, rng = persona_for(seed, case_id)
    later = day + timedelta(days=rng.randint(1, 4))
    if (
        (persona == "prompt" and contact_number == 1)
        or (persona == "reminded" and contact_number == 2)
        or (persona == "last_call" and contact_number == 3)
    ):
        agenda[later].append(Event("pay", case_id))
    elif persona == "partial" and contact_number in (1, 2):
        agenda[later].append(Event("pay_half" if contact_number == 1 else "pay", case_id))
    elif persona == "promiser" and contact_number == 1:
        agenda[later].append(Event("promise", case_id, promise_days=rng.randint(7, 14), keep=rng.random() < 2 / 3))
    elif persona == "disputer" and contact_number == 1:
        agenda[later].append(Event("dispute", case_id))


def _apply(
    event: Event, *, seed: int, now: datetime, actor: Actor, report: SimulationReport, agenda: dict[date, list[Event]]
) -> None:
    case = Case.objects.select_related("creditor").get(pk=event.case_id)
    if Status(case.status) not in (Status.NEW, Status.ACTIVE, Status.PROMISED):
        return
    due = case_outstanding_minor(case=case)
    if due <= 0:
        return
    if event.kind in ("pay", "pay_half", "keep"):
        amount = due if event.kind != "pay_half" else max(due // 2, 1)
        payment_record(
            case=case,
            amount=Money(amount, case.currency),
            method=Payment.Method.SIMULATED,
            external_ref=f"sim-{seed}-{case.pk}-{now:%Y%m%d}-{event.kind}",
            actor=actor,
            received_at=now,
        )
        if event.kind == "keep":
            report.promises_kept += 1
    elif event.kind == "promise":
        on = now.date() + timedelta(days=event.promise_days)
        case_promise(case=case, on=on, amount_minor=due, actor=actor, now=now)
        report.promises += 1
        if event.keep:
            agenda[on].append(Event("keep", case.pk))
    elif event.kind == "dispute":
        case_dispute(case=case, reason="not_received", statement="Colis jamais reçu.", actor=actor)
        report.disputes += 1
