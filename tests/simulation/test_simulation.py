"""The demo world and the simulator on a small world: reproducible, effective, and side-effect free.

The simulator drives the real engine, outbox and payment services day by day; it must give the same
figures for the same database and seed, and leave the database as it found it unless asked to commit.
"""

from __future__ import annotations

import dataclasses
import re
from io import StringIO

import pytest
from django.core.management import call_command

from relance.audit.models import AuditEvent
from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.claims.models import Claim, Debtor
from relance.comms.models import Action
from relance.ledger.models import LedgerTransaction, Posting
from relance.payments.models import Payment
from relance.simulation.behaviour import simulate
from relance.simulation.world import build_demo_world
from relance.tenancy.models import Creditor

pytestmark = pytest.mark.django_db


def _state() -> dict[str, object]:
    return {
        "counts": [
            m.objects.count() for m in (Debtor, Claim, Case, Action, Payment, LedgerTransaction, Posting, AuditEvent)
        ],
        "cases": list(Case.objects.order_by("pk").values_list("pk", "status", "step", "next_action_at")),
    }


def test_simulation_is_reproducible_effective_and_rolled_back():
    world = build_demo_world(seed=1, debtors=60, claims=80)
    assert world.claims == 80
    assert Creditor.objects.count() == 3
    before = _state()

    first = simulate(days=20, seed=3)
    assert _state() == before  # rolled back
    second = simulate(days=20, seed=3)
    assert _state() == before

    assert dataclasses.asdict(first) == dataclasses.asdict(second)
    assert first.lines() == second.lines()
    assert first.cases > 0
    assert first.outstanding_at_start > 0
    assert 0 < first.recovered <= first.outstanding_at_start
    assert 0 < first.recovery_rate <= 1
    assert first.contacts["email"] > 0
    assert sum(first.statuses.values()) == first.cases
    assert first.statuses["paid"] > 0
    assert audit_verify()[1] is None


def test_another_seed_gives_other_figures():
    build_demo_world(seed=1, debtors=60, claims=80)
    a, b = simulate(days=20, seed=3), simulate(days=20, seed=4)
    assert (a.recovered, a.statuses) != (b.recovered, b.statuses)


def test_demo_and_simulate_commands_report_a_recovery_rate():
    out = StringIO()
    call_command("demo", "--seed", "2", "--debtors", "30", "--claims", "40", stdout=out)
    demo = out.getvalue()
    assert "loaded 40 claims for 3 creditors" in demo
    assert "recovery rate" in demo
    assert re.search(r"API key for \S+ \(shown once\): rl_", demo)

    before = _state()
    out = StringIO()
    call_command("simulate", "--days", "5", "--seed", "3", stdout=out)
    text = out.getvalue()
    assert re.search(r"recovery rate: \d+\.\d+%", text)
    assert "rolled back" in text
    assert _state() == before


def test_simulator_prints_results_per_variant():
    """Issue 4 done-means: A/B assignment is stable and recorded; the simulator prints results per variant."""
    build_demo_world(seed=1, debtors=60, claims=80)
    before = _state()
    first = simulate(days=20, seed=3, enable=("b2c_small",))
    second = simulate(days=20, seed=3, enable=("b2c_small",))
    assert _state() == before  # rolled back, routing included
    assert first.variants == second.variants  # stable
    assert {"b2c_small/A", "b2c_small/B"} <= set(first.variants)
    assert sum(row[0] for row in first.variants.values()) == first.cases
    lines = [line for line in first.lines() if line.startswith("variant b2c_small/")]
    assert len(lines) == 2
    assert re.match(r"variant b2c_small/A: \d+ cases, recovered .+ \(\d+\.\d+%\), \d+\.\d+ contacts per case", lines[0])

    out = StringIO()
    call_command("simulate", "--days", "5", "--seed", "3", "--enable", "b2c_small", stdout=out)
    assert "variant b2c_small/A:" in out.getvalue()
