"""The case page's one-read selector (portal.selectors) agrees with the use cases' own selectors.

``case_page_read`` reads each table once for every section of the page and skips the sections a case
has no rows for; what it returns must be what ``case_claim_balances``, ``case_arrangements``,
``returnable_claims`` and the per-section queries return (invariant 1: balances from the ledger).
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from relance.cases.models import CaseClaim
from relance.cases.selectors import case_claim_balances
from relance.claims.selectors import evidence_list_for_case
from relance.claims.services import evidence_attach
from relance.comms.models import Action
from relance.core.money import Money
from relance.ledger.models import Posting
from relance.payments.arrangement_models import PaymentPlan, Promise
from relance.payments.arrangement_selectors import case_arrangements
from relance.payments.disputes import dispute_open, dispute_uphold
from relance.payments.models import Dispute, Payment, Receipt, ReturnPolicy, ReturnRequest
from relance.payments.returns import return_request, returnable_claims
from relance.payments.services import payment_record
from relance.portal.selectors import (
    _claim_lines,
    _lines_and_sections,
    _sections_present,
    case_page_read,
    from_row,
    portal_case_for_link,
    portal_case_lines_for_link,
    portal_case_page_for_link,
)
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _expected(case) -> dict:
    """The page's figures and rows, computed the way the sections used to compute them."""
    case.refresh_from_db()
    balances = case_claim_balances(case=case)
    keys = [b.claim.ledger_key for b in balances]
    credited = Posting.objects.filter(transaction__code="claim.credit_note", account__key__in=keys).aggregate(
        c=Sum("credit"), d=Sum("debit")
    )
    found = case_arrangements(actor=Actor.for_debtor(case_id=case.pk), case_id=case.pk)
    hidden = case.status in {"disputed", "on_hold"} or case.is_closed
    payments = list(Payment.objects.filter(case=case).prefetch_related("reversals").order_by("-received_at"))
    return {
        "lines": [(b.claim.pk, b.outstanding_minor, b.paid_minor) for b in balances],
        "credited": (credited["c"] or 0) - (credited["d"] or 0),
        "payments": [p.pk for p in payments],
        "receipts": [r.pk for r in Receipt.objects.filter(payment__case=case).order_by("-issued_at")],
        "reversals": [rv.pk for p in payments for rv in p.reversals.all()],
        "evidence": [(e.pk, e.claim.invoice_number) for e in evidence_list_for_case(case=case)],
        "plan": None if hidden or found.plan is None else found.plan.pk,
        "promise": None if hidden or found.promise is None else found.promise.pk,
        "disputes": [
            (d.pk, [f.pk for f in d.files.all()]) for d in Dispute.objects.filter(case=case).order_by("-created_at")
        ],
        "returns": [
            (r.pk, r.claim.invoice_number) for r in ReturnRequest.objects.filter(case=case).order_by("-created_at")
        ],
        "returnable": [c.pk for c in returnable_claims(case=case)],
        "history": [
            a.pk
            for a in Action.objects.filter(
                case=case, status__in=[Action.Status.SENT, Action.Status.DELIVERED, Action.Status.BOUNCED]
            ).order_by("-sent_at")[:50]
        ],
    }


def _read(case) -> dict:
    case = portal_case_for_link(case_id=case.pk, reference=case.reference)
    page = case_page_read(case=case)
    return {
        "lines": [(line.claim.pk, line.outstanding_minor, line.paid_minor) for line in page.lines],
        "credited": page.credited_minor,
        "payments": [p.pk for p in page.payments],
        "receipts": [r.pk for r in page.receipts],
        "reversals": [rv.pk for rv in page.reversals],
        "evidence": [(e.pk, e.claim.invoice_number) for e in page.evidence],
        "plan": page.plan.pk if page.plan else None,
        "promise": page.promise.pk if page.promise else None,
        "disputes": [(d.pk, [f.pk for f in d.files.all()]) for d in page.disputes],
        "returns": [(r.pk, r.claim.invoice_number) for r in page.returns],
        "returnable": [c.pk for c in page.returnable],
        "history": [a.pk for a in page.history],
    }


def _action(case, status: str, minutes_ago: int) -> Action:
    when = timezone.now() - timedelta(minutes=minutes_ago)
    return Action.objects.create(
        case=case,
        debtor=case.debtor,
        channel="email",
        template="reminder",
        status=status,
        scheduled_at=when,
        sent_at=when if status != Action.Status.QUEUED else None,
    )


def _pay(case, amount: str, ref: str) -> Payment:
    return payment_record(
        case=case, amount=Money.parse(amount, "EUR"), method=Payment.Method.SANDBOX, external_ref=ref, actor=SYSTEM
    )


