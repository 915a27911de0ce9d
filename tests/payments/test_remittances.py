"""The remittance run against the database: figures, postings, invoice, pain.001, idempotency,
deadlines (FR-COL-14), the trust account (FR-COL-02) and who may download what (invariant 6).
"""

from __future__ import annotations

import io
import threading
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sepaxml
import xmlschema
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pypdf import PdfReader

from relance.audit.services import audit_verify
from relance.core.money import Money
from relance.ledger.models import FeeInvoice, LedgerTransaction, PayoutBatch, Posting, Remittance, RemittanceItem
from relance.ledger.remittances import fee_schedule_set
from relance.ledger.services import account_balance, ledger_reverse
from relance.payments.models import Payment
from relance.payments.remittances import (
    add_months,
    execution_date_for,
    payout_batch_paid,
    period_end_for,
    remittance_due,
    remittance_run,
)
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor, User
from support import PASSWORD

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
PARIS = ZoneInfo("Europe/Paris")
TRUST_IBAN = "FR7630006000011234567890189"
SHOP_IBAN = "DE89370400440532013000"
OTHER_IBAN = "FR1420041010050500013M02606"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
PERIOD_END = date(2026, 11, 23)  # a Monday
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=PARIS)


@pytest.fixture
def money_world(world):
    world.agency.trust_iban = TRUST_IBAN
    world.agency.siren = "552100554"
    world.agency.vat_number = "FR40552100554"
    world.agency.save()
    world.creditor.remittance_iban = SHOP_IBAN
    world.creditor.siren = "732829320"
    world.creditor.vat_number = "FR44732829320"
    world.creditor.save()
    world.other_creditor.remittance_iban = OTHER_IBAN
    world.other_creditor.save()
    fee_schedule_set(
        creditor=world.creditor,
        document={"default_rate": "15", "minimum_fee": "5.00", "rules": [{"max_amount": "50.00", "rate": "20"}]},
        actor=ACTOR,
    )
    return world


def _pay(case, minor, ref, when):
    return payment_record(
        case=case,
        amount=Money(minor, "EUR"),
        method=Payment.Method.TRANSFER,
        external_ref=ref,
        actor=ACTOR,
        received_at=when,
    )


def _run(period_end=PERIOD_END, now=NOW, **kw):
    (report,) = remittance_run(period_end=period_end, actor=ACTOR, now=now, **kw)
    return report


def _counts():
    return tuple(
        m.objects.count() for m in (Remittance, FeeInvoice, PayoutBatch, LedgerTransaction, Posting, RemittanceItem)
    )


def _every_transaction_balances():
    rows = Posting.objects.values("transaction_id", "currency").annotate(d=Sum("debit"), c=Sum("credit"))
    assert all(r["d"] == r["c"] for r in rows)


