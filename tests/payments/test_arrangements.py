"""Arrangements through the services: plans (policy, agent, direct debit), promises, hardship, R-transactions.

Money is always read back from the ledger (invariant 1); events are audit rows on the case, with
the names the strategy engine reacts to (docs/payments.md).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from relance.audit.models import AuditEvent
from relance.cases.models import Case
from relance.cases.selectors import CaseNotFoundError, case_outstanding_minor
from relance.core.errors import ConflictError, PermissionDeniedError, ValidationError
from relance.core.money import Money
from relance.intake.services import claim_place
from relance.ledger.models import Posting
from relance.payments.arrangement_models import (
    ArrangementPolicy,
    HardshipStatement,
    PaymentPlan,
    PlanInstalment,
    Promise,
    SepaCreditor,
    SepaMandate,
)
from relance.payments.arrangement_selectors import case_arrangements
from relance.payments.arrangements import (
    ArrangementPolicyError,
    DirectDebitUnavailableError,
    MandateIn,
    arrangements_review,
    hardship_declare,
    plan_create,
    plan_decide,
    promise_create,
    sepa_batch_create,
    sepa_rtransactions_import,
    sepa_settle,
)
from relance.payments.models import Payment
from relance.payments.schedule import Budget, add_months
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor
from support import claim_data

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
ICS = "FR72ZZZ123456"
DEBTOR_IBAN = "FR1420041010050500013M02606"
NS8 = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"}


def at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


TODAY = timezone.localdate()
NOW = at(TODAY)


def verbs(case: Case) -> list[str]:
    return list(
        AuditEvent.objects.filter(subject_type="cases.case", subject_id=str(case.pk))
        .order_by("seq")
        .values_list("verb", flat=True)
    )


def debtor_actor(case: Case) -> Actor:
    return Actor.for_debtor(case_id=case.pk)


def mandate(**overrides) -> MandateIn:
    return MandateIn(
        **{"debtor_name": "Jeanne Martin", "iban": DEBTOR_IBAN, "accepted": True, "ip": "127.0.0.1", **overrides}
    )


@pytest.fixture
def sepa(world):
    world.agency.trust_iban = "FR7630006000011234567890189"
    world.agency.save()
    SepaCreditor.objects.create(agency=world.agency, creditor_identifier=ICS)
    return world


def dd_plan(case: Case, months: int = 3, first_due: date | None = None) -> PaymentPlan:
    return plan_create(
        case=case,
        months=months,
        first_due=first_due or TODAY + timedelta(days=3),
        method="direct_debit",
        mandate=mandate(),
        actor=debtor_actor(case),
        now=NOW,
    )


def test_a_plan_within_policy_is_active_at_once_with_its_signed_mandate(sepa, place):
    case = place("INV-1", "300.00").case

    plan = dd_plan(case)

    case.refresh_from_db()
    assert plan.status == "active" and plan.within_policy and plan.decided_by == "policy"
    assert case.status == "in_plan"
    assert [i.amount_minor for i in plan.instalments.order_by("number")] == [10000, 10000, 10000]
    mandate_row = SepaMandate.objects.get(plan=plan)
    assert mandate_row.umr == f"{case.reference}-M{plan.pk}"
    assert mandate_row.signature_date == TODAY and mandate_row.iban == DEBTOR_IBAN
    assert mandate_row.creditor_identifier == ICS and len(mandate_row.wording_sha256) == 64
    events = verbs(case)
    for verb in ("plan.created", "proposal.received", "mandate.signed", "plan.accepted"):
        assert verb in events
    signed = AuditEvent.objects.get(verb="mandate.signed")
    assert signed.data["iban_end"] == "2606" and DEBTOR_IBAN not in str(signed.data)  # no full IBAN in the log


def test_a_plan_outside_policy_waits_for_an_agent(sepa, place, world):
    ArrangementPolicy.objects.create(creditor=world.creditor, max_months=3)
    case = place("INV-1", "300.00").case

    plan = plan_create(
        case=case, months=6, first_due=TODAY + timedelta(days=5), method="transfer", actor=debtor_actor(case), now=NOW
    )

    case.refresh_from_db()
    assert plan.status == "proposed" and plan.violations == ["plan.months_too_many"]
    assert case.status == "new"
    assert "plan.proposed" in verbs(case) and "proposal.received" in verbs(case)
    with pytest.raises(PermissionDeniedError):
        plan_decide(plan=plan, accept=True, actor=Actor.for_user(world.creditor_user))
    with pytest.raises(ConflictError):  # one open plan per case
        plan_create(
            case=case, months=2, first_due=TODAY + timedelta(days=5), method="transfer", actor=debtor_actor(case)
        )

    plan_decide(plan=plan, accept=True, actor=Actor.for_user(world.agent), now=NOW)

    case.refresh_from_db()
    plan.refresh_from_db()
    assert plan.status == "active" and case.status == "in_plan"
    assert plan.decided_by == f"staff:{world.agent.pk}"


def test_a_bad_iban_or_an_unticked_mandate_writes_nothing(sepa, place):
    case = place("INV-1", "300.00").case
    for bad, field in (
        (mandate(iban="FR1420041010050500013M02607"), "iban"),
        (mandate(accepted=False), "accepted"),
        (mandate(debtor_name=" "), "debtor_name"),
    ):
        with pytest.raises(ValidationError) as err:
            plan_create(
                case=case,
                months=3,
                first_due=TODAY + timedelta(days=3),
                method="direct_debit",
                mandate=bad,
                actor=debtor_actor(case),
            )
        assert err.value.fields["field"] == field
    assert not PaymentPlan.objects.exists() and not SepaMandate.objects.exists()
    case.refresh_from_db()
    assert case.status == "new"


def test_direct_debit_needs_the_agency_creditor_identifier(world, place):
    case = place("INV-1", "300.00").case
    with pytest.raises(DirectDebitUnavailableError):
        dd_plan(case)


def test_direct_debit_batches_go_frst_then_rcur_and_settle_through_the_ledger(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))

    batch = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)

    assert batch is not None and batch.count == 1 and batch.total_minor == 10000
    doc = etree.fromstring(batch.xml.encode())
    assert doc.findtext(".//p:PmtTpInf/p:SeqTp", namespaces=NS8) == "FRST"
    assert doc.findtext(".//p:MndtRltdInf/p:MndtId", namespaces=NS8) == plan.mandate.umr
    assert doc.findtext(".//p:MndtRltdInf/p:DtOfSgntr", namespaces=NS8) == TODAY.isoformat()
    assert doc.findtext(".//p:DrctDbtTxInf/p:PmtId/p:EndToEndId", namespaces=NS8) == f"{case.reference}-P{plan.pk}-1"
    assert doc.findtext(".//p:CdtrSchmeId//p:Othr/p:Id", namespaces=NS8) == ICS
    assert sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW) is None  # nothing else due yet

    # The collection date comes: a payment through payment_record, allocated, the balance down.
    assert sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2))) == 1
    assert sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2))) == 0
    payment = Payment.objects.get(case=case)
    assert payment.method == "direct_debit" and payment.amount_minor == 10000
    assert case_outstanding_minor(case=case) == 20000

    # The next month: the same mandate is now recurrent.
    later = at(TODAY + timedelta(days=33))
    second = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=later)
    assert second is not None
    assert etree.fromstring(second.xml.encode()).findtext(".//p:SeqTp", namespaces=NS8) == "RCUR"
    assert "plan.instalment_submitted" in verbs(case) and "plan.instalment_paid" in verbs(case)


def camt054_return(e2e: str, amount: str, reason: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">
 <BkToCstmrDbtCdtNtfctn>
  <GrpHdr><MsgId>NTF-1</MsgId><CreDtTm>2026-12-03T08:00:00</CreDtTm></GrpHdr>
  <Ntfctn><Id>N1</Id><Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>
   <Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-12-03</Dt></BookgDt><AcctSvcrRef>RET-{e2e}</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>IDDT</Cd><SubFmlyCd>UPDD</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls>
     <Refs><EndToEndId>{e2e}</EndToEndId><MndtId>X</MndtId></Refs>
     <AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>
     <RtrInf><Rsn><Cd>{reason}</Cd></Rsn></RtrInf>
    </TxDtls></NtryDtls>
   </Ntry>
  </Ntfctn>
 </BkToCstmrDbtCdtNtfctn>
</Document>""".encode()