def test_a_new_case_reads_no_optional_section_and_agrees(place):
    case = place("INV-1", "120.50").case
    assert not any(_sections_present(case).values())
    assert _read(case) == _expected(case)


def test_each_optional_section_is_found_on_its_own(place, world):
    case = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand").case
    seen = set()

    def check(name: str) -> None:
        seen.add(name)
        assert {k for k, v in _sections_present(case).items() if v} == seen, name
        assert not any(_sections_present(other).values())  # another debtor's case sees none of it

    _action(case, Action.Status.QUEUED, 5)  # not sent yet: not in the history
    assert not any(_sections_present(case).values())
    _action(case, Action.Status.BOUNCED, 4)
    check("history")
    _pay(case, "10.00", "s-1")
    check("payments")
    evidence_attach(claim=case.claims.get(), kind="invoice", content=io.BytesIO(PDF), filename="f.pdf", actor=SYSTEM)
    check("evidence")
    PaymentPlan.objects.create(
        case=case, status="cancelled", method="transfer", total_minor=100, currency="EUR", months=2,
        first_due=timezone.localdate(), outstanding_at_start_minor=100, within_policy=True,
    )  # fmt: skip
    check("plans")
    Promise.objects.create(
        case=case, due_date=timezone.localdate(), amount_minor=100, currency="EUR", outstanding_at_promise_minor=100,
        status="kept",
    )  # fmt: skip
    assert not _sections_present(case)["promise"]  # only a pending promise is shown
    Promise.objects.create(
        case=case, due_date=timezone.localdate() + timedelta(days=3), amount_minor=100, currency="EUR",
        outstanding_at_promise_minor=100,
    )  # fmt: skip
    check("promise")
    read = _read(case)
    assert read == _expected(case)
    assert read["plan"] is not None and read["promise"] is not None
    ReturnPolicy.objects.create(creditor=world.creditor, returns_allowed=False)
    assert not _sections_present(case)["policy"]
    ReturnPolicy.objects.filter(creditor=world.creditor).update(returns_allowed=True)
    seen.add("policy")
    assert {k for k, v in _sections_present(case).items() if v} == seen
    assert {k for k, v in _sections_present(other).items() if v} == {"policy"}  # the creditor's, for both
    return_request(case=case, claim_id=case.claims.get().pk, note="", actor=SYSTEM)
    seen.add("returns")
    assert {k for k, v in _sections_present(case).items() if v} == seen
    dispute_open(case=case, reason="other", statement="Not mine", files=[("p.pdf", io.BytesIO(PDF))], actor=SYSTEM)
    seen.add("disputes")
    assert {k for k, v in _sections_present(case).items() if v} == seen
    assert _read(case) == _expected(case)


def test_a_busy_case_agrees_with_the_use_cases(place, world):
    case = place("INV-1", "120.50").case
    _pay(case, "20.50", "s-1")
    _pay(case, "5.00", "s-2")
    evidence_attach(claim=case.claims.get(), kind="invoice", content=io.BytesIO(PDF), filename="f.pdf", actor=SYSTEM)
    for n, status in enumerate(["sent", "delivered", "failed", "bounced"]):
        _action(case, status, 10 - n)
    ReturnPolicy.objects.create(creditor=world.creditor, returns_allowed=True, instructions="Label inside")
    assert _read(case) == _expected(case)
    assert _read(case)["returnable"] == [case.claims.get().pk]
    # A dispute upheld for part of the amount: a credit note, not a payment.
    dispute = dispute_open(case=case, reason="wrong_amount", statement="Too much", files=[], actor=SYSTEM)
    dispute_uphold(dispute=dispute, reduce_minor=1000, note="Agreed", actor=Actor.system("creditor"))
    case.refresh_from_db()
    read = _read(case)
    assert read == _expected(case)
    assert read["credited"] == 1000
    page = case_page_read(case=portal_case_for_link(case_id=case.pk, reference=case.reference))
    sums = [(line.outstanding_minor, line.credited_minor, line.paid_minor) for line in page.lines]
    assert all(type(value) is int for row in sums for value in row)  # minor units, as Money wants them
    assert read["lines"][0][1] == 12050 - 2050 - 500 - 1000


def test_the_open_plan_wins_over_a_later_closed_one(place):
    case = place("INV-1", "120.50").case
    common = {"method": "transfer", "total_minor": 100, "currency": "EUR", "months": 2, "outstanding_at_start_minor": 1}
    common["within_policy"] = True
    active = PaymentPlan.objects.create(case=case, status="active", first_due=timezone.localdate(), **common)
    PaymentPlan.objects.create(case=case, status="cancelled", first_due=timezone.localdate(), **common)
    read = _read(case)
    assert read == _expected(case)
    assert read["plan"] == active.pk


