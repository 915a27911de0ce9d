"""Back office: an adviser decides plans proposed outside the policy and reviews flagged hardship."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relance.payments.arrangement_models import ArrangementPolicy, HardshipStatement, PaymentPlan, Promise
from relance.payments.arrangements import arrangements_review, hardship_declare, plan_create
from relance.payments.schedule import Budget
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, User

pytestmark = pytest.mark.django_db


def _login(user, password) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)  # the second factor is passed too (tests/conftest.py)
    return client


@pytest.fixture
def proposed(world, place):
    ArrangementPolicy.objects.create(creditor=world.creditor, max_months=2)
    case = place("INV-1", "300.00").case
    debtor = Actor.for_debtor(case_id=case.pk)
    plan = plan_create(
        case=case, months=6, first_due=timezone.localdate() + timedelta(days=3), method="transfer", actor=debtor
    )
    statement = hardship_declare(
        case=case, budget=Budget(80_000, 80_000, 2), vulnerable=True, note="Illness", actor=debtor
    ).statement
    return plan, statement


def test_an_agent_accepts_a_proposed_plan_and_reviews_hardship(world, proposed, password):
    plan, statement = proposed
    client = _login(world.agent, password)
    page = client.get(reverse("backoffice:proposals")).content.decode()
    assert f'data-plan="{plan.pk}"' in page and f'data-statement="{statement.pk}"' in page and "Illness" in page

    client.post(reverse("backoffice:plan_decision", args=[plan.pk]), {"decision": "accept"})
    client.post(reverse("backoffice:hardship_reviewed", args=[statement.pk]))

    plan.refresh_from_db()
    statement.refresh_from_db()
    assert plan.status == "active" and plan.case.status == "in_plan"
    assert statement.status == "reviewed"


def test_creditors_and_other_agencies_cannot_decide(world, proposed, password):
    plan, statement = proposed
    creditor = _login(world.creditor_user, password)
    assert creditor.get(reverse("backoffice:proposals")).status_code in {403, 404}
    decided = creditor.post(reverse("backoffice:plan_decision", args=[plan.pk]), {"decision": "accept"})
    assert decided.status_code in {403, 404}
    other_agency = Agency.objects.create(legal_name="Other agency")
    stranger = User.objects.create_user(
        username="stranger", password=password, role=User.Role.AGENT, agency=other_agency
    )
    client = _login(stranger, password)
    assert f'data-plan="{plan.pk}"' not in client.get(reverse("backoffice:proposals")).content.decode()
    assert client.post(reverse("backoffice:plan_decision", args=[plan.pk]), {"decision": "accept"}).status_code == 404
    assert client.post(reverse("backoffice:hardship_reviewed", args=[statement.pk])).status_code == 404
    assert PaymentPlan.objects.get().status == "proposed"
    assert HardshipStatement.objects.get().status == "to_review"


def test_the_case_page_shows_the_plan_to_the_agent_and_its_creditor_only(world, proposed, password):
    plan, _ = proposed
    url = reverse("backoffice:case", args=[plan.case_id])
    for user in (world.agent, world.creditor_user):
        page = _login(user, password).get(url).content.decode()
        assert 'id="arrangements"' in page and 'data-status="proposed"' in page
        assert "plan.months_too_many" in page
    assert _login(world.other_creditor_user, password).get(url).status_code == 404


def test_a_promise_taken_by_an_agent_is_tracked_like_the_debtors_own(world, place, password):
    case = place("INV-7", "300.00").case
    client = _login(world.agent, password)
    on = timezone.localdate() + timedelta(days=60)  # beyond the creditor's policy: the agent has authority
    client.post(
        reverse("backoffice:case_act", args=[case.pk, "promise"]),
        {"promise-on": on.isoformat(), "promise-amount": "50"},
    )
    promise = Promise.objects.get(case=case)
    assert (promise.due_date, promise.amount_minor, promise.status) == (on, 5000, "pending")
    case.refresh_from_db()
    assert case.status == "promised"
    report = arrangements_review(actor=Actor.system("tests"), now=timezone.now() + timedelta(days=70))
    assert report.promises_broken == 1
    # Still never more than the balance.
    client.post(
        reverse("backoffice:case_act", args=[case.pk, "promise"]),
        {"promise-on": on.isoformat(), "promise-amount": "301"},
    )
    assert Promise.objects.filter(case=case).count() == 1
