"""Work queues and case actions through HTTP: staff only, field errors, creditors never see staff work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from relance.cases.models import WorkItem
from relance.cases.queues import work_item_open
from relance.cases.selectors import case_outstanding_minor
from relance.payments.bank import camt053_import
from relance.payments.models import Payment, UnmatchedBankEntry
from relance.tenancy.actors import Actor
from relance.tenancy.models import User
from support import CALL_FIRST_STRATEGY, PASSWORD

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_agent_takes_the_next_call_and_lands_on_the_case_to_act(world, place):
    case = place().case
    work_item_open(
        kind=WorkItem.Kind.CALL,
        source="calltask:77",
        agency_id=world.agency.pk,
        case=case,
        title="Call",
        amount_minor=12050,
        actor=SYSTEM,
    )
    client = _client(world.agent)
    overview = client.get("/bo/queues/").content.decode()
    assert 'data-kind="call"' in overview
    response = client.post("/bo/queues/call/next/")
    assert response.status_code == 302 and response.url == f"/bo/cases/{case.pk}/#act"
    page = client.get(f"/bo/cases/{case.pk}/").content.decode()
    assert 'id="act-call"' in page and 'id="work-items"' in page
    logged = client.post(f"/bo/cases/{case.pk}/act/call/", {"call-result": "promise", "call-note": "le 5"})
    assert logged.status_code == 302
    assert WorkItem.objects.get(source="calltask:77").status == "done"


def test_case_actions_report_the_field_in_error_and_change_nothing(world, place):
    case = place("INV-1", "100.00").case
    client = _client(world.agent)
    response = client.post(
        f"/bo/cases/{case.pk}/act/discount/", {"discount-amount": "abc", "discount-reason": "x"}, follow=True
    )
    assert "amount: " in response.content.decode()
    response = client.post(f"/bo/cases/{case.pk}/act/hold/", {"hold-reason": "x"}, follow=True)
    assert "until: " in response.content.decode()
    assert case_outstanding_minor(case=case) == 10000
    ok = client.post(f"/bo/cases/{case.pk}/act/discount/", {"discount-amount": "5,00", "discount-reason": "geste"})
    assert ok.status_code == 302 and case_outstanding_minor(case=case) == 9500


def test_creditor_users_have_no_queues_no_actions_and_never_see_staff_notes(world, place):
    case = place().case
    _client(world.agent).post(f"/bo/cases/{case.pk}/act/note/", {"note-text": "Numéro perso du débiteur: 0600"})
    creditor = _client(world.creditor_user)
    assert creditor.get("/bo/queues/").status_code in {403, 404}  # the permission matrix says no
    assert creditor.post(f"/bo/cases/{case.pk}/act/write_off/", {"write_off-reason": "x"}).status_code in {403, 404}
    page = creditor.get(f"/bo/cases/{case.pk}/").content.decode()
    assert "Numéro perso" not in page and 'id="act"' not in page
    assert "Numéro perso" in _client(world.agent).get(f"/bo/cases/{case.pk}/").content.decode()


def test_an_auditor_reads_queues_but_cannot_take_or_act(world, place):
    case = place().case
    work_item_open(
        kind=WorkItem.Kind.CALL, source="calltask:5", agency_id=world.agency.pk, case=case, title="Call", actor=SYSTEM
    )
    auditor = User.objects.create_user(username="aud", password=PASSWORD, role=User.Role.AUDITOR, agency=world.agency)
    client = _client(auditor)
    assert client.get("/bo/queues/call/").status_code == 200
    assert client.post("/bo/queues/call/next/").status_code == 403  # queues.work: not auditors
    assert WorkItem.objects.get(source="calltask:5").claimed_by is None
    assert 'id="act"' not in client.get(f"/bo/cases/{case.pk}/").content.decode()
    before = case.status
    assert client.post(f"/bo/cases/{case.pk}/act/write_off/", {"write_off-reason": "x"}).status_code == 403
    case.refresh_from_db()
    assert case.status == before


SAMPLE = Path(__file__).parent.parent / "payments" / "samples" / "camt053_v02.xml"
TRUST_IBAN = "FR7630006000011234567890189"  # the account of the sample statement


def test_an_unmatched_bank_entry_is_matched_by_hand_from_its_queue(world, place):
    world.agency.trust_iban = TRUST_IBAN
    world.agency.save()
    case = place("INV-U", "80.00").case
    camt053_import(file=SAMPLE.read_bytes(), actor=SYSTEM)  # no case carries the sample's references
    entry = UnmatchedBankEntry.objects.filter(agency=world.agency, status="open").order_by("pk").first()
    assert entry is not None
    item = WorkItem.objects.get(kind=WorkItem.Kind.UNMATCHED_PAYMENT, source=f"bank:{entry.pk}")
    assert item.case is None and item.amount_minor == entry.amount_minor
    client = _client(world.agent)
    assert client.get(f"/bo/work/{item.pk}/").status_code == 200
    client.post(f"/bo/work/{item.pk}/claim/")
    bad = client.post(f"/bo/work/{item.pk}/match/", {"reference": "RL-NOPE"}, follow=True)
    assert 'class="messages"' in bad.content.decode()
    item.refresh_from_db()
    assert item.status == "open"
    client.post(f"/bo/work/{item.pk}/match/", {"reference": case.reference.lower()})
    item.refresh_from_db()
    entry.refresh_from_db()
    assert item.status == "done" and entry.status == "matched"
    assert Payment.objects.get(case=case).amount_minor == entry.amount_minor
    assert timezone.now() - item.done_at < timedelta(minutes=1)


def test_cases_are_searched_by_reference_name_or_e_mail_within_the_users_scope(world, place):
    mine = place("INV-77", "10.00", email="Jeanne.Martin@Example.fr", last_name="Martin").case
    theirs = place("OTH-77", "10.00", creditor=world.other_creditor, email="x@example.fr", last_name="Martinez").case
    agent = _client(world.agent)

    def refs(client, **params) -> set[str]:
        html = client.get("/bo/", params).content.decode()
        return {c.reference for c in (mine, theirs) if c.reference in html}

    assert refs(agent, q="martin") == {mine.reference, theirs.reference}
    assert refs(agent, q="jeanne.martin@example.FR") == {mine.reference}
    assert refs(agent, q=mine.reference.lower()) == {mine.reference}
    assert refs(agent, q="OTH-77") == {theirs.reference}
    assert refs(agent, q="martin", creditor=world.other_creditor.pk) == {theirs.reference}
    assert refs(_client(world.creditor_user), q="martin") == {mine.reference}  # never another creditor's
    assert refs(_client(world.creditor_user), q="OTH-77") == set()
    assert refs(agent, q="' OR 1=1 --") == set()
    bad = agent.get("/bo/", {"placed_from": "31/02/2026"}).content.decode()
    assert 'class="error"' in bad
    from relance.audit.models import AuditEvent

    assert AuditEvent.objects.filter(verb="cases.searched", data__query="martin").exists()


def test_a_creditor_admin_recalls_a_case_and_chasing_stops(world, place):
    case = place().case
    viewer = User.objects.create_user(
        username="viewer",
        password=PASSWORD,
        role=User.Role.CREDITOR_VIEWER,
        agency=world.agency,
        creditor=world.creditor,
    )
    refused = _client(viewer).post(f"/bo/cases/{case.pk}/recall/", {"recall-reason": "x"})
    assert refused.status_code == 403  # cases.recall: creditor admins only
    assert (
        _client(world.other_creditor_user).post(f"/bo/cases/{case.pk}/recall/", {"recall-reason": "x"}).status_code
        == 404
    )
    admin = _client(world.creditor_user)
    assert 'id="recall"' in admin.get(f"/bo/cases/{case.pk}/").content.decode()
    admin.post(f"/bo/cases/{case.pk}/recall/", {"recall-reason": "client a payé en boutique"})
    case.refresh_from_db()
    assert case.status == "returned" and case.next_action_at is None
    assert 'id="recall"' not in admin.get(f"/bo/cases/{case.pk}/").content.decode()


def test_an_agent_moves_a_case_to_another_strategy_from_its_first_step(world, place):
    from relance.audit.models import AuditEvent
    from relance.strategies.services import strategy_save

    strategy_save(source=CALL_FIRST_STRATEGY, actor=SYSTEM)
    case = place().case
    before = case.strategy_key
    client = _client(world.agent)
    assert 'value="calls"' in client.get(f"/bo/cases/{case.pk}/").content.decode()
    client.post(f"/bo/cases/{case.pk}/act/strategy/", {"strategy-key": "calls"})
    case.refresh_from_db()
    assert (case.strategy_key, case.strategy_version, case.step) == ("calls", 1, 0)
    assert case.next_action_at is not None
    event = AuditEvent.objects.get(verb="strategy.changed")
    assert event.data["from"]["key"] == before and event.data["key"] == "calls"
    refused = client.post(f"/bo/cases/{case.pk}/act/strategy/", {"strategy-key": "nope"}, follow=True)
    assert 'class="messages"' in refused.content.decode()
    assert AuditEvent.objects.filter(verb="strategy.changed").count() == 1


def test_an_agent_records_a_plan_agreed_on_the_phone(world, place):
    from relance.payments.models import PaymentPlan

    case = place("INV-PL", "300.00").case
    client = _client(world.agent)
    first = timezone.localdate() + timedelta(days=10)
    client.post(f"/bo/cases/{case.pk}/act/plan/", {"plan-months": "3", "plan-first_due": first.isoformat()})
    plan = PaymentPlan.objects.get(case=case)
    assert (plan.source, plan.method, plan.months, plan.first_due) == ("agent", "transfer", 3, first)
    assert sum(i.amount_minor for i in plan.instalments.all()) == 30000
    case.refresh_from_db()
    assert case.status == "in_plan"
    bad = client.post(f"/bo/cases/{case.pk}/act/plan/", {"plan-months": "0"}, follow=True)
    assert 'class="messages"' in bad.content.decode()