def test_the_link_reads_only_its_own_case(place):
    case = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand").case
    assert portal_case_for_link(case_id=case.pk, reference=other.reference) is None
    found = portal_case_for_link(case_id=case.pk, reference=case.reference)
    assert (found.pk, found.creditor.display_name, found.creditor.agency.legal_name) == (
        case.pk,
        case.creditor.display_name,
        case.creditor.agency.legal_name,
    )
    assert found.debtor.postcode == case.debtor.postcode  # a field not read at first still loads


def _lines(lines) -> list[tuple]:
    return [(x.claim.pk, x.claim.invoice_number, x.outstanding_minor, x.credited_minor) for x in lines]


def test_claims_and_sections_in_one_statement_agree_with_the_claims_statement(place):
    first = place("INV-1", "120.50", due_days_ago=5).case
    second = place("INV-2", "80.00", due_days_ago=20).case  # same debtor: the same case, due earlier
    assert second.pk == first.pk
    third = place("INV-3", "10.00", due_days_ago=20).case
    _pay(first, "30.00", "s-1")
    lines, present = _lines_and_sections(first)
    assert len(lines) == 3
    assert _lines(lines) == _lines(_claim_lines(first))  # same rows, same order (due date, then id)
    assert [x.claim.invoice_number for x in lines] == ["F-INV-2", "F-INV-3", "F-INV-1"]
    assert {k for k, v in present.items() if v} == {"payments"}
    assert sum(x.outstanding_minor for x in lines) == 21050 - 3000
    assert third.pk == first.pk


def test_a_case_without_claims_still_reads_its_sections(place):
    case = place("INV-1", "120.50").case
    _action(case, Action.Status.SENT, 2)
    CaseClaim.objects.filter(case=case).delete()
    lines, present = _lines_and_sections(case)
    assert lines == []
    assert {k for k, v in present.items() if v} == {"history"}


def _page_tuple(page) -> tuple:
    return (
        _lines(page.lines),
        [p.pk for p in page.payments],
        [r.pk for r in page.receipts],
        [e.pk for e in page.evidence],
        page.plan and page.plan.pk,
        page.promise and page.promise.pk,
        page.arrangements_hidden,
        [d.pk for d in page.disputes],
        [r.pk for r in page.returns],
        [c.pk for c in page.returnable],
        [a.pk for a in page.history],
    )


def test_the_page_for_a_link_in_one_statement_is_the_page_of_the_linked_case(place, world, django_assert_num_queries):
    case = place("INV-1", "120.50").case
    other = place("OTHER-1", "60.00", creditor=world.other_creditor, email="lea@example.fr", last_name="Martin").case
    _pay(case, "20.50", "s-1")
    _action(case, Action.Status.SENT, 3)
    ReturnPolicy.objects.create(creditor=world.creditor, returns_allowed=True)
    with django_assert_num_queries(1):  # a new case: link, claims and sections in one statement
        fresh = portal_case_page_for_link(case_id=other.pk, reference=other.reference)
    assert fresh is not None and fresh.lines[0].claim.invoice_number == "F-OTHER-1"
    assert not fresh.returnable  # the other creditor has no return policy

    page = portal_case_page_for_link(case_id=case.pk, reference=case.reference)
    linked = portal_case_for_link(case_id=case.pk, reference=case.reference)
    assert page is not None and linked is not None
    assert _page_tuple(page) == _page_tuple(case_page_read(case=linked))
    assert page.returnable  # the creditor's policy, found through the case row
    assert (page.case.pk, page.case.reference, page.case.status, page.case.creditor.legal_name) == (
        linked.pk,
        linked.reference,
        linked.status,
        linked.creditor.legal_name,
    )
    assert page.case.creditor.agency.trust_iban == linked.creditor.agency.trust_iban
    assert page.outstanding_minor == 10000

    found = portal_case_lines_for_link(case_id=case.pk, reference=case.reference)
    assert found is not None and found[0].pk == case.pk and _lines(found[1]) == _lines(page.lines)


def test_the_page_for_a_link_names_its_case_only(place):
    case = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand").case
    assert portal_case_page_for_link(case_id=case.pk, reference=other.reference) is None
    assert portal_case_lines_for_link(case_id=case.pk, reference=other.reference) is None
    assert portal_case_page_for_link(case_id=10**9, reference=case.reference) is None


