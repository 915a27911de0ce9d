"""Evidence first in the pure decision (invariant 5; issue 3 item 7).

"A case is not chased at all without the evidence its creditor's mandate requires": a chaseable case
with ``missing_evidence`` gets no contact, keeps its status (a new case stays new), says why, and waits
with no next action until attaching the evidence re-arms it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from relance.cases.status import CHASEABLE, Status
from relance.comms.policy import ContactPolicy
from relance.strategies.decide import CaseSnapshot, Outcome, decide, evidence_missing_reason
from relance.strategies.document import parse_strategy

DEFAULT = parse_strategy(files("relance.strategies").joinpath("default.yaml").read_text(encoding="utf-8"))
POLICY = ContactPolicy()
PLACED = datetime(2025, 6, 2, 11, tzinfo=ZoneInfo("Europe/Paris"))  # a Monday: every step in e-mail hours
DAY = timedelta(days=1)
MISSING = ("invoice", "delivery_proof")


def case(**fields: object) -> CaseSnapshot:
    base = CaseSnapshot(case_id=1, status=Status.NEW, step_index=0, placed_at=PLACED, outstanding_minor=12050)
    return replace(base, **fields)


def run(snapshot: CaseSnapshot, now: datetime) -> Outcome:
    return decide(snapshot, DEFAULT, POLICY, now)


def test_a_new_case_missing_evidence_is_not_chased_and_says_why() -> None:
    snapshot = case(status=Status.NEW, missing_evidence=MISSING)

    outcome = run(snapshot, PLACED + DAY)

    assert outcome.contacts == ()
    assert outcome.transition is None  # stays new
    assert outcome.reason == "evidence missing: invoice, delivery_proof"
    assert outcome.next_action_at is None  # waits until the evidence re-arms it
    assert outcome.next_step is None
    assert "evidence missing: invoice, delivery_proof" in outcome.notes


def test_an_active_case_missing_evidence_is_not_chased_either() -> None:
    outcome = run(case(status=Status.ACTIVE, step_index=1, missing_evidence=("invoice",)), PLACED + 8 * DAY)
    assert (outcome.contacts, outcome.transition, outcome.reason) == ((), None, "evidence missing: invoice")


def test_the_same_case_with_its_evidence_is_chased() -> None:
    outcome = run(case(), PLACED + DAY)
    assert len(outcome.contacts) == 1
    assert outcome.transition == Status.ACTIVE


def test_a_paid_case_is_still_closed_as_paid() -> None:
    outcome = run(case(outstanding_minor=0, missing_evidence=MISSING), PLACED + DAY)
    assert outcome.transition == Status.PAID


def test_a_disputed_case_keeps_its_own_reason() -> None:
    outcome = run(case(status=Status.DISPUTED, missing_evidence=MISSING), PLACED + DAY)
    assert (outcome.contacts, outcome.reason) == ((), "case is disputed")


def test_a_broken_promise_reopens_the_case_without_chasing_it() -> None:
    snapshot = case(status=Status.PROMISED, promise_date=(PLACED + DAY).date(), missing_evidence=("invoice",))
    outcome = run(snapshot, PLACED + 5 * DAY)
    assert outcome.contacts == ()
    assert outcome.transition == Status.ACTIVE
    assert outcome.reason == "evidence missing: invoice"


def test_the_reason_lists_the_kinds_in_the_mandates_order() -> None:
    assert evidence_missing_reason(("terms_accepted", "invoice")) == "evidence missing: terms_accepted, invoice"


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[CaseSnapshot, datetime]:
    placed_at = draw(
        st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
    )
    snapshot = CaseSnapshot(
        case_id=1,
        status=draw(st.sampled_from(list(Status))),
        step_index=draw(st.integers(min_value=0, max_value=len(DEFAULT.steps) + 1)),
        placed_at=placed_at,
        outstanding_minor=draw(st.integers(min_value=-1000, max_value=10**7)),
        channels=frozenset(draw(st.sets(st.sampled_from(["email", "sms", "call", "letter"])))),
        promise_date=draw(st.none() | st.dates(min_value=date(2023, 12, 1), max_value=date(2027, 3, 31))),
        missing_evidence=tuple(
            draw(st.lists(st.sampled_from(["invoice", "order", "delivery_proof"]), min_size=1, unique=True))
        ),
    )
    return snapshot, placed_at + draw(st.timedeltas(min_value=-5 * DAY, max_value=60 * DAY))


@settings(max_examples=200)
@given(situation=snapshots())
def test_property_missing_evidence_never_contacts(situation: tuple[CaseSnapshot, datetime]) -> None:
    """Whatever the case and the time: missing evidence means no contact and no move from new to
    active; a chaseable case with something outstanding then waits with no next action."""
    snapshot, now = situation

    outcome = run(snapshot, now)

    assert outcome.contacts == ()
    if snapshot.status == Status.NEW:
        assert outcome.transition in (None, Status.PAID)
    if snapshot.status in CHASEABLE and snapshot.outstanding_minor > 0:
        assert outcome.reason.startswith("evidence missing: ")
        assert outcome.next_action_at is None