def test_worked_example_net_remittance(money_world, place):
    w = money_world
    a = place("INV-1", "120.50").case
    b = place("INV-2", "40.00", email="paul@example.fr", first_name="Paul", last_name="Durand").case
    c = place("INV-3", "80.00", creditor=w.other_creditor).case
    _pay(a, 12050, "t1", datetime(2026, 11, 18, 10, 0, tzinfo=PARIS))
    _pay(b, 1000, "t2", datetime(2026, 11, 19, 10, 0, tzinfo=PARIS))
    _pay(c, 8000, "t3", datetime(2026, 11, 20, 10, 0, tzinfo=PARIS))
    _pay(b, 100, "late", datetime(2026, 11, 23, 0, 0, tzinfo=PARIS))  # at the cut-off: next period

    report = _run()

    shop = Remittance.objects.get(creditor=w.creditor)
    # Case a: 15 % of 120.50 = 18.075 → 18.08; case b (placed 40 € < 50 €): 20 % of 10 € = 2 € → minimum 5 €.
    lines = {line.reference: line for line in shop.lines.all()}
    assert lines[a.reference].commission_minor == 1808
    assert lines[b.reference].commission_minor == 500
    assert lines[b.reference].minimum_applied
    assert shop.collected_minor == 13050
    assert shop.commission_minor == 2308
    assert shop.vat_minor == 462  # 20 % of 23.08 = 4.616 → 4.62
    assert shop.transfer_minor == 13050 - 2308 - 462
    assert shop.due_by == date(2026, 12, 18)  # FR-COL-14: one month from the first encashment
    other = Remittance.objects.get(creditor=w.other_creditor)
    assert other.commission_minor == 1200  # default schedule: 15 %
    assert len(report.created) == 2

    # Ledger: the payable account is cleared, the trust account still holds everything until paid.
    cid = w.creditor.pk
    agency = w.agency.pk
    assert account_balance(key=f"creditor:{cid}:payable:EUR") == -100  # only the payment after the cut-off
    assert account_balance(key=f"creditor:{cid}:payout:EUR") == -shop.transfer_minor
    assert account_balance(key=f"agency:{agency}:fees:EUR") == -(2308 + 1200)
    assert account_balance(key=f"agency:{agency}:vat:EUR") == -(462 + 240)
    assert account_balance(key=f"trust:{agency}:EUR") == 12050 + 1000 + 8000 + 100
    _every_transaction_balances()

    # Fee invoices: one gap-free series per agency and year, mentions of both parties.
    numbers = sorted(FeeInvoice.objects.values_list("number", flat=True))
    assert numbers == ["F2026-000001", "F2026-000002"]
    invoice = FeeInvoice.objects.get(remittance=shop)
    assert (invoice.amount_ht_minor, invoice.vat_minor, invoice.amount_ttc_minor) == (2308, 462, 2770)
    assert invoice.seller["siren"] == "552100554"
    assert invoice.buyer["vat_number"] == "FR44732829320"
    assert invoice.due_minor == 0

    # One pain.001 paying both from the trust account, valid against the XSD, control sums right.
    batch = report.batch
    assert batch is not None
    doc = etree.fromstring(batch.xml.encode())
    schema = xmlschema.XMLSchema(str(Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"))
    schema.validate(batch.xml)
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS) == batch.msg_id
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    total = (shop.transfer_minor + other.transfer_minor) / 100
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == f"{total:.2f}"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:PmtInf/p:CtrlSum", namespaces=NS) == f"{total:.2f}"
    assert doc.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == TRUST_IBAN  # FR-COL-02
    txs = doc.findall(".//p:CdtTrfTxInf", namespaces=NS)
    assert {t.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) for t in txs} == {SHOP_IBAN, OTHER_IBAN}
    assert {t.findtext("p:PmtId/p:EndToEndId", namespaces=NS) for t in txs} == {shop.end_to_end_id, other.end_to_end_id}
    amounts = sorted(t.findtext("p:Amt/p:InstdAmt", namespaces=NS) for t in txs)
    assert amounts == sorted([f"{shop.transfer_minor / 100:.2f}", f"{other.transfer_minor / 100:.2f}"])
    assert batch.execution_date == date(2026, 11, 23)
    audit_verify()