def pain002_reject(message_id: str, e2e: str, reason: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">
 <CstmrPmtStsRpt>
  <GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2026-12-01T08:00:00</CreDtTm></GrpHdr>
  <OrgnlGrpInfAndSts><OrgnlMsgId>{message_id}</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId><GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>
  <OrgnlPmtInfAndSts><OrgnlPmtInfId>P1</OrgnlPmtInfId>
   <TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>
    <StsRsnInf><Rsn><Cd>{reason}</Cd></Rsn></StsRsnInf></TxInfAndSts>
  </OrgnlPmtInfAndSts>
 </CstmrPmtStsRpt>
</Document>""".encode()


def test_a_returned_collection_is_reversed_and_the_instalment_missed(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2)))
    first = plan.instalments.get(number=1)
    assert case_outstanding_minor(case=case) == 20000

    report = sepa_rtransactions_import(file=camt054_return(first.end_to_end_id, "100.00", "AM04"), actor=SYSTEM)

    assert report.missed == [first.end_to_end_id] and report.reversed == [first.end_to_end_id]
    first.refresh_from_db()
    assert first.status == "failed" and first.failure_code == "AM04"
    assert case_outstanding_minor(case=case) == 30000  # the ledger took the money back; never negative
    missed = AuditEvent.objects.get(verb="plan.instalment_missed")
    assert missed.data["reason"] == "AM04" and missed.data["kind"] == "return"
    assert "payment.reversed" in verbs(case)
    # The same file again changes nothing.
    again = sepa_rtransactions_import(file=camt054_return(first.end_to_end_id, "100.00", "AM04"), actor=SYSTEM)
    assert again.duplicates == [first.end_to_end_id] and not again.missed
    assert case_outstanding_minor(case=case) == 30000
    # AM04 (insufficient funds) keeps the mandate: the next instalment is still collected.
    assert SepaMandate.objects.get(plan=plan).status == "active"


def test_a_rejected_first_collection_goes_frst_again_and_md01_revokes_the_mandate(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    batch = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    first = plan.instalments.get(number=1)

    # MS03 (reason not given): missed, not presented again (only AM04 is, see below).
    sepa_rtransactions_import(file=pain002_reject(batch.message_id, first.end_to_end_id, "MS03"), actor=SYSTEM)

    first.refresh_from_db()
    assert first.status == "failed" and first.payment is None and first.represent_on is None
    assert sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=3))) == 0
    assert case_outstanding_minor(case=case) == 30000
    second = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=at(TODAY + timedelta(days=33)))
    assert etree.fromstring(second.xml.encode()).findtext(".//p:SeqTp", namespaces=NS8) == "FRST"

    sepa_rtransactions_import(
        file=pain002_reject(second.message_id, f"{case.reference}-P{plan.pk}-2", "MD01"), actor=SYSTEM
    )

    plan.refresh_from_db()
    case.refresh_from_db()
    assert plan.status == "broken"  # two misses
    assert case.status == "active" and case.next_action_at is not None  # chasing resumes
    assert SepaMandate.objects.get(plan=plan).status == "revoked"
    assert verbs(case).count("plan.instalment_missed") == 2 and "plan.broken" in verbs(case)


def test_a_plan_paid_by_transfer_is_followed_from_the_ledger(world, place):
    case = place("INV-1", "300.00").case
    plan = plan_create(
        case=case, months=3, first_due=TODAY + timedelta(days=1), method="transfer", actor=debtor_actor(case), now=NOW
    )
    payment_record(case=case, amount=Money(10000, "EUR"), method="transfer", external_ref="T1", actor=SYSTEM)

    report = arrangements_review(actor=SYSTEM, now=at(TODAY + timedelta(days=2)))
    assert report.instalments_paid == 1 and report.instalments_missed == 0

    # The second instalment is not paid: missed after the grace days, an event for the engine.
    report = arrangements_review(actor=SYSTEM, now=at(TODAY + timedelta(days=40)))
    assert report.instalments_missed == 1
    assert [i.status for i in plan.instalments.order_by("number")] == ["paid", "failed", "scheduled"]
    assert "plan.instalment_missed" in verbs(case)

    # The debtor catches up: the missed instalment is paid, and then the rest: completed.
    payment_record(case=case, amount=Money(20000, "EUR"), method="transfer", external_ref="T2", actor=SYSTEM)
    report = arrangements_review(actor=SYSTEM, now=at(TODAY + timedelta(days=41)))
    plan.refresh_from_db()
    case.refresh_from_db()
    assert plan.status == "completed" and case.status == "paid"
    assert report.plans_completed == 1


def test_promises_within_policy_are_kept_or_broken(world, place):
    kept_case = place("INV-1", "100.00").case
    broken_case = place("INV-2", "80.00", email="paul@example.fr", first_name="Paul", last_name="Durand").case
    on = TODAY + timedelta(days=10)

    promise_create(case=kept_case, on=on, amount=Money(10000, "EUR"), actor=debtor_actor(kept_case), now=NOW)
    promise_create(case=broken_case, on=on, amount=Money(8000, "EUR"), actor=debtor_actor(broken_case), now=NOW)
    kept_case.refresh_from_db()
    assert kept_case.status == "promised" and kept_case.promise_date == on
    assert "promise.made" in verbs(kept_case) and "proposal.received" in verbs(kept_case)

    payment_record(case=kept_case, amount=Money(10000, "EUR"), method="transfer", external_ref="T1", actor=SYSTEM)
    report = arrangements_review(actor=SYSTEM, now=at(on))
    assert (report.promises_kept, report.promises_broken) == (1, 0)
    assert arrangements_review(actor=SYSTEM, now=at(on + timedelta(days=5))).promises_broken == 0  # grace days
    report = arrangements_review(actor=SYSTEM, now=at(on + timedelta(days=6)))
    assert report.promises_broken == 1
    broken_case.refresh_from_db()
    assert broken_case.status == "active" and broken_case.next_action_at is not None
    assert Promise.objects.get(case=broken_case).status == "broken"
    assert "promise.kept" in verbs(kept_case) and "promise.broken" in verbs(broken_case)


def test_a_promise_outside_policy_is_refused_with_the_field(world, place):
    case = place("INV-1", "100.00").case
    with pytest.raises(ArrangementPolicyError) as err:
        promise_create(case=case, on=TODAY + timedelta(days=60), amount=Money(10000, "EUR"), actor=debtor_actor(case))
    assert err.value.fields["field"] == "on"
    with pytest.raises(ArrangementPolicyError) as err:
        promise_create(case=case, on=TODAY + timedelta(days=3), amount=Money(5000, "EUR"), actor=debtor_actor(case))
    assert err.value.fields["violations"] == ["promise.amount_too_small"]
    assert not Promise.objects.exists()


def test_hardship_proposes_an_affordable_plan_and_flags_vulnerability(world, place):
    case = place("INV-1", "600.00").case
    outcome = hardship_declare(
        case=case, budget=Budget(200_000, 120_000, 1), vulnerable=False, note="", actor=debtor_actor(case), now=NOW
    )
    assert outcome.plan.months == 3 and not outcome.plan.vulnerable
    assert outcome.statement.status == "recorded"

    short = hardship_declare(
        case=case, budget=Budget(90_000, 85_000, 2), vulnerable=True, note="Job lost", actor=debtor_actor(case), now=NOW
    )
    assert short.statement.status == "to_review" and short.plan.vulnerable
    assert "debtor.vulnerability_flagged" in verbs(case) and verbs(case).count("hardship.declared") == 2
    assert HardshipStatement.objects.filter(status="to_review").count() == 1
    with pytest.raises(ValidationError) as err:
        hardship_declare(case=case, budget=Budget(-1, 0, 0), vulnerable=False, note="", actor=debtor_actor(case))
    assert err.value.fields["field"] == "income"


def test_a_creditor_sees_only_its_own_arrangements(world, place, sepa):
    case = place("INV-1", "300.00").case
    dd_plan(case)
    mine = case_arrangements(actor=Actor.for_user(world.creditor_user), case_id=case.pk)
    assert mine.plan is not None and len(mine.instalments) == 3 and mine.mandate is not None
    with pytest.raises(CaseNotFoundError):
        case_arrangements(actor=Actor.for_user(world.other_creditor_user), case_id=case.pk)
    with pytest.raises(CaseNotFoundError):
        case_arrangements(actor=Actor.for_debtor(case_id=case.pk + 1000), case_id=case.pk)


def test_sepa_files_are_for_agency_staff_only(sepa, world):
    with pytest.raises(PermissionDeniedError):
        sepa_batch_create(agency=world.agency, actor=Actor.for_user(world.creditor_user))
    with pytest.raises(PermissionDeniedError):
        sepa_rtransactions_import(file=b"", actor=Actor.for_user(world.agent))
    assert PlanInstalment.objects.count() == 0


def test_a_returned_instalment_is_not_covered_by_the_next_collection(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2)))
    first = plan.instalments.get(number=1)
    # MS03 (no reason given): not presented again, so the next file takes the second instalment.
    sepa_rtransactions_import(file=camt054_return(first.end_to_end_id, "100.00", "MS03"), actor=SYSTEM)
    second_day = at(TODAY + timedelta(days=33))
    assert sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=second_day) is not None
    assert sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=40))) == 1

    report = arrangements_review(actor=SYSTEM, now=at(TODAY + timedelta(days=40)))

    assert report.instalments_paid == 0
    assert [i.status for i in plan.instalments.order_by("number")] == ["failed", "paid", "scheduled"]
    assert case_outstanding_minor(case=case) == 20000
    # The debtor pays the missed one by transfer: now it is covered.
    payment_record(case=case, amount=Money(10000, "EUR"), method="transfer", external_ref="T9", actor=SYSTEM)
    assert arrangements_review(actor=SYSTEM, now=at(TODAY + timedelta(days=41))).instalments_paid == 1
    assert [i.status for i in plan.instalments.order_by("number")] == ["paid", "paid", "scheduled"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["transfer", "batch", "settle", "return", "review"]), st.integers(1, 40_000)),
        max_size=8,
    )
)
def test_whatever_happens_the_ledger_balances_and_the_balance_stays_between_zero_and_the_debt(sepa, place, ops):
    with transaction.atomic():
        case = place("INV-H", "300.00").case
        plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
        day = TODAY
        for n, (op, amount) in enumerate(ops):
            day += timedelta(days=11)
            if op == "transfer":
                payment_record(
                    case=case, amount=Money(amount, "EUR"), method="transfer", external_ref=f"H{n}", actor=SYSTEM
                )
            elif op == "batch":
                sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=at(day))
            elif op == "settle":
                sepa_settle(actor=SYSTEM, now=at(day))
            elif op == "review":
                arrangements_review(actor=SYSTEM, now=at(day))
            else:
                sent = plan.instalments.exclude(end_to_end_id=None).order_by("?").first()
                if sent is not None:
                    sepa_rtransactions_import(file=camt054_return(sent.end_to_end_id, "1.00", "AM04"), actor=SYSTEM)
            assert 0 <= case_outstanding_minor(case=case) <= 30000
        totals = Posting.objects.aggregate(d=Sum("debit"), c=Sum("credit"))
        assert totals["d"] == totals["c"]
        paid = sum(p.amount_minor for p in Payment.objects.filter(case=case, direct_debit_return__isnull=True))
        assert case_outstanding_minor(case=case) == max(0, 30000 - paid)
        transaction.set_rollback(True)


def test_direct_debit_is_for_cases_in_euros(sepa):
    data = replace(claim_data("GBP-1", "300.00"), currency="GBP")
    case = claim_place(creditor=sepa.creditor, data=data, actor=SYSTEM).case
    assert case.currency == "GBP"
    with pytest.raises(DirectDebitUnavailableError):
        dd_plan(case)
    assert not PaymentPlan.objects.exists()


def test_a_mandate_unused_for_36_months_has_lapsed(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=20))
    years_later = at(add_months(TODAY, 36) + timedelta(days=1))

    assert sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=years_later) is None

    assert SepaMandate.objects.get(plan=plan).status == "revoked"
    assert "mandate.lapsed" in verbs(case)
    assert not plan.instalments.exclude(status="scheduled").exists()


# --- AM04: presented once more (PAY-09) ----------------------------------------------------------------


def test_an_insufficient_funds_return_is_presented_once_more_a_week_later_under_a_new_id(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    first_file = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2)))
    first = plan.instalments.get(number=1)
    original_id = first.end_to_end_id

    report = sepa_rtransactions_import(
        file=camt054_return(original_id, "100.00", "AM04"), actor=SYSTEM, now=at(TODAY + timedelta(days=4))
    )

    assert report.represented == [original_id]
    first.refresh_from_db()
    assert first.status == "failed" and first.represent_on == TODAY + timedelta(days=11)
    # Not before its day: a file made earlier leaves it out.
    assert sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=at(TODAY + timedelta(days=4))) is None

    again = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=at(TODAY + timedelta(days=8)))

    assert again is not None and again.pk != first_file.pk
    first.refresh_from_db()
    assert (first.status, first.presentations, first.previous_end_to_end_id) == ("submitted", 2, original_id)
    assert first.end_to_end_id == f"{original_id}-R1"
    assert first.collection_date == TODAY + timedelta(days=11)
    doc = etree.fromstring(again.xml.encode())
    assert doc.findtext(".//p:DrctDbtTxInf/p:PmtId/p:EndToEndId", namespaces=NS8) == f"{original_id}-R1"
    assert doc.findtext(".//p:PmtTpInf/p:SeqTp", namespaces=NS8) == "RCUR"
    assert doc.findtext(".//p:DrctDbtTxInf/p:InstdAmt", namespaces=NS8) == "100.00"

    # The old return file again is a duplicate, not a second miss; the second presentation settles.
    old = sepa_rtransactions_import(file=camt054_return(original_id, "100.00", "AM04"), actor=SYSTEM)
    assert old.duplicates == [original_id] and not old.missed
    assert sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=11))) == 1
    first.refresh_from_db()
    assert first.status == "paid"
    assert case_outstanding_minor(case=case) == 20000
    assert Payment.objects.filter(case=case, method="direct_debit").count() == 2  # the first was reversed
    assert "plan.instalment_represent" in verbs(case)


def test_a_second_insufficient_funds_return_is_not_presented_again(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    first = plan.instalments.get(number=1)
    sepa_rtransactions_import(file=camt054_return(first.end_to_end_id, "100.00", "AM04"), actor=SYSTEM, now=NOW)
    sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=at(TODAY + timedelta(days=7)))
    first.refresh_from_db()

    report = sepa_rtransactions_import(
        file=camt054_return(first.end_to_end_id, "100.00", "AM04"), actor=SYSTEM, now=at(TODAY + timedelta(days=8))
    )

    first.refresh_from_db()
    assert report.missed == [first.end_to_end_id] and report.represented == []
    assert first.status == "failed" and first.represent_on is None and first.presentations == 2


@pytest.mark.parametrize("reason", ["MD06", "AC04", "MS03"])
def test_other_returns_are_not_presented_again(sepa, place, reason):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2)))
    first = plan.instalments.get(number=1)

    report = sepa_rtransactions_import(file=camt054_return(first.end_to_end_id, "100.00", reason), actor=SYSTEM)

    first.refresh_from_db()
    assert report.represented == [] and first.represent_on is None


def test_a_returned_amount_paid_by_transfer_meanwhile_is_never_debited_again(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2)))
    first = plan.instalments.get(number=1)
    sepa_rtransactions_import(file=camt054_return(first.end_to_end_id, "100.00", "AM04"), actor=SYSTEM, now=NOW)
    payment_record(case=case, amount=Money(10000, "EUR"), method="transfer", external_ref="TR-1", actor=SYSTEM)
    arrangements_review(actor=SYSTEM, now=at(TODAY + timedelta(days=3)))

    later = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=at(TODAY + timedelta(days=8)))

    first.refresh_from_db()
    assert first.status == "paid"  # covered by the transfer, so not presented again
    assert later is None or first.end_to_end_id not in later.xml
    assert case_outstanding_minor(case=case) == 20000


def test_a_rejected_first_collection_is_presented_again_as_a_first_collection(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    batch = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    first = plan.instalments.get(number=1)

    sepa_rtransactions_import(file=pain002_reject(batch.message_id, first.end_to_end_id, "AM04"), actor=SYSTEM, now=NOW)
    again = sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=at(TODAY + timedelta(days=7)))

    assert again is not None
    doc = etree.fromstring(again.xml.encode())
    assert doc.findtext(".//p:PmtTpInf/p:SeqTp", namespaces=NS8) == "FRST"  # EPC: the first one never went through
    assert doc.findtext(".//p:DrctDbtTxInf/p:PmtId/p:EndToEndId", namespaces=NS8) == f"{case.reference}-P{plan.pk}-1-R1"


def test_a_returned_debit_is_settled_first_by_what_the_debtor_overpaid_meanwhile(sepa, place):
    case = place("INV-1", "300.00").case
    plan = dd_plan(case, months=3, first_due=TODAY + timedelta(days=2))
    sepa_batch_create(agency=sepa.agency, actor=SYSTEM, now=NOW)
    sepa_settle(actor=SYSTEM, now=at(TODAY + timedelta(days=2)))
    payment_record(case=case, amount=Money(25000, "EUR"), method="transfer", external_ref="TR-9", actor=SYSTEM)
    assert case_outstanding_minor(case=case) == 0  # 100.00 by debit + 250.00 by transfer: 50.00 overpaid
    first = plan.instalments.get(number=1)

    sepa_rtransactions_import(file=camt054_return(first.end_to_end_id, "100.00", "MD06"), actor=SYSTEM)

    # The 100.00 reopened are paid by the 50.00 held for the debtor; 50.00 are owed, nothing is held.
    assert case_outstanding_minor(case=case) == 5000
    overpaid = Posting.objects.filter(account__key=f"overpayment:case:{case.pk}").aggregate(
        d=Sum("debit"), c=Sum("credit")
    )
    assert overpaid["c"] - overpaid["d"] == 0
    applied = AuditEvent.objects.get(verb="payment.overpayment_applied")
    assert applied.data["amount"] == 5000
    case.refresh_from_db()
    assert case.status == "in_plan"  # owed again, and the plan goes on
