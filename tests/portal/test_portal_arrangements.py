"""Portal arrangements through HTTP: plan with a signed SEPA mandate, promise, hardship — after verification.

Nothing is shown or written before the postcode is confirmed; errors come back on their field;
every write goes through ``payments.arrangements`` (policy, audit, FR-COL-12 proposal event).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relance.audit.models import AuditEvent
from relance.cases.links import portal_token
from relance.cases.services import case_dispute
from relance.payments.arrangement_models import (
    ArrangementPolicy,
    HardshipStatement,
    PaymentPlan,
    Promise,
    SepaCreditor,
    SepaMandate,
)
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

DEBTOR_IBAN = "FR14 2004 1010 0505 0001 3M02 606"
TODAY = timezone.localdate()


def _path(case, page: str) -> str:
    return reverse(f"portal:{page}", kwargs={"token": portal_token(case_id=case.pk, reference=case.reference)})


def _client(case) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert client.post(_path(case, "entry"), {"postcode": "33000"}).status_code == 302
    return client


@pytest.fixture
def sepa(world):
    world.agency.trust_iban = "FR7630006000011234567890189"
    world.agency.save()
    SepaCreditor.objects.create(agency=world.agency, creditor_identifier="FR72ZZZ123456")
    return world


@pytest.mark.parametrize("page", ["plan", "promise", "hardship", "plan_done"])
def test_nothing_before_verification(world, place, page):
    case = place("INV-1", "300.00").case
    token = portal_token(case_id=case.pk, reference=case.reference)
    response = Client().get(reverse(f"portal:{page}", kwargs={"token": token}))
    assert response.status_code == 302 and response["Location"] == reverse("portal:entry", kwargs={"token": token})
    assert Client().post(_path(case, "plan_confirm"), {"months": 3}).status_code == 302
    assert not PaymentPlan.objects.exists()


def test_the_case_page_links_to_the_arrangements(world, place):
    case = place("INV-1", "300.00").case
    html = _client(case).get(_path(case, "case")).content.decode()
    for link in ("link-plan", "link-promise", "link-hardship"):
        assert f'id="{link}"' in html


def test_plan_with_direct_debit_from_schedule_to_signed_mandate(sepa, place):
    case = place("INV-1", "300.00").case
    client = _client(case)
    first = TODAY + timedelta(days=5)

    page = client.get(_path(case, "plan")).content.decode()
    assert 'id="id_months"' in page and 'id="plan-policy"' in page
    schedule = client.post(_path(case, "plan"), {"months": "3", "first_due": first.isoformat()}).content.decode()
    assert 'id="schedule"' in schedule and 'id="plan-accepted-at-once"' in schedule
    assert schedule.count("€100.00") + schedule.count("100,00") == 3
    assert 'id="mandate-text"' in schedule and "8 weeks" in schedule

    bad = client.post(
        _path(case, "plan_confirm"),
        {
            "months": "3",
            "first_due": first.isoformat(),
            "method": "direct_debit",
            "debtor_name": "Jeanne Martin",
            "iban": "FR14 2004 1010 0505 0001 3M02 607",
            "accepted": "on",
        },
    )
    assert bad.status_code == 200 and 'id="iban-error"' in bad.content.decode()
    assert not PaymentPlan.objects.exists()

    done = client.post(
        _path(case, "plan_confirm"),
        {
            "months": "3",
            "first_due": first.isoformat(),
            "method": "direct_debit",
            "debtor_name": "Jeanne Martin",
            "iban": DEBTOR_IBAN,
            "accepted": "on",
        },
    )
    assert done.status_code == 302 and done["Location"].endswith("/plan/done/")
    mandate = SepaMandate.objects.get()
    assert mandate.iban == "FR1420041010050500013M02606" and mandate.signed_ip == "127.0.0.1"
    html = client.get(done["Location"]).content.decode()
    assert mandate.umr in html and 'data-status="active"' in html
    case.refresh_from_db()
    assert case.status == "in_plan"
    assert AuditEvent.objects.filter(verb="proposal.received", data__kind="plan").count() == 1


def test_a_plan_beyond_the_policy_is_sent_to_an_adviser(world, place):
    ArrangementPolicy.objects.create(creditor=world.creditor, max_months=2)
    case = place("INV-1", "300.00").case
    client = _client(case)
    first = (TODAY + timedelta(days=3)).isoformat()
    schedule = client.post(_path(case, "plan"), {"months": "6", "first_due": first}).content.decode()
    assert 'id="plan-needs-adviser"' in schedule
    assert 'name="iban"' not in schedule  # no SEPA set-up for this agency: transfer only
    done = client.post(_path(case, "plan_confirm"), {"months": "6", "first_due": first, "method": "transfer"})
    assert done.status_code == 302
    assert 'data-status="proposed"' in client.get(done["Location"]).content.decode()
    assert PaymentPlan.objects.get().status == "proposed"


def test_a_first_date_outside_the_window_is_an_error_on_the_date_field(world, place):
    case = place("INV-1", "300.00").case
    response = _client(case).post(_path(case, "plan"), {"months": "3", "first_due": "not a date"})
    assert 'id="first_due-error"' in response.content.decode()


def test_promise_within_policy_and_refused_outside(world, place):
    case = place("INV-1", "100.00").case
    client = _client(case)
    late = client.post(_path(case, "promise"), {"on": (TODAY + timedelta(days=90)).isoformat(), "amount": "100.00"})
    assert late.status_code == 200 and 'id="on-error"' in late.content.decode()
    bad_amount = client.post(_path(case, "promise"), {"on": (TODAY + timedelta(days=9)).isoformat(), "amount": "abc"})
    assert 'id="amount-error"' in bad_amount.content.decode()
    assert not Promise.objects.exists()

    ok = client.post(_path(case, "promise"), {"on": (TODAY + timedelta(days=9)).isoformat(), "amount": "100,00"})
    assert ok.status_code == 302
    case.refresh_from_db()
    assert case.status == "promised"
    page = client.get(_path(case, "case")).content.decode()
    assert 'id="arrangements-promise"' in page and 'id="link-promise"' not in page


def test_hardship_proposes_a_plan_and_flags_a_difficult_situation(world, place):
    case = place("INV-1", "600.00").case
    client = _client(case)
    bad = client.post(_path(case, "hardship"), {"income": "lots", "fixed_charges": "100", "dependants": "0"})
    assert 'id="income-error"' in bad.content.decode()

    result = client.post(
        _path(case, "hardship"),
        {"income": "900", "fixed_charges": "850", "dependants": "2", "vulnerable": "on", "note": "Job lost"},
    ).content.decode()
    assert 'id="hardship-adviser"' in result and 'id="hardship-accept"' in result
    statement = HardshipStatement.objects.get()
    assert statement.status == "to_review" and statement.income_minor == 90000
    assert AuditEvent.objects.filter(verb="debtor.vulnerability_flagged").count() == 1


def test_a_disputed_case_offers_no_arrangement(world, place):
    case = place("INV-1", "300.00").case
    case_dispute(case=case, reason="not_received", statement="Never delivered", actor=Actor.system("tests"))
    client = _client(case)
    assert 'id="arrangements"' not in client.get(_path(case, "case")).content.decode()
    first = (TODAY + timedelta(days=3)).isoformat()
    response = client.post(_path(case, "plan_confirm"), {"months": "3", "first_due": first, "method": "transfer"})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not PaymentPlan.objects.exists()


def test_a_card_plan_is_offered_only_with_a_card_provider_and_links_each_instalment(world, place, settings):
    case = place("INV-C", "300.00").case
    client = _client(case)
    first = (TODAY + timedelta(days=3)).isoformat()
    schedule = client.post(_path(case, "plan"), {"months": "3", "first_due": first}).content.decode()
    assert 'value="card"' not in schedule  # no card provider configured
    refused = client.post(_path(case, "plan_confirm"), {"months": "3", "first_due": first, "method": "card"})
    assert refused.status_code == 200 and not PaymentPlan.objects.exists()

    settings.RELANCE_CARD_PSP, settings.STRIPE_SECRET_KEY = "stripe", "sk_test_123"
    schedule = client.post(_path(case, "plan"), {"months": "3", "first_due": first}).content.decode()
    assert 'value="card"' in schedule
    done = client.post(_path(case, "plan_confirm"), {"months": "3", "first_due": first, "method": "card"})
    plan = PaymentPlan.objects.get()
    assert (plan.method, plan.status) == ("card", "active")
    page = client.get(done["Location"]).content.decode()
    first_amount = plan.instalments.order_by("number").first().amount_minor
    assert f"?amount={first_amount}&amp;minor=1" in page and 'id="pay-instalment-card"' in page
    form = client.get(_path(case, "card_pay") + f"?amount={first_amount}&minor=1").content.decode()
    assert f"{first_amount // 100}.00" in form or f"{first_amount // 100},00" in form
    tampered = client.get(_path(case, "card_pay") + "?amount=99999999&minor=1").content.decode()
    assert "300.00" in tampered or "300,00" in tampered  # more than owed: the balance is offered instead