def test_running_the_same_period_twice_creates_nothing(money_world, place):
    a = place("INV-1", "120.50").case
    _pay(a, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    _run()
    before = _counts()

    again = _run()

    assert _counts() == before
    assert again.created == [] and again.batch is None and again.existing == 1


def test_the_next_period_takes_what_came_after_the_cut_off_and_chargebacks(money_world, place):
    a = place("INV-1", "120.50").case
    first = _pay(a, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    _run()
    ledger_reverse(txn=first.ledger_transaction, code="payment.reversed")  # chargeback after remittance
    _pay(a, 8000, "t2", datetime(2026, 11, 25, tzinfo=PARIS))

    report = _run(period_end=PERIOD_END + timedelta(days=7), now=NOW + timedelta(days=7))

    (second,) = report.created
    assert second.collected_minor == 8000 - 5000
    assert sorted(second.items.values_list("amount_minor", flat=True)) == [-5000, 8000]
    assert second.lines.get().commission_minor == 450  # 15 % of the case's net 30.00


def test_more_chargebacks_than_collections_are_carried_over(money_world, place):
    a = place("INV-1", "120.50").case
    first = _pay(a, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    _run()
    _pay(a, 1000, "t2", datetime(2026, 11, 25, tzinfo=PARIS))
    ledger_reverse(txn=first.ledger_transaction, code="payment.reversed")

    report = _run(period_end=PERIOD_END + timedelta(days=7), now=NOW + timedelta(days=7))

    assert report.created == []
    assert "carried over" in report.skipped[0].reason
    assert report.skipped[0].amount_minor == -4000


def test_a_creditor_without_iban_is_skipped_then_remitted_once_fixed(money_world, place):
    w = money_world
    Creditor.objects.filter(pk=w.creditor.pk).update(remittance_iban="")
    a = place("INV-1", "120.50").case
    _pay(a, 5000, "t1", datetime(2026, 10, 1, tzinfo=PARIS))

    report = _run()

    assert report.created == []
    assert report.skipped[0].reason == "no valid remittance IBAN on the creditor"
    (warning,) = report.warnings
    assert warning.state == "overdue"  # encashed 1 October, due 1 November (FR-COL-14)
    assert warning.due_by == date(2026, 11, 1)

    Creditor.objects.filter(pk=w.creditor.pk).update(remittance_iban=SHOP_IBAN)
    report = _run()
    (r,) = report.created
    assert report.batch is not None
    assert [late.remittance_id for late in report.late] == [r.pk]  # paid after its deadline: reported


def test_due_list_and_d5_alert(money_world, place):
    w = money_world
    a = place("INV-1", "120.50").case
    _pay(a, 5000, "t1", datetime(2026, 10, 27, 12, 0, tzinfo=PARIS))
    (item,) = remittance_due(agency=w.agency, today=date(2026, 11, 22))
    assert item.due_by == date(2026, 11, 27)
    assert item.state == "due_soon"
    assert remittance_due(agency=w.agency, today=date(2026, 11, 10))[0].state == "ok"
    assert remittance_due(agency=w.agency, today=date(2026, 11, 28))[0].state == "overdue"


def test_agreed_term_replaces_the_one_month_rule(money_world, place):
    w = money_world
    fee_schedule_set(creditor=w.creditor, document={"default_rate": "10", "remittance_term_days": 7}, actor=ACTOR)
    a = place("INV-1", "120.50").case
    _pay(a, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    (r,) = _run().created
    assert r.due_by == date(2026, 11, 25)


def test_gross_mode_invoices_the_fee(money_world, place):
    w = money_world
    fee_schedule_set(creditor=w.creditor, document={"default_rate": "10", "mode": "gross"}, actor=ACTOR)
    a = place("INV-1", "120.50").case
    _pay(a, 10000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    (r,) = _run().created
    assert (r.transfer_minor, r.receivable_minor) == (10000, 1200)
    assert account_balance(key=f"creditor:{w.creditor.pk}:fees_receivable:EUR") == 1200
    assert FeeInvoice.objects.get(remittance=r).due_minor == 1200


def test_paid_file_moves_the_money_out_of_the_trust_account(money_world, place):
    w = money_world
    a = place("INV-1", "120.50").case
    _pay(a, 10000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    report = _run()
    r = report.created[0]

    payout_batch_paid(batch=report.batch, paid_on=date(2026, 11, 24), actor=ACTOR)
    payout_batch_paid(batch=report.batch, paid_on=date(2026, 11, 24), actor=ACTOR)  # idempotent

    r.refresh_from_db()
    assert r.status == Remittance.Status.PAID
    assert account_balance(key=f"trust:{w.agency.pk}:EUR") == 0
    assert account_balance(key=f"creditor:{w.creditor.pk}:payout:EUR") == 0
    assert account_balance(key=f"agency:{w.agency.pk}:operating:EUR") == r.deducted_minor
    assert LedgerTransaction.objects.filter(code="remittance.paid").count() == 1
    _every_transaction_balances()


def test_bad_fee_schedule_is_refused_with_its_field(money_world):
    from relance.core.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        fee_schedule_set(creditor=money_world.creditor, document={"default_rate": "150"}, actor=ACTOR)
    assert err.value.fields["field"] == "default_rate"


def test_dates():
    assert add_months(date(2026, 1, 31)) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31)) == date(2028, 2, 29)
    assert add_months(date(2026, 12, 15)) == date(2027, 1, 15)
    assert execution_date_for(date(2026, 11, 28)) == date(2026, 11, 30)  # Saturday → Monday
    assert execution_date_for(date(2026, 12, 25)) == date(2026, 12, 28)  # TARGET2 closed 25-26/12
    assert period_end_for(datetime(2026, 11, 25, 12, tzinfo=PARIS)) == date(2026, 11, 23)
    assert period_end_for(datetime(2026, 11, 22, 23, 30, tzinfo=ZoneInfo("UTC"))) == date(
        2026, 11, 23
    )  # Monday 00:30 Paris


def test_the_period_must_have_ended(money_world):
    from relance.core.errors import ValidationError

    with pytest.raises(ValidationError):
        remittance_run(period_end=date(2026, 11, 30), actor=ACTOR, now=NOW)


# --- the command ---------------------------------------------------------------------------------


def test_command_run_and_due(money_world, place):
    a = place("INV-1", "120.50").case
    _pay(a, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    out = io.StringIO()
    call_command("remittances", "run", "--period-end", "2026-11-23", stdout=out)
    assert "1 remittances created" in out.getvalue()
    out = io.StringIO()
    call_command("remittances", "run", "--period-end", "2026-11-23", stdout=out)
    assert "0 remittances created, 1 already done" in out.getvalue()
    batch = PayoutBatch.objects.get()
    out = io.StringIO()
    call_command("remittances", "file", batch.msg_id, stdout=out)
    assert out.getvalue().startswith("<?xml")
    call_command("remittances", "paid", batch.msg_id, "--on", "2026-11-24", stdout=io.StringIO())
    assert PayoutBatch.objects.get().status == PayoutBatch.Status.PAID
    out = io.StringIO()
    call_command("remittances", "due", stdout=out)
    assert out.getvalue() == ""


# --- pages and downloads: tenant isolation -------------------------------------------------------


def _client(user) -> Client:
    client = Client()
    client.force_login(user)  # the second factor is passed too (tests/conftest.py)
    return client


def test_creditors_download_their_own_statements_and_invoices_only(money_world, place):
    w = money_world
    _pay(place("INV-1", "120.50").case, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    _pay(place("INV-9", "80.00", creditor=w.other_creditor).case, 8000, "t2", datetime(2026, 11, 18, tzinfo=PARIS))
    report = _run()
    mine = Remittance.objects.get(creditor=w.creditor)
    theirs = Remittance.objects.get(creditor=w.other_creditor)
    shop = _client(w.creditor_user)

    page = shop.get(reverse("backoffice:remittances")).content.decode()
    assert reverse("backoffice:remittance_statement", args=[mine.pk]) in page
    assert reverse("backoffice:remittance_statement", args=[theirs.pk]) not in page
    assert "payout-files" not in page

    statement = shop.get(reverse("backoffice:remittance_statement", args=[mine.pk]))
    assert statement.status_code == 200
    assert statement["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(statement.content)).pages)
    assert mine.lines.get().reference in text  # our case reference, and the creditor's invoice number
    assert "F-INV-1" in text
    invoice = shop.get(reverse("backoffice:remittance_invoice", args=[mine.pk]))
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(invoice.content)).pages)
    assert "F2026-000001" in text or "F2026-000002" in text
    assert "552100554" in text and "FR44732829320" in text  # SIREN/VAT of both parties

    for name in ("remittance_statement", "remittance_invoice"):
        assert shop.get(reverse(f"backoffice:{name}", args=[theirs.pk])).status_code == 404
    assert shop.get(reverse("backoffice:payout_file", args=[report.batch.pk])).status_code in {403, 404}

    assert _client(w.agent).get(reverse("backoffice:remittances")).status_code == 403  # the matrix: not agents
    supervisor = User.objects.create_user(username="sup", password=PASSWORD, role=User.Role.SUPERVISOR, agency=w.agency)
    staff = _client(supervisor)
    page = staff.get(reverse("backoffice:remittances")).content.decode()
    assert reverse("backoffice:remittance_statement", args=[theirs.pk]) in page
    xml = staff.get(reverse("backoffice:payout_file", args=[report.batch.pk]))
    assert xml.status_code == 200 and xml["Content-Type"] == "application/xml"

    # Staff of another agency see nothing of this one.
    elsewhere = Agency.objects.create(legal_name="Autre Agence")
    stranger = User.objects.create_user(
        username="stranger", password=PASSWORD, role=User.Role.SUPERVISOR, agency=elsewhere
    )
    s = _client(stranger)
    assert s.get(reverse("backoffice:remittance_statement", args=[mine.pk])).status_code == 404
    assert s.get(reverse("backoffice:payout_file", args=[report.batch.pk])).status_code == 404


# --- FR-COL-02: collected money lands on the trust account, debtors see only its IBAN -------------


def test_collections_land_on_the_trust_account_and_the_portal_shows_only_its_iban(money_world, place):
    from relance.cases.links import portal_token

    w = money_world
    case = place("INV-1", "120.50").case
    payment = _pay(case, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    debits = defaultdict(int)
    for p in payment.ledger_transaction.postings.select_related("account"):
        debits[p.account.key] += p.debit
    # The money is debited to the trust account; the other debit is the claims contra account.
    assert debits == {f"trust:{w.agency.pk}:EUR": 5000, f"creditor:{w.creditor.pk}:claims:EUR": 5000} | {
        k: 0 for k in debits if ":claims:" not in k and not k.startswith("trust:")
    }
    client = Client()
    token = portal_token(case_id=case.pk, reference=case.reference)
    assert client.post(reverse("portal:entry", kwargs={"token": token}), {"postcode": "33000"}).status_code == 302
    html = client.get(reverse("portal:case", kwargs={"token": token})).content.decode()
    flat = html.replace(" ", "")
    assert TRUST_IBAN in flat
    assert SHOP_IBAN not in flat and OTHER_IBAN not in flat


def test_command_fees_sets_a_checked_schedule(money_world, tmp_path):
    good = tmp_path / "fees.json"
    good.write_text('{"default_rate": "12", "minimum_fee": "3.00", "mode": "gross"}', encoding="utf-8")
    out = io.StringIO()
    call_command("remittances", "fees", "shop", "--set", str(good), stdout=out)
    assert '"default_rate": "12"' in out.getvalue()
    bad = tmp_path / "bad.json"
    bad.write_text('{"default_rate": "12", "rules": [{"rate": "x"}]}', encoding="utf-8")
    with pytest.raises(CommandError, match=r"rules\[0\]\.rate"):
        call_command("remittances", "fees", "shop", "--set", str(bad), stdout=io.StringIO())


# --- property: any payments, any schedule ---------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payments=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 20000), st.integers(1, 20)), min_size=1, max_size=8),
    terms=st.tuples(
        st.decimals(min_value=0, max_value=60, places=2), st.integers(0, 2000), st.sampled_from(["net", "gross"])
    ),
)
def test_any_run_balances_and_remits_collected_minus_commission(money_world, place, payments, terms):
    w = money_world
    rate, minimum, mode = terms
    with transaction.atomic():
        sid = transaction.savepoint()
        fee_schedule_set(
            creditor=w.creditor,
            document={"default_rate": str(rate), "minimum_fee": f"{minimum / 100:.2f}", "mode": mode},
            actor=ACTOR,
        )
        cases = [place(f"P{i}", "150.00", email=f"d{i}@example.fr", last_name=f"Nom{i}").case for i in range(3)]
        for n, (which, minor, day) in enumerate(payments):
            _pay(cases[which], minor, f"h{n}", datetime(2026, 11, day, 12, tzinfo=PARIS))
        report = _run()
        _every_transaction_balances()
        for r in report.created:
            assert r.transfer_minor == r.collected_minor - r.deducted_minor
            assert r.deducted_minor + r.receivable_minor == r.commission_minor + r.vat_minor
            assert r.collected_minor == sum(r.items.values_list("amount_minor", flat=True))
            assert r.commission_minor == sum(r.lines.values_list("commission_minor", flat=True))
            assert all(0 <= line.commission_minor <= line.collected_minor for line in r.lines.all())
        assert account_balance(key=f"creditor:{w.creditor.pk}:payable:EUR") == 0
        transaction.savepoint_rollback(sid)


def test_command_due_exits_1_when_money_is_overdue(money_world, place):
    Creditor.objects.filter(pk=money_world.creditor.pk).update(remittance_iban="")
    _pay(place("INV-1", "120.50").case, 5000, "t1", datetime(2025, 1, 10, tzinfo=PARIS))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("remittances", "due", stdout=out)
    assert exit_.value.code == 1
    assert "2025-02-10  overdue" in out.getvalue()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent runs: PostgreSQL row locks")
def test_two_runs_at_once_make_one_remittance_and_one_file(money_world, place):
    _pay(place("INV-1", "120.50").case, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    _pay(
        place("INV-9", "80.00", creditor=money_world.other_creditor).case,
        8000,
        "t2",
        datetime(2026, 11, 18, tzinfo=PARIS),
    )
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker() -> None:
        try:
            start.wait()
            _run()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert Remittance.objects.count() == 2
    assert PayoutBatch.objects.count() == 1
    assert sorted(FeeInvoice.objects.values_list("sequence", flat=True)) == [1, 2]
    assert RemittanceItem.objects.count() == 2
    _every_transaction_balances()


def test_an_admin_confirms_a_file_executed_agents_and_creditors_cannot(money_world, place):
    w = money_world
    _pay(place("INV-1", "120.50").case, 5000, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    batch = _run().batch
    url = reverse("backoffice:payout_file_paid", args=[batch.pk])
    assert _client(w.agent).post(url).status_code in {403, 404}
    assert _client(w.creditor_user).post(url).status_code in {403, 404}
    admin = User.objects.create_user(username="boss", password=PASSWORD, role=User.Role.AGENCY_ADMIN, agency=w.agency)
    client = _client(admin)
    assert f'id="paid-{batch.pk}"' in client.get(reverse("backoffice:remittances")).content.decode()
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.PAID
    assert account_balance(key=f"trust:{w.agency.pk}:EUR") == 0


def test_a_credit_note_after_payment_lowers_what_is_remitted(money_world, place):
    placed = place("INV-1", "120.50")
    _pay(placed.case, 12050, "t1", datetime(2026, 11, 18, tzinfo=PARIS))
    place("INV-1", "100.00")  # the creditor lowers the claim: 20.50 becomes refundable to the debtor
    assert LedgerTransaction.objects.filter(code="claim.credit_note").exists()

    tomorrow = datetime.now(PARIS).date() + timedelta(days=1)  # the credit note is booked now
    report = _run(period_end=tomorrow, now=datetime.combine(tomorrow, datetime.min.time(), PARIS) + timedelta(hours=6))

    (r,) = report.created
    assert r.collected_minor == 10000
    assert sorted(r.items.values_list("amount_minor", flat=True)) == [-2050, 12050]
    assert report.skipped == []
