"""An agent's day in a real browser (issue 6): log in with the second factor, take the next call from
the queue, log the call and record the debtor's promise.

Headless Debian Chromium through Playwright against ``live_server``; elements are found by id or name,
never by visible text, so the journey holds in French and in English.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from relance.cases.models import WorkItem
from relance.comms.models import CallTask
from relance.comms.services import outbox_dispatch
from relance.payments.models import Promise
from relance.strategies.engine import engine_tick
from relance.strategies.services import strategy_save
from relance.tenancy.actors import Actor
from support import CALL_FIRST_STRATEGY, browser_log_in, next_working_day_at

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def _weekday_morning() -> datetime:
    return next_working_day_at(10)


def test_an_agent_takes_the_next_call_logs_it_and_records_a_promise(live_server, world, place, new_page):
    strategy_save(source=CALL_FIRST_STRATEGY, make_default=True, actor=Actor.system("tests"))
    small = place("INV-S", "40.00", phone="+33612345670", email="s@example.fr", last_name="Petit").case
    big = place("INV-B", "480.00", phone="+33612345671", email="b@example.fr", last_name="Grand").case
    now = _weekday_morning()
    engine_tick(now=now)
    outbox_dispatch(now=now)
    assert CallTask.objects.count() == 2

    page = new_page()
    browser_log_in(page, live_server.url, world.agent)  # password, then the TOTP code
    page.goto(f"{live_server.url}/bo/queues/")
    page.click('tr[data-kind="call"] button[type=submit]')  # take the next one: the largest amount first
    page.wait_for_url(f"**/bo/cases/{big.pk}/**")
    item = WorkItem.objects.get(kind="call", case=big)
    assert item.claimed_by_id == world.agent.pk

    page.select_option("#id_call-result", "promise")
    page.fill("#id_call-note", "Paiera le 5, très courtois")
    page.click("#act-call button[type=submit]")
    page.wait_for_load_state()
    page.click('details[data-act="promise"] summary')
    on = timezone.localdate() + timedelta(days=5)
    page.fill("#id_promise-on", on.isoformat())
    page.fill("#id_promise-amount", "480,00")
    page.click("#act-promise button[type=submit]")
    page.wait_for_load_state()

    item.refresh_from_db()
    big.refresh_from_db()
    assert item.status == "done" and item.outcome == "promise"
    assert CallTask.objects.get(case=big).status == "done"
    promise = Promise.objects.get(case=big)
    assert (promise.due_date, promise.amount_minor) == (on, 48000)
    assert big.status == "promised"
    assert WorkItem.objects.get(kind="call", case=small).status == "open"  # the other call waits its turn
