"""payment_record against the database: ledger, allocation, case status, audit in one transaction.

Invariant 1: a claim's outstanding amount is derived from the ledger. Allocation among claims:
oldest due first (C. civ. 1342-10 [S]); an overpayment is a refundable balance, never kept.
FR-COL-02: the money lands on the agency's trust account. FR-COL-12: every payment is reported
(here: audited as ``payment.received``).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relance.audit.models import AuditEvent
from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.cases.selectors import case_claim_balances, case_outstanding_minor
from relance.cases.services import case_transition
from relance.cases.status import Status
from relance.core.errors import ConflictError, ValidationError
from relance.core.money import Money
from relance.ledger.models import LedgerTransaction, Posting
from relance.ledger.services import account_balance, account_balances, ledger_reverse
from relance.payments.models import Payment
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


def _pay(case: Case, minor: int, ref: str, *, method: str = Payment.Method.TRANSFER, currency: str = "EUR") -> Payment:
    return payment_record(case=case, amount=Money(minor, currency), method=method, external_ref=ref, actor=ACTOR)


def _written() -> tuple[int, int, int, int]:
    return (
        Payment.objects.count(),
        LedgerTransaction.objects.count(),
        Posting.objects.count(),
        AuditEvent.objects.count(),
    )


def test_full_payment_pays_the_case_and_outstanding_is_derived_from_the_ledger(world, place):
    placed = place("INV-1", "120.50")
    case = placed.case
    assert case_outstanding_minor(case=case) == 12050

    payment = _pay(case, 12050, "bank-1")

    case.refresh_from_db()
    assert case.status == Status.PAID
    assert case.closed_at is not None
    assert case_outstanding_minor(case=case) == 0
    assert account_balance(key=placed.claim.ledger_key) == 0
    agency = world.agency.pk
    assert account_balance(key=f"trust:{agency}:EUR") == 12050  # FR-COL-02
    assert account_balance(key=f"creditor:{world.creditor.pk}:payable:EUR") == -12050
    assert payment.ledger_transaction.code == "payment.received"
    # Outstanding is read from postings, not stored: undoing the ledger entry brings it back.
    ledger_reverse(txn=payment.ledger_transaction, code="payment.reversed")
    assert case_outstanding_minor(case=case) == 12050


def test_partial_payment_keeps_the_case_active_with_the_rest_outstanding(place):
    case = place("INV-1", "120.50").case
    case_transition(case=case, to=Status.ACTIVE, actor=ACTOR)

    _pay(case, 5000, "bank-1")

    case.refresh_from_db()
    assert case.status == Status.ACTIVE
    assert case.closed_at is None
    assert case_outstanding_minor(case=case) == 7050
    (balance,) = case_claim_balances(case=case)
    assert balance.paid_minor == 5000

    _pay(case, 7050, "bank-2")
    case.refresh_from_db()
    assert case.status == Status.PAID
    assert case_outstanding_minor(case=case) == 0


def test_overpayment_goes_to_a_refundable_account(world, place):
    placed = place("INV-1", "120.50")
    case = placed.case

    _pay(case, 15000, "bank-1")

    case.refresh_from_db()
    assert case.status == Status.PAID
    assert case_outstanding_minor(case=case) == 0
    balances = account_balances(
        keys=[
            f"overpayment:case:{case.pk}",
            f"trust:{world.agency.pk}:EUR",
            f"creditor:{world.creditor.pk}:payable:EUR",
        ]
    )
    # Refundable to the debtor (a liability, credit balance), not added to the creditor's share.
    assert balances[f"overpayment:case:{case.pk}"] == -2950
    assert balances[f"trust:{world.agency.pk}:EUR"] == 15000
    assert balances[f"creditor:{world.creditor.pk}:payable:EUR"] == -12050
    event = AuditEvent.objects.get(verb="payment.received", subject_id=str(case.pk))
    assert event.data["overpayment"] == 2950
    assert event.data["outstanding"] == 0


def test_payment_is_idempotent_on_method_and_external_ref(place):
    case = place("INV-1", "120.50").case
    first = _pay(case, 5000, "psp-123", method=Payment.Method.CARD)
    before = _written()

    again = _pay(case, 5000, "psp-123", method=Payment.Method.CARD)

    assert again.pk == first.pk
    assert _written() == before
    assert case_outstanding_minor(case=case) == 7050
    # Another method with the same reference is another payment (refs are per provider).
    _pay(case, 1000, "psp-123", method=Payment.Method.TRANSFER)
    assert case_outstanding_minor(case=case) == 6050


def test_a_reused_external_ref_with_other_content_is_a_conflict_not_a_lost_payment(place):
    case = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul.durand@example.fr", last_name="Durand").case
    assert other.pk != case.pk
    _pay(case, 5000, "psp-123", method=Payment.Method.CARD)
    before = _written()

    with pytest.raises(ConflictError):
        _pay(case, 6000, "psp-123", method=Payment.Method.CARD)
    with pytest.raises(ConflictError):
        _pay(other, 5000, "psp-123", method=Payment.Method.CARD)

    assert _written() == before
    assert case_outstanding_minor(case=other) == 8000


def test_two_claims_in_one_case_oldest_due_is_paid_first(place):
    # The newer claim is placed first, so database order and due-date order differ.
    newer = place("INV-NEW", "30.00", due_days_ago=5)
    older = place("INV-OLD", "50.00", due_days_ago=30)
    assert older.case.pk == newer.case.pk
    case = older.case

    _pay(case, 4000, "bank-1")
    assert account_balances(keys=[older.claim.ledger_key, newer.claim.ledger_key]) == {
        older.claim.ledger_key: 1000,
        newer.claim.ledger_key: 3000,
    }

    _pay(case, 2500, "bank-2")
    assert account_balances(keys=[older.claim.ledger_key, newer.claim.ledger_key]) == {
        older.claim.ledger_key: 0,
        newer.claim.ledger_key: 1500,
    }
    event = AuditEvent.objects.filter(verb="payment.received").order_by("-seq").first()
    assert event.data["allocation"] == {older.claim.ledger_key: 1000, newer.claim.ledger_key: 1500}


@pytest.mark.parametrize(
    ("minor", "currency", "field"),
    [(0, "EUR", "amount"), (-100, "EUR", "amount"), (10**30, "EUR", "amount"), (12050, "USD", "currency")],
)
def test_invalid_amounts_are_refused_naming_the_field_and_nothing_is_written(place, minor, currency, field):
    case = place("INV-1", "120.50").case
    before = _written()

    with pytest.raises(ValidationError) as exc:
        _pay(case, minor, "bank-x", currency=currency)

    assert exc.value.fields["field"] == field
    assert exc.value.status == 422
    assert _written() == before
    assert case_outstanding_minor(case=case) == 12050


def test_every_payment_leaves_an_audit_event(place):
    case = place("INV-1", "120.50").case
    payments = [_pay(case, 1000, "b1"), _pay(case, 2000, "b2", method=Payment.Method.SANDBOX)]

    events = list(
        AuditEvent.objects.filter(verb="payment.received", subject_type="cases.case", subject_id=str(case.pk))
    )
    assert [e.data["payment"] for e in events] == [p.pk for p in payments]
    assert [e.data["amount"] for e in events] == [1000, 2000]
    assert [e.data["outstanding"] for e in events] == [11050, 9050]
    assert events[1].data["method"] == "sandbox"
    assert audit_verify()[1] is None


_example = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    claims=st.lists(st.integers(min_value=1, max_value=50_000), min_size=1, max_size=3),
    payments=st.lists(st.integers(min_value=1, max_value=60_000), max_size=5),
)
def test_property_claims_plus_allocated_is_the_original_total(place, claims, payments):
    # A fresh debtor per example, so every example gets its own case.
    n = next(_example)
    placed = [
        place(f"P{n}-{i}", str(Money(amount, "EUR").to_decimal()), email=f"p{n}@example.fr", due_days_ago=10 + i)
        for i, amount in enumerate(claims)
    ]
    case = placed[0].case
    keys = [p.claim.ledger_key for p in placed]
    total = sum(claims)
    payable = f"creditor:{case.creditor_id}:payable:EUR"  # shared by every example: take a baseline
    payable_before = account_balance(key=payable)
    paid = 0
    for i, amount in enumerate(payments):
        _pay(case, amount, f"P{n}-pay-{i}")
        paid += amount
        balances = account_balances(keys=keys)
        allocated = payable_before - account_balance(key=payable)
        assert all(b >= 0 for b in balances.values())
        outstanding = case_outstanding_minor(case=case)
        assert outstanding >= 0
        assert sum(balances.values()) + allocated == total
        assert outstanding == max(0, total - paid)
        assert -account_balance(key=f"overpayment:case:{case.pk}") == paid - allocated
    case.refresh_from_db()
    assert (case.status == Status.PAID) == (paid >= total)
