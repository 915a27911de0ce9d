"""Dashboards: figures computed from the real services' data, scoped per creditor, exportable.

Tenant isolation (invariant 6): a creditor user's figures never include another creditor's cases, the
query string cannot widen its scope, and peer quartiles never name a creditor.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from relance.backoffice import metrics
from relance.comms.models import Action
from relance.core.money import Money
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pay(case, amount: str, ref: str, *, when: datetime | None = None):
    return payment_record(
        case=case,
        amount=Money.parse(amount, "EUR"),
        method="transfer",
        external_ref=ref,
        actor=SYSTEM,
        received_at=when or timezone.now(),
    )


def _contact(case, channel: str, *, sent_at: datetime, key: str) -> Action:
    return Action.objects.create(
        case=case,
        debtor=case.debtor,
        channel=channel,
        template="t",
        step_key=key,
        status=Action.Status.SENT,
        scheduled_at=sent_at,
        sent_at=sent_at,
    )


@pytest.fixture
def portfolio(world, place):
    """Shop: 100 € + 300 € placed today, 50 € paid. Other: 1,000 € placed, 900 € paid."""
    a = place("INV-A", "100.00", due_days_ago=10).case
    b = place("INV-B", "300.00", due_days_ago=35, email="b@example.fr", last_name="Bernard").case
    _pay(a, "50.00", "PAY-A")
    other = place(
        "OTH-1", "1000.00", creditor=world.other_creditor, due_days_ago=20, email="o@example.fr", last_name="Other"
    ).case
    _pay(other, "900.00", "PAY-O")
    return a, b, other


def test_kpis_of_one_creditor_come_from_its_own_cases_only(world, portfolio):
    today = timezone.localdate()
    shop = metrics.kpis(metrics.Scope(world.agency.pk, world.creditor.pk), today=today)
    assert (shop.placed_minor, shop.collected_minor, shop.outstanding_minor) == (40000, 5000, 35000)
    assert shop.recovery_rate == Decimal("12.5")
    assert shop.dso_days == Decimal("78.8")  # 350 outstanding ÷ 400 placed in 90 days × 90
    agency = metrics.kpis(metrics.Scope(world.agency.pk), today=today)
    assert (agency.placed_minor, agency.collected_minor, agency.outstanding_minor) == (140000, 95000, 45000)


def test_ageing_buckets_outstanding_by_days_past_due_from_the_ledger(world, portfolio):
    table = metrics.ageing(metrics.Scope(world.agency.pk, world.creditor.pk), today=timezone.localdate())
    buckets = [row[1:] for row in table.rows]  # 0–30, 31–60, 61–90, 91–180, over 180 days
    assert buckets[0] == [Decimal("50.00"), 1]  # 100 € due 10 days ago, half paid
    assert buckets[1] == [Decimal("300.00"), 1]  # due 35 days ago
    assert sum(row[1] for row in table.rows) == Decimal("350.00")


def test_liquidation_curve_cumulates_collected_over_placed_by_month_since_placement(world, place):
    case = place("INV-L", "200.00").case
    placed = timezone.now() - timedelta(days=70)
    type(case).objects.filter(pk=case.pk).update(placed_at=placed)
    _pay(case, "20.00", "L1", when=placed + timedelta(days=1))
    _pay(case, "30.00", "L2", when=placed + timedelta(days=40))
    table = metrics.liquidation(metrics.Scope(world.agency.pk, world.creditor.pk), today=timezone.localdate())
    (row,) = table.rows
    assert row[0] == timezone.localtime(placed).strftime("%Y-%m")
    month_of_second = (timezone.localtime(placed + timedelta(days=40)).month - timezone.localtime(placed).month) % 12
    assert row[1] == Decimal("10.0")
    assert row[1 + month_of_second] == Decimal("25.0")
    assert row[-1] is None  # months that have not happened yet are not drawn as flat lines


def test_a_contact_converts_when_a_payment_follows_within_seven_days(world, place):
    now = timezone.now()
    paid = place("INV-C1", "80.00").case
    unpaid = place("INV-C2", "90.00", email="c2@example.fr", last_name="Chose").case
    _contact(paid, "email", sent_at=now - timedelta(days=3), key="e1")
    _contact(paid, "sms", sent_at=now - timedelta(days=20), key="s1")  # the payment came 20 days later
    _contact(unpaid, "email", sent_at=now - timedelta(days=2), key="e2")
    _pay(paid, "80.00", "C1", when=now)
    table = metrics.channels(metrics.Scope(world.agency.pk, world.creditor.pk))
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["E-mail"][:3] == [2, 1, Decimal("50.0")]
    assert rows["SMS"][:3] == [1, 0, Decimal("0.0")]
    assert rows["SMS"][3] == Decimal("0.07")  # the default unit cost of an SMS
    figures = metrics.kpis(metrics.Scope(world.agency.pk, world.creditor.pk), today=timezone.localdate())
    assert figures.cost_per_euro == Decimal("0.001")  # 7 cents of contacts for 80 € collected


def test_a_creditor_user_sees_only_its_own_figures_whatever_the_query_string(world, portfolio):
    client = _client(world.creditor_user)
    page = client.get("/bo/dashboard/", {"creditor": world.other_creditor.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert "400,00" in html.replace("\u202f", " ").replace("\xa0", " ")  # its own placed amount
    assert "1 400,00" not in html.replace("\u202f", " ").replace("\xa0", " ")
    assert world.other_creditor.legal_name not in html
    rows = list(csv.reader(io.StringIO(client.get("/bo/dashboard/ageing.csv").content.decode("utf-8-sig"))))
    assert sum(Decimal(r[1]) for r in rows[1:]) == Decimal("350.00")


def test_agency_staff_choose_a_creditor_of_their_agency_only(world, portfolio):
    client = _client(world.agent)
    assert "1 400,00" in client.get("/bo/dashboard/").content.decode().replace("\u202f", " ").replace("\xa0", " ")
    one = client.get("/bo/dashboard/", {"creditor": world.other_creditor.pk}).content.decode()
    assert "1 000,00" in one.replace("\u202f", " ").replace("\xa0", " ")
    stranger = Creditor.objects.create(agency=Agency.objects.create(legal_name="Elsewhere"), slug="x", legal_name="X")
    assert client.get("/bo/dashboard/", {"creditor": stranger.pk}).status_code == 404
    assert client.get("/bo/dashboard/", {"creditor": "1 OR 1=1"}).status_code == 404
    assert Client().get("/bo/dashboard/").status_code == 302


def test_charts_are_svg_images_with_their_own_strict_policy(world, portfolio):
    response = _client(world.agent).get("/bo/dashboard/collected.svg")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    assert "script-src" not in response["Content-Security-Policy"]
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    svg = response.content.decode()
    assert svg.startswith("<svg") and 'class="title plot_title"' in svg
    assert "<script" not in svg and "http://kozea" not in svg
    assert _client(world.agent).get("/bo/dashboard/nope.svg").status_code == 404


def test_every_table_exports_as_csv_and_xlsx_with_the_same_figures(world, portfolio):
    client = _client(world.agent)
    for name in metrics.TABLES:
        table = metrics.table(name, metrics.Scope(world.agency.pk), today=timezone.localdate())
        rows = list(csv.reader(io.StringIO(client.get(f"/bo/dashboard/{name}.csv").content.decode("utf-8-sig"))))
        assert rows[0] == table.columns
        assert len(rows) == len(table.rows) + 1
        response = client.get(f"/bo/dashboard/{name}.xlsx")
        assert response["Content-Disposition"].startswith("attachment;")
        sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
        values = [list(r) for r in sheet.iter_rows(values_only=True)]
        assert values[0] == table.columns
        assert str(values[1][0]) == rows[1][0]
        assert Decimal(str(values[1][1] or 0)) == (Decimal(rows[1][1]) if rows[1][1] else 0)
    assert client.get("/bo/dashboard/ageing.exe").status_code == 404


def test_peer_quartiles_need_enough_creditors_and_never_name_one(world, portfolio, settings):
    client = _client(world.creditor_user)
    assert 'id="peers"' in client.get("/bo/dashboard/").content.decode()
    assert client.get("/bo/dashboard/peers.csv").status_code == 404  # 2 creditors < the minimum of 5
    settings.DASHBOARD_PEER_MINIMUM = 2
    table = metrics.peer_quartiles(agency_id=world.agency.pk, creditor_id=world.creditor.pk, today=timezone.localdate())
    assert table is not None
    recovery = table.rows[0]  # the recovery rate comes first
    assert recovery[1] == Decimal("12.5")
    assert recovery[2] <= recovery[3] <= recovery[4]
    assert recovery[4] <= Decimal("90.0")  # the other creditor recovered 90 %: the upper bound
    body = client.get("/bo/dashboard/peers.csv").content.decode("utf-8-sig")
    assert world.other_creditor.legal_name not in body and world.other_creditor.slug not in body


def test_exported_text_cannot_run_as_a_spreadsheet_formula():
    from relance.backoffice.dashboards import _cell

    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert _cell("-2+3") == "'-2+3"
    assert _cell(Decimal("-2.50")) == Decimal("-2.50")
    assert _cell(None) == ""


def test_disputes_are_counted_by_reason_and_answer(world, place, settings, tmp_path):
    import io as _io

    from relance.payments.disputes import dispute_open, dispute_uphold

    settings.MEDIA_ROOT = tmp_path
    cases = [place(f"INV-Z{n}", "30.00", email=f"z{n}@example.fr", last_name=f"Zed{n}").case for n in range(3)]
    disputes = [
        dispute_open(
            case=case,
            reason=reason,
            statement="Pas reçu",
            files=[("note.pdf", _io.BytesIO(b"%PDF-1.4\n%%EOF\n"))],
            actor=Actor.for_debtor(case_id=case.pk),
        )
        for case, reason in zip(cases, ["not_received", "not_received", "defective"], strict=True)
    ]
    dispute_uphold(dispute=disputes[0], reduce_minor=None, note="perdu", actor=Actor.for_user(world.creditor_user))
    table = metrics.disputes(metrics.Scope(world.agency.pk, world.creditor.pk))
    by_reason = {row[0]: row[1:] for row in table.rows}
    assert len(table.rows) == 7  # every reason, even those never given
    not_received, defective = table.rows[0][1:], table.rows[2][1:]
    assert not_received == [2, Decimal("66.7"), 1, 1, 0]
    assert defective == [1, Decimal("33.3"), 1, 0, 0]
    assert sum(v[0] for v in by_reason.values()) == 3
    figures = metrics.kpis(metrics.Scope(world.agency.pk, world.creditor.pk), today=timezone.localdate())
    assert figures.dispute_rate == Decimal("100.0")  # all three cases were disputed at some point


def test_promises_kept_are_counted_once_their_date_has_passed(world, place):
    from datetime import date as _date

    from relance.payments.arrangements import arrangements_review, promise_create

    kept_case = place("INV-P1", "100.00").case
    broken_case = place("INV-P2", "100.00", email="p2@example.fr", last_name="Deux").case
    pending_case = place("INV-P3", "100.00", email="p3@example.fr", last_name="Trois").case
    today = timezone.localdate()
    for case in (kept_case, broken_case, pending_case):
        on = today + timedelta(days=3 if case is not pending_case else 20)
        promise_create(case=case, on=on, amount=Money.parse("100.00", "EUR"), actor=Actor.for_debtor(case_id=case.pk))
    _pay(kept_case, "100.00", "KEPT")
    later = timezone.now() + timedelta(days=10)
    arrangements_review(actor=SYSTEM, now=later)
    figures = metrics.kpis(metrics.Scope(world.agency.pk, world.creditor.pk), today=_date.today())
    assert figures.promise_kept_rate == Decimal("50.0")  # one kept, one broken, one not yet due
