"""Call tasks (issue 4): a ``call`` step puts a task with its script into the agents' queue."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from relance.comms.models import Action, CallTask
from relance.comms.services import outbox_dispatch
from relance.strategies.engine import engine_tick
from relance.strategies.services import strategy_save
from relance.tenancy.actors import Actor
from support import CALL_FIRST_STRATEGY

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def calls(world):
    strategy_save(source=CALL_FIRST_STRATEGY, make_default=True, actor=Actor.system("tests"))
    return world


def weekday(hour: int) -> datetime:
    day = datetime.now(PARIS).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


def test_a_call_step_queues_a_task_with_priority_due_time_and_script(calls, place):
    case = place("INV-1", "1234.56").case
    now = weekday(10)
    engine_tick(now=now)
    report = outbox_dispatch(now=now)

    assert report.sent["call"] == 1
    task = CallTask.objects.get(case=case)
    assert (task.status, task.priority, task.due_at) == ("open", 1234, now)
    action = Action.objects.get(case=case)
    assert action.status == "sent" and action.provider_message_id == f"call-task-{task.pk}"
    script = action.body_text
    assert case.reference in script and "234,56\u00a0€" in script.replace("\u202f", "\u00a0")
    assert "recouvrement amiable" in script  # Mode B creditor: the collector says what it does (FR-COL-05)
    assert "Ne mentionnez la créance à personne d'autre" in script  # FR-COL-18: no disclosure to third parties


def test_no_phone_means_the_call_step_is_skipped_not_queued(calls, place):
    case = place("INV-2", "80.00", phone="").case
    engine_tick(now=weekday(10))
    assert not Action.objects.filter(case=case).exists()
    case.refresh_from_db()
    assert case.step == 1  # moved on to the next step


def test_calls_wait_for_daytime(calls, place):
    case = place("INV-3", "80.00").case
    engine_tick(now=weekday(7))  # before 08:00 in Paris
    assert not CallTask.objects.filter(case=case).exists()
    case.refresh_from_db()
    assert case.next_action_at == weekday(8)
