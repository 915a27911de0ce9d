"""Work queues and agents' actions on cases (issue 6), through the services.

A queue item is claimed by one agent at a time; discounts above an agent's authority wait for a
supervisor; money changes go through the ledger (invariant 1), so the outstanding stays derived.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from relance.cases.handling import (
    case_discount_decide,
    case_discount_grant,
    case_hold,
    case_note_add,
    case_resume,
    case_write_off,
)
from relance.cases.models import WorkItem
from relance.cases.queues import (
    CLAIM_LEASE,
    WorkItemTakenError,
    work_item_claim,
    work_item_claim_next,
    work_item_open,
    work_item_release,
    work_priority,
    work_queue,
)
from relance.cases.selectors import case_outstanding_minor
from relance.comms.calls import call_outcome_record
from relance.comms.models import CallTask
from relance.comms.services import outbox_dispatch
from relance.core.errors import ConflictError, PermissionDeniedError, ValidationError
from relance.ledger.models import LedgerTransaction, Posting
from relance.strategies.engine import engine_tick
from relance.strategies.services import strategy_save
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, User
from support import CALL_FIRST_STRATEGY, PASSWORD, next_working_day_at

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
SYSTEM = Actor.system("tests")


def _user(world, username: str, role: str, agency=None) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, role=role, agency=agency or world.agency)


def _as(user: User) -> Actor:
    return Actor.for_user(user)


@pytest.fixture
def team(world):
    return {
        "agent": _as(world.agent),
        "agent2": _as(_user(world, "agent2", User.Role.AGENT)),
        "supervisor": _as(_user(world, "sup", User.Role.SUPERVISOR)),
        "auditor": _as(_user(world, "aud", User.Role.AUDITOR)),
    }


def _open(world, case, source: str, amount: int = 10000, kind: str = WorkItem.Kind.CALL, **kw) -> WorkItem:
    return work_item_open(
        kind=kind,
        source=source,
        agency_id=world.agency.pk,
        case=case,
        title=source,
        amount_minor=amount,
        actor=SYSTEM,
        **kw,
    )


def test_priority_weighs_amount_age_and_score():
    assert work_priority(amount_minor=12_345, overdue_days=0) == 123
    assert work_priority(amount_minor=0, overdue_days=10) == 20
    assert work_priority(amount_minor=0, overdue_days=5000) == 730  # capped at a year
    assert work_priority(amount_minor=-5, overdue_days=-3, score=7) == 7


def test_opening_twice_is_one_item_and_the_queue_puts_the_largest_first(world, place):
    small = place("INV-S", "50.00").case
    big = place("INV-B", "900.00", email="b@example.fr", last_name="Grand").case
    first = _open(world, small, "calltask:1", amount=5000)
    assert _open(world, small, "calltask:1", amount=999_999) == first
    _open(world, big, "calltask:2", amount=90000)
    order = [i.source for i in work_queue(actor=_as(world.agent), kind=WorkItem.Kind.CALL)]
    assert order == ["calltask:2", "calltask:1"]


def test_one_agent_at_a_time_and_a_lapsed_claim_returns_to_the_queue(world, place, team):
    case = place().case
    item = _open(world, case, "calltask:9")
    assert work_item_claim_next(actor=team["agent"], kind=WorkItem.Kind.CALL) == item
    assert work_item_claim_next(actor=team["agent2"], kind=WorkItem.Kind.CALL) is None
    with pytest.raises(WorkItemTakenError):
        work_item_claim(actor=team["agent2"], item_id=item.pk)
    later = timezone.now() + CLAIM_LEASE + timedelta(minutes=1)
    taken = work_item_claim(actor=team["agent2"], item_id=item.pk, now=later)
    assert str(taken.claimed_by_id) == team["agent2"].id
    with pytest.raises(WorkItemTakenError):
        work_item_release(actor=team["agent"], item_id=item.pk)  # no longer theirs
    assert work_item_release(actor=team["agent2"], item_id=item.pk).claimed_by_id is None


def test_an_agent_of_another_agency_never_sees_the_item(world, place):
    item = _open(world, place().case, "calltask:3")
    stranger = _as(_user(world, "stranger", User.Role.AGENT, agency=Agency.objects.create(legal_name="Else")))
    assert not work_queue(actor=stranger, kind=WorkItem.Kind.CALL).exists()
    with pytest.raises(Exception, match="not found"):
        work_item_claim(actor=stranger, item_id=item.pk)
    assert not work_queue(actor=_as(world.creditor_user), kind=WorkItem.Kind.CALL).exists()


def _weekday(hour: int) -> datetime:
    return next_working_day_at(hour)


def test_a_call_step_opens_a_work_item_and_logging_the_call_closes_both(world, place, team):
    strategy_save(source=CALL_FIRST_STRATEGY, make_default=True, actor=SYSTEM)
    case = place("INV-1", "1234.56").case
    now = _weekday(10)
    engine_tick(now=now)
    outbox_dispatch(now=now)
    task = CallTask.objects.get(case=case)
    item = WorkItem.objects.get(kind=WorkItem.Kind.CALL, source=f"calltask:{task.pk}")
    assert item.case == case and item.amount_minor == 123456 and item.priority >= 1234
    assert "recouvrement amiable" in item.data["script"]

    callback = timezone.now() + timedelta(days=2)
    call_outcome_record(case=case, result="callback", note="rappeler jeudi", actor=team["agent"], callback_at=callback)
    item.refresh_from_db()
    task.refresh_from_db()
    assert (item.status, item.due_at, task.status) == ("open", callback, "open")

    call_outcome_record(case=case, result="promise", note="paiera le 5", actor=team["agent"])
    item.refresh_from_db()
    task.refresh_from_db()
    assert (item.status, item.outcome, task.status, task.outcome) == ("done", "promise", "done", "promise")
    with pytest.raises(PermissionDeniedError):
        call_outcome_record(case=case, result="promise", note="", actor=team["auditor"])
    with pytest.raises(ValidationError):
        call_outcome_record(case=case, result="callback", note="", actor=team["agent"])  # no time given


def test_a_discount_within_authority_goes_through_the_ledger(world, place, team):
    case = place("INV-D", "200.00").case
    assert case_discount_grant(case=case, amount_minor=2000, reason="geste commercial", actor=team["agent"]) is None
    assert case_outstanding_minor(case=case) == 18000
    txn = LedgerTransaction.objects.get(code="claim.discount")
    postings = Posting.objects.filter(transaction=txn)
    assert sum(p.debit for p in postings) == sum(p.credit for p in postings) == 2000


def test_a_discount_above_authority_waits_for_a_supervisor(world, place, team):
    case = place("INV-E", "200.00").case
    pending = case_discount_grant(case=case, amount_minor=5000, reason="difficultés", actor=team["agent"])
    assert pending is not None and pending.kind == WorkItem.Kind.DISCOUNT_APPROVAL
    assert case_outstanding_minor(case=case) == 20000  # nothing applied yet
    with pytest.raises(PermissionDeniedError):
        case_discount_decide(item_id=pending.pk, approve=True, actor=team["agent"])
    case_discount_decide(item_id=pending.pk, approve=True, actor=team["supervisor"], note="ok")
    assert case_outstanding_minor(case=case) == 15000
    with pytest.raises(ConflictError):
        case_discount_decide(item_id=pending.pk, approve=True, actor=team["supervisor"])  # never twice


def test_a_discount_of_the_whole_balance_settles_the_case(world, place, team):
    case = place("INV-F", "40.00").case
    case_discount_grant(
        case=case, amount_minor=4000, reason="dossier ancien", actor=_as(_user(world, "boss", User.Role.AGENCY_ADMIN))
    )
    case.refresh_from_db()
    assert case.status == "settled" and case_outstanding_minor(case=case) == 0


@pytest.mark.parametrize("amount", [0, -1, 20001])
def test_a_discount_must_be_positive_and_within_the_outstanding(world, place, team, amount):
    case = place("INV-G", "200.00").case
    with pytest.raises(ValidationError) as error:
        case_discount_grant(case=case, amount_minor=amount, reason="x", actor=team["supervisor"])
    assert error.value.fields["field"] == "amount"


def test_write_off_clears_the_outstanding_in_the_ledger_and_ends_the_case(world, place, team):
    case = place("INV-W", "75.30").case
    case_write_off(case=case, reason="débiteur introuvable", actor=team["agent"])
    case.refresh_from_db()
    assert case.status == "written_off" and case_outstanding_minor(case=case) == 0
    with pytest.raises(ConflictError):
        case_write_off(case=case, reason="again", actor=team["agent"])
    with pytest.raises(PermissionDeniedError):
        case_write_off(case=place("INV-X", "10.00").case, reason="x", actor=team["auditor"])


def test_hold_needs_a_reason_and_a_date_within_a_year_and_resume_chases_again(world, place, team):
    case = place("INV-H", "90.00").case
    today = timezone.localdate()
    with pytest.raises(ValidationError) as error:
        case_hold(case=case, until=today, reason="x", actor=team["agent"])
    assert error.value.fields["field"] == "until"
    with pytest.raises(ValidationError):
        case_hold(case=case, until=today + timedelta(days=400), reason="x", actor=team["agent"])
    with pytest.raises(ValidationError) as error:
        case_hold(case=case, until=today + timedelta(days=10), reason="  ", actor=team["agent"])
    assert error.value.fields["field"] == "reason"
    held = case_hold(case=case, until=today + timedelta(days=10), reason="hospitalisé", actor=team["agent"])
    assert (held.status, held.hold_until, held.next_action_at) == ("on_hold", today + timedelta(days=10), None)
    resumed = case_resume(case=held, actor=team["agent"])
    assert resumed.status == "active" and resumed.hold_until is None and resumed.next_action_at is not None


def test_notes_are_for_staff_who_act(world, place, team):
    case = place().case
    case_note_add(case=case, text="A rappelé, très aimable", actor=team["agent"])
    with pytest.raises(PermissionDeniedError):
        case_note_add(case=case, text="x", actor=_as(world.creditor_user))
    with pytest.raises(ValidationError):
        case_note_add(case=case, text="   ", actor=team["agent"])
