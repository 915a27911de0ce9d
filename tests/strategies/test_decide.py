"""The decision function (pure) with the default strategy document.

Days count from the placement of the case (docs/strategies.md). The contact policy (FR-COL-16,
FR-COL-19) is checked when a contact is decided (invariant 4); disputed, on-hold and closed cases are
never contacted (invariant 5).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.cases.status import CHASEABLE, Status, can_transition
from relance.comms.policy import DEFAULT_WINDOWS, ContactPolicy, check_contact
from relance.strategies.decide import CaseSnapshot, Contact, Outcome, decide
from relance.strategies.document import StrategyDoc, parse_strategy

PARIS = ZoneInfo("Europe/Paris")
DEFAULT = parse_strategy(files("relance.strategies").joinpath("default.yaml").read_text(encoding="utf-8"))
POLICY = ContactPolicy()
# Monday 2 June 2025, 11:00 in Paris: every step of the default strategy falls in e-mail hours.
PLACED = datetime(2025, 6, 2, 11, tzinfo=PARIS)
DAY = timedelta(days=1)


def case(**fields: object) -> CaseSnapshot:
    base = CaseSnapshot(case_id=1, status=Status.ACTIVE, step_index=0, placed_at=PLACED, outstanding_minor=12050)
    return replace(base, **fields)


def run(snapshot: CaseSnapshot, now: datetime, strategy: StrategyDoc = DEFAULT) -> Outcome:
    return decide(snapshot, strategy, POLICY, now)


def email(step: str) -> Contact:
    return Contact(step_key=f"default:v1:{step}", channel="email", template=step)


# --- the default sequence --------------------------------------------------------------------------


def test_first_notice_at_day_zero_activates_the_case() -> None:
    outcome = run(case(status=Status.NEW), PLACED)
    assert outcome.contacts == (email("first_notice"),)
    assert outcome.transition == Status.ACTIVE
    assert outcome.next_step == 1
    assert outcome.next_action_at == PLACED + 7 * DAY


def test_waiting_before_day_seven() -> None:
    now = PLACED + 7 * DAY - timedelta(minutes=1)
    outcome = run(case(step_index=1, recent_contacts=(PLACED,)), now)
    assert outcome.contacts == ()
    assert outcome.transition is None
    assert outcome.next_step is None
    assert outcome.reason == "waiting"
    assert outcome.next_action_at == PLACED + 7 * DAY


def test_reminder_at_day_seven() -> None:
    outcome = run(case(step_index=1, recent_contacts=(PLACED,)), PLACED + 7 * DAY)
    assert outcome.contacts == (email("reminder"),)
    assert outcome.transition is None  # already active
    assert outcome.next_step == 2
    assert outcome.next_action_at == PLACED + 15 * DAY


def test_final_notice_at_day_fifteen() -> None:
    contacts = (PLACED, PLACED + 7 * DAY)
    outcome = run(case(step_index=2, recent_contacts=contacts), PLACED + 15 * DAY)
    assert outcome.contacts == (email("final_notice"),)
    assert outcome.next_step == 3
    assert outcome.next_action_at == PLACED + 30 * DAY


def test_return_to_creditor_at_day_thirty() -> None:
    outcome = run(case(step_index=3), PLACED + 30 * DAY)
    assert outcome.contacts == ()
    assert outcome.transition == Status.RETURNED
    assert outcome.next_step == 4


def test_no_return_before_day_thirty() -> None:
    outcome = run(case(step_index=3), PLACED + 30 * DAY - timedelta(seconds=1))
    assert outcome.transition is None
    assert outcome.next_action_at == PLACED + 30 * DAY


def test_finished_strategy_does_nothing() -> None:
    outcome = run(case(step_index=len(DEFAULT.steps)), PLACED + 60 * DAY)
    assert outcome.contacts == ()
    assert outcome.transition is None
    assert outcome.reason == "strategy finished"


def test_a_late_engine_catches_up_one_step_at_a_time() -> None:
    # Reminder due at day 7, final notice at day 15; the engine only looks at day 20.
    now = PLACED + 20 * DAY
    outcome = run(case(step_index=1), now)
    assert outcome.contacts == (email("reminder"),)
    assert outcome.next_step == 2
    # The final notice is not sent in the same call, and is never scheduled in the past.
    assert outcome.next_action_at == now + timedelta(minutes=1)


# --- who is never contacted (invariant 5) -----------------------------------------------------------


@pytest.mark.parametrize("status", sorted(set(Status) - CHASEABLE - {Status.PROMISED}))
def test_non_chaseable_cases_are_never_contacted(status: Status) -> None:
    outcome = run(case(status=status, step_index=0), PLACED + 1 * DAY)
    assert outcome == Outcome(reason=f"case is {status.value}")


@pytest.mark.parametrize("status", [Status.DISPUTED, Status.ON_HOLD, Status.PAID])
@pytest.mark.parametrize("step_index", [0, 1, 2, 3])
def test_disputed_on_hold_paid_not_contacted_at_any_step(status: Status, step_index: int) -> None:
    outcome = run(case(status=status, step_index=step_index), PLACED + 40 * DAY)
    assert outcome.contacts == ()
    assert outcome.transition is None
    assert outcome.next_step is None


# --- promises --------------------------------------------------------------------------------------

# Monday 23 June 2025: the promise runs until the end of that day in the debtor's timezone.
PROMISE = date(2025, 6, 23)
DAY_AFTER = datetime(2025, 6, 24, tzinfo=PARIS)


def test_promised_case_waits_until_the_day_after_the_promise() -> None:
    outcome = run(case(status=Status.PROMISED, step_index=1, promise_date=PROMISE), DAY_AFTER - timedelta(seconds=1))
    assert outcome.contacts == ()
    assert outcome.transition is None
    assert outcome.reason == "promise pending"
    assert outcome.next_action_at == DAY_AFTER


def test_broken_promise_makes_the_case_active_again() -> None:
    # Step 2 (final notice, day 15 = 17 June) is already due; it is 00:00, outside e-mail hours.
    promised = case(status=Status.PROMISED, step_index=2, promise_date=PROMISE)
    outcome = run(promised, DAY_AFTER)
    assert outcome.transition == Status.ACTIVE
    assert "promise broken" in outcome.notes
    assert outcome.contacts == ()
    assert outcome.next_action_at == DAY_AFTER.replace(hour=8)
    # At 08:00 the final notice goes out, and the case is still moved back to active.
    morning = run(promised, DAY_AFTER.replace(hour=8))
    assert morning.transition == Status.ACTIVE
    assert morning.contacts == (email("final_notice"),)
    assert "promise broken" in morning.notes


def test_broken_promise_with_no_step_due_yet_still_reactivates() -> None:
    promised = case(status=Status.PROMISED, step_index=3, promise_date=PROMISE)
    outcome = run(promised, DAY_AFTER.replace(hour=10))
    assert outcome.transition == Status.ACTIVE
    assert outcome.reason == "waiting"
    assert outcome.next_action_at == PLACED + 30 * DAY


def test_kept_promise_is_not_chased() -> None:
    outcome = run(case(status=Status.PROMISED, step_index=1, promise_date=PROMISE, outstanding_minor=0), DAY_AFTER)
    assert outcome.contacts == ()
    # Nothing left to collect after the promised day: the case ends as paid, never chased again.
    assert outcome.transition == Status.PAID
    assert outcome.reason.startswith("promise kept")


def test_promise_day_is_the_debtors_day() -> None:
    # 24 June 00:00 in Paris is still 23 June (18:00) in Martinique: the promise is still pending there.
    promised = case(status=Status.PROMISED, step_index=1, promise_date=PROMISE, debtor_timezone="America/Martinique")
    outcome = run(promised, DAY_AFTER)
    assert outcome.reason == "promise pending"
    assert outcome.next_action_at == datetime(2025, 6, 24, tzinfo=ZoneInfo("America/Martinique"))


# --- outstanding, addresses, contact policy --------------------------------------------------------


@pytest.mark.parametrize("status", [Status.NEW, Status.ACTIVE])
@pytest.mark.parametrize("outstanding", [0, -500])
def test_nothing_outstanding_means_paid(status: Status, outstanding: int) -> None:
    outcome = run(case(status=status, outstanding_minor=outstanding), PLACED)
    assert outcome.transition == Status.PAID
    assert outcome.contacts == ()


def test_no_email_address_skips_the_step_with_a_reason() -> None:
    outcome = run(case(status=Status.NEW, channels=frozenset({"letter"})), PLACED)
    assert outcome.contacts == ()
    assert outcome.next_step == 1
    assert outcome.reason == "step first_notice skipped: no email address"
    assert "no email address" in outcome.notes
    assert outcome.next_action_at == PLACED + 7 * DAY


def test_outside_allowed_hours_defers_to_the_window_opening() -> None:
    # Day 7 is Monday 9 June; at 21:00 e-mail is closed until Tuesday 08:00 (FR-COL-19).
    now = datetime(2025, 6, 9, 21, tzinfo=PARIS)
    outcome = run(case(step_index=1, recent_contacts=(PLACED,)), now)
    assert outcome.contacts == ()
    assert outcome.next_step is None  # the step is not consumed
    assert outcome.next_action_at == datetime(2025, 6, 10, 8, tzinfo=PARIS)
    assert outcome.reason == "step reminder deferred: outside allowed hours"


def test_window_opening_in_the_debtors_timezone() -> None:
    # A Martinique debtor: day 0 at 11:00 Paris is 05:00 there; first notice waits for 08:00 local.
    outcome = run(case(status=Status.NEW, debtor_timezone="America/Martinique"), PLACED)
    assert outcome.contacts == ()
    assert outcome.transition is None  # not contacted yet: still new
    assert outcome.next_action_at == datetime(2025, 6, 2, 8, tzinfo=ZoneInfo("America/Martinique"))


def test_minimum_gap_defers_the_step() -> None:
    # Another creditor contacted the debtor an hour ago (FR-COL-16): wait 48 h from that contact.
    previous = PLACED + 7 * DAY - timedelta(hours=1)
    outcome = run(case(step_index=1, recent_contacts=(previous,)), PLACED + 7 * DAY)
    assert outcome.contacts == ()
    assert outcome.next_action_at == previous + timedelta(hours=48)
    assert "too soon" in outcome.reason


def test_weekly_cap_defers_the_step() -> None:
    now = PLACED + 7 * DAY
    contacts = (now - 6 * DAY, now - 4 * DAY, now - 2 * DAY)
    outcome = run(case(step_index=1, recent_contacts=contacts), now)
    assert outcome.contacts == ()
    assert outcome.next_action_at == contacts[0] + timedelta(days=7, minutes=1)


SMS_STRATEGY = parse_strategy(
    {
        "key": "sms",
        "version": 3,
        "name": "SMS then letter",
        "steps": [
            {"id": "text", "after_days": 6, "action": "sms", "template": "sms_first"},
            {"id": "letter", "after_days": 10, "action": "letter", "template": "letter_notice"},
            {"id": "close", "after_days": 40, "action": "close"},
        ],
    }
)


def test_no_sms_on_sunday_nor_on_a_public_holiday() -> None:
    # Day 6 after Monday 2 June is Sunday 8 June, and Monday 9 June 2025 is Whit Monday, a French
    # public holiday (FR-COL-19: no SMS on Sundays or public holidays): the SMS waits for Tuesday.
    snapshot = case(step_index=0, channels=frozenset({"sms", "letter"}))
    outcome = run(snapshot, PLACED + 6 * DAY, SMS_STRATEGY)
    assert outcome.contacts == ()
    assert outcome.next_action_at == datetime(2025, 6, 10, 8, tzinfo=PARIS)
    tuesday = run(snapshot, datetime(2025, 6, 10, 8, tzinfo=PARIS), SMS_STRATEGY)
    assert tuesday.contacts == (Contact("sms:v3:text", "sms", "sms_first"),)


def test_channel_forbidden_by_policy_is_skipped_not_deferred() -> None:
    # A policy with no SMS window: the step can never happen, so it is skipped with the reason.
    policy = ContactPolicy(windows={k: v for k, v in DEFAULT_WINDOWS.items() if k != "sms"})
    snapshot = case(step_index=0, channels=frozenset({"sms", "letter"}))
    outcome = decide(snapshot, SMS_STRATEGY, policy, PLACED + 7 * DAY)
    assert outcome.contacts == ()
    assert outcome.next_step == 1
    assert outcome.next_action_at == PLACED + 10 * DAY
    assert "skipped" in outcome.reason


def test_close_step_closes_the_case() -> None:
    outcome = run(case(step_index=2), PLACED + 40 * DAY, SMS_STRATEGY)
    assert outcome.transition == Status.CLOSED
    assert outcome.next_step == 3


# --- properties ------------------------------------------------------------------------------------

TIMEZONES = ["Europe/Paris", "America/Martinique", "Indian/Reunion", "Pacific/Noumea"]


@st.composite
def situations(draw: st.DrawFn) -> tuple[CaseSnapshot, StrategyDoc, datetime]:
    strategy = draw(st.sampled_from([DEFAULT, SMS_STRATEGY]))
    placed_at = draw(
        st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
    )
    now = placed_at + draw(st.timedeltas(min_value=-5 * DAY, max_value=60 * DAY))
    contacts = tuple(
        now - offset for offset in draw(st.lists(st.timedeltas(min_value=timedelta(0), max_value=10 * DAY), max_size=5))
    )
    snapshot = CaseSnapshot(
        case_id=draw(st.integers(min_value=1, max_value=10**6)),
        status=draw(st.sampled_from(list(Status))),
        step_index=draw(st.integers(min_value=0, max_value=len(strategy.steps) + 1)),
        placed_at=placed_at,
        outstanding_minor=draw(st.integers(min_value=-1000, max_value=10**7)),
        debtor_timezone=draw(st.sampled_from(TIMEZONES)),
        channels=frozenset(draw(st.sets(st.sampled_from(["email", "sms", "call", "letter"])))),
        recent_contacts=contacts,
        promise_date=draw(st.none() | st.dates(min_value=date(2023, 12, 1), max_value=date(2027, 3, 31))),
    )
    return snapshot, strategy, now


@settings(max_examples=200)
@given(situation=situations())
def test_property_decide_keeps_its_invariants(situation: tuple[CaseSnapshot, StrategyDoc, datetime]) -> None:
    snapshot, strategy, now = situation
    outcome = decide(snapshot, strategy, POLICY, now)

    # At most one contact per call: a late engine never sends two steps at once.
    assert len(outcome.contacts) <= 1

    # Invariant 5: only chaseable cases are contacted; a promised case only once the promise is broken.
    if outcome.contacts:
        assert snapshot.status in CHASEABLE or (
            snapshot.status == Status.PROMISED and outcome.transition == Status.ACTIVE
        )
    if snapshot.status not in CHASEABLE | {Status.PROMISED}:
        assert outcome.contacts == ()
        assert outcome.transition is None

    # Never scheduled in the past.
    if outcome.next_action_at is not None:
        assert outcome.next_action_at >= now

    # Every transition is one the status machine allows.
    if outcome.transition is not None:
        assert can_transition(snapshot.status, outcome.transition)

    # A contact is for the current step, on a channel the debtor has, and the policy allows it now
    # (invariant 4, FR-COL-16, FR-COL-19).
    for contact in outcome.contacts:
        step = strategy.steps[snapshot.step_index]
        assert contact == Contact(strategy.step_key(step), step.action, step.template)
        assert contact.channel in snapshot.channels
        assert outcome.next_step == snapshot.step_index + 1
        assert outcome.transition != Status.PAID
        assert snapshot.outstanding_minor > 0
        assert check_contact(
            policy=POLICY,
            channel=contact.channel,
            now=now,
            debtor_timezone=snapshot.debtor_timezone,
            recent_contacts=snapshot.recent_contacts,
        ).allowed


# --- the value classes' __init__ fills their slots directly (issue 4, engine speed) ----------------


def _stock(cls: type) -> type:
    """The same class with the ``__init__`` ``dataclass`` writes."""
    defaults: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = dataclasses.field(default_factory=f.default_factory)
    namespace = {"__annotations__": dict(cls.__annotations__), **defaults}
    return dataclasses.dataclass(frozen=True, slots=True)(type(cls.__name__, (), namespace))


@pytest.mark.parametrize("cls", [CaseSnapshot, Outcome, Contact])
def test_the_value_classes_are_built_as_the_dataclass_init_builds_them(cls: type) -> None:
    """``decide._slot_init`` replaces the frozen dataclasses' ``__init__``: same parameters, defaults and
    factories, same values; still frozen, compared, hashed and replaced as dataclasses."""
    stock = _stock(cls)
    assert list(inspect.signature(cls).parameters) == list(inspect.signature(stock).parameters)
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    values = {name: f"value-{name}" for name in required}
    built = cls(**values)
    assert dataclasses.astuple(built) == dataclasses.astuple(stock(**values))  # the defaults and factories
    positional = cls(*values.values())
    assert positional == built
    assert hash(positional) == hash(built)
    everything = {f.name: f"other-{f.name}" for f in dataclasses.fields(cls)}
    assert dataclasses.astuple(cls(**everything)) == tuple(everything.values())
    assert dataclasses.astuple(cls(*everything.values())) == tuple(everything.values())
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, first, "changed")
    assert getattr(dataclasses.replace(built, **{first: "new"}), first) == "new"
    with pytest.raises(TypeError):
        cls(**values, unknown=1)
    if required:
        with pytest.raises(TypeError):
            cls()