@pytest.mark.postgres_only
def test_on_postgresql_the_fixed_statements_are_prepared_once_per_session(place, world, django_assert_num_queries):
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    case = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand").case

    def prepared() -> dict[str, str]:  # protocol-level prepared statements of this session: name -> text
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, statement FROM pg_prepared_statements WHERE NOT from_sql")
            return dict(cursor.fetchall())

    before = prepared()
    with django_assert_num_queries(1):  # prepared, bound and run in one round trip, logged as one query
        first = portal_case_page_for_link(case_id=case.pk, reference=case.reference)
    assert portal_case_for_link(case_id=case.pk, reference=case.reference) is not None
    names = prepared()
    added = {name: text for name, text in names.items() if name not in before}
    assert len(added) == 2  # the page's statement and the link's
    assert all("$1" in text and case.reference not in text for text in added.values())  # parameters, not values
    for _ in range(3):  # later reads bind and run the same statements, whatever the case and the id's size
        assert portal_case_page_for_link(case_id=other.pk, reference=other.reference).case.pk == other.pk
        assert portal_case_page_for_link(case_id=10**12, reference=case.reference) is None
        assert portal_case_for_link(case_id=case.pk, reference=case.reference) is not None
    assert prepared() == names
    try:  # psycopg forgets its statements at a rollback, even of a savepoint, and prepares them again
        with transaction.atomic():
            assert portal_case_page_for_link(case_id=case.pk, reference=case.reference) is not None
            raise RuntimeError
    except RuntimeError:
        pass
    again = portal_case_page_for_link(case_id=case.pk, reference=case.reference)
    assert portal_case_for_link(case_id=case.pk, reference=case.reference) is not None
    assert sorted(prepared().values()) == sorted(names.values())
    assert _page_tuple(again) == _page_tuple(first)
    _pay(case, "20.50", "s-1")  # the prepared statement reads today's rows, not a cached result
    paid = portal_case_page_for_link(case_id=case.pk, reference=case.reference)
    assert paid.outstanding_minor == 10000
    assert [p.pk for p in paid.payments] == [Payment.objects.get(case=case).pk]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_rollback_or_a_new_connection_prepares_the_statements_again(place, world):
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    case = place("INV-1", "120.50").case
    first = portal_case_page_for_link(case_id=case.pk, reference=case.reference)
    with pytest.raises(RuntimeError), transaction.atomic():  # the outermost block: the connection rolls back
        assert portal_case_page_for_link(case_id=case.pk, reference=case.reference) is not None
        raise RuntimeError
    again = portal_case_page_for_link(case_id=case.pk, reference=case.reference)
    assert _page_tuple(again) == _page_tuple(first)
    assert portal_case_for_link(case_id=case.pk, reference=case.reference).pk == case.pk
    connection.close()  # a new connection, a new session: prepared again there
    assert _page_tuple(portal_case_page_for_link(case_id=case.pk, reference=case.reference)) == _page_tuple(first)


def _row(instance, names):
    return tuple(getattr(instance, name) for name in names)


@pytest.mark.parametrize("model_name", ["case", "creditor", "agency", "claim"])
@pytest.mark.parametrize("fields", ["few", "all"])
def test_from_row_is_from_db(place, model_name, fields):
    from django.db import connection

    case = place("INV-1", "120.50").case
    instance = {
        "case": case,
        "creditor": case.creditor,
        "agency": case.creditor.agency,
        "claim": CaseClaim.objects.get(case=case).claim,
    }[model_name]
    model = type(instance)
    concrete = [f.attname for f in model._meta.concrete_fields]
    names = concrete if fields == "all" else [concrete[0], concrete[-1]]
    values = _row(instance, names)
    fast, stock = from_row(model, names, values), model.from_db(connection.alias, names, values)
    assert type(fast) is type(stock) is model
    assert {k: v for k, v in vars(fast).items() if k != "_state"} == {
        k: v for k, v in vars(stock).items() if k != "_state"
    }
    assert (fast._state.adding, fast._state.db) == (stock._state.adding, stock._state.db) == (False, "default")
    assert fast.get_deferred_fields() == stock.get_deferred_fields()
    assert fast == stock and fast.pk == instance.pk
    for name in concrete:  # a deferred field loads on access, as on a from_db instance
        assert getattr(fast, name) == getattr(instance, name)


def test_from_row_sends_the_init_signals_when_a_model_has_receivers(place):
    from django.db import connection
    from django.db.models.signals import post_init

    from relance.tenancy.models import Agency

    agency = place("INV-1", "120.50").case.creditor.agency
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Agency)
    try:
        built = from_row(Agency, ["id", "legal_name"], (agency.pk, agency.legal_name))
    finally:
        post_init.disconnect(receiver, sender=Agency)
    assert seen == [built]
    assert built._state.db == connection.alias and not built._state.adding
