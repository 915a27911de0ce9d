"""Ledger services against the database: balanced writes, refusals, immutability, idempotency.

Invariant 1 (DESIGN.md): every ledger transaction balances; entries are never edited. The pure
validator guards both databases; on PostgreSQL a deferred constraint trigger also guards commits
made behind ``ledger_post``'s back (migration ledger 0002).
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from relance.core.errors import ConflictError, UnbalancedTransactionError, ValidationError
from relance.ledger.balance import Line
from relance.ledger.models import Account, LedgerTransaction, Posting
from relance.ledger.services import (
    account_balance,
    account_balances,
    account_ensure,
    ledger_post,
    ledger_reverse,
)

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="deferred constraint triggers exist on PostgreSQL only"
)


def _accounts(currency: str = "EUR") -> tuple[str, str]:
    account_ensure(key=f"test:cash:{currency}", name="Cash", kind=Account.Kind.ASSET, currency=currency)
    account_ensure(key=f"test:payable:{currency}", name="Payable", kind=Account.Kind.LIABILITY, currency=currency)
    return f"test:cash:{currency}", f"test:payable:{currency}"


def _counts() -> tuple[int, int]:
    return LedgerTransaction.objects.count(), Posting.objects.count()


def test_ledger_post_writes_a_balanced_transaction():
    cash, payable = _accounts()
    txn = ledger_post(
        idempotency_key="t1",
        code="test.moved",
        lines=[Line.dr(cash, 1250, "EUR"), Line.cr(payable, 1000, "EUR"), Line.cr(payable, 250, "EUR")],
    )
    postings = list(txn.postings.all())
    assert len(postings) == 3
    assert sum(p.debit for p in postings) == sum(p.credit for p in postings) == 1250
    assert txn.code == "test.moved"
    assert account_balance(key=cash) == 1250
    assert account_balance(key=payable) == -1250


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param([Line.dr("test:cash:EUR", 100, "EUR"), Line.cr("test:payable:EUR", 99, "EUR")], id="off-by-one"),
        pytest.param([Line.dr("test:cash:EUR", 100, "EUR")], id="single-line"),
        pytest.param(
            [Line.dr("test:cash:EUR", 100, "EUR"), Line.cr("test:payable:USD", 100, "USD")], id="across-currencies"
        ),
    ],
)
def test_unbalanced_transaction_is_refused_and_nothing_is_written(lines):
    _accounts("EUR")
    _accounts("USD")
    before = _counts()
    with pytest.raises(UnbalancedTransactionError):
        ledger_post(idempotency_key="bad", code="test.bad", lines=lines)
    assert _counts() == before
    assert not LedgerTransaction.objects.filter(idempotency_key="bad").exists()


def test_a_posting_with_two_sides_or_a_negative_amount_is_refused():
    cash, payable = _accounts()
    before = _counts()
    with pytest.raises(ValidationError):
        ledger_post(
            idempotency_key="neg",
            code="test.bad",
            lines=[Line.dr(cash, -100, "EUR"), Line.cr(payable, -100, "EUR")],
        )
    with pytest.raises(ValidationError):
        ledger_post(
            idempotency_key="both",
            code="test.bad",
            lines=[Line(cash, "EUR", debit=100, credit=100), Line(payable, "EUR", debit=100, credit=100)],
        )
    assert _counts() == before


def test_unknown_account_or_wrong_currency_is_refused():
    cash, _ = _accounts()
    before = _counts()
    with pytest.raises(ValidationError, match="Unknown ledger accounts"):
        ledger_post(idempotency_key="k1", code="c", lines=[Line.dr(cash, 5, "EUR"), Line.cr("nope", 5, "EUR")])
    _accounts("USD")
    with pytest.raises(ValidationError, match="not in USD"):
        ledger_post(
            idempotency_key="k2", code="c", lines=[Line.dr(cash, 5, "USD"), Line.cr("test:payable:USD", 5, "USD")]
        )
    assert _counts() == before


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_deferred_trigger_refuses_an_unbalanced_raw_insert_at_commit():
    cash, payable = _accounts()
    cash_id = Account.objects.get(key=cash).pk
    before = _counts()
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        txn = LedgerTransaction.objects.create(idempotency_key="raw", code="raw", occurred_at="2026-01-05T12:00Z")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_posting (transaction_id, account_id, debit, credit, currency)"
                " VALUES (%s, %s, 500, 0, 'EUR')",
                [txn.pk, cash_id],
            )
        # The row is accepted inside the transaction: the check is deferred to COMMIT.
        assert Posting.objects.filter(transaction=txn).count() == 1
    assert _counts() == before
    assert not LedgerTransaction.objects.filter(idempotency_key="raw").exists()
    assert Account.objects.filter(key=payable).exists()  # committed earlier, untouched


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_deferred_trigger_refuses_unbalanced_bulk_create_and_accepts_a_balanced_one():
    cash, payable = _accounts()
    accounts = {a.key: a for a in Account.objects.all()}
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        txn = LedgerTransaction.objects.create(idempotency_key="bulk-bad", code="raw", occurred_at="2026-01-05T12:00Z")
        Posting.objects.bulk_create(
            [
                Posting(transaction=txn, account=accounts[cash], debit=700, currency="EUR"),
                Posting(transaction=txn, account=accounts[payable], credit=600, currency="EUR"),
            ]
        )
    assert not LedgerTransaction.objects.filter(idempotency_key="bulk-bad").exists()

    # The same path with balanced rows commits: the trigger refuses imbalance, not raw writes.
    with transaction.atomic():
        txn = LedgerTransaction.objects.create(idempotency_key="bulk-ok", code="raw", occurred_at="2026-01-05T12:00Z")
        Posting.objects.bulk_create(
            [
                Posting(transaction=txn, account=accounts[cash], debit=700, currency="EUR"),
                Posting(transaction=txn, account=accounts[payable], credit=700, currency="EUR"),
            ]
        )
    assert account_balances(keys=[cash, payable]) == {cash: 700, payable: -700}


def test_postings_cannot_be_updated():
    cash, payable = _accounts()
    txn = ledger_post(idempotency_key="t", code="c", lines=[Line.dr(cash, 100, "EUR"), Line.cr(payable, 100, "EUR")])
    posting = txn.postings.get(debit=100)
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        Posting.objects.filter(pk=posting.pk).update(debit=1_000_000)
    posting.refresh_from_db()
    assert posting.debit == 100
    assert account_balance(key=cash) == 100


@postgres_only
def test_postings_cannot_be_deleted_on_postgresql():
    cash, payable = _accounts()
    txn = ledger_post(idempotency_key="t", code="c", lines=[Line.dr(cash, 100, "EUR"), Line.cr(payable, 100, "EUR")])
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Posting.objects.filter(transaction=txn).delete()
    assert txn.postings.count() == 2


def test_same_key_and_same_lines_returns_the_same_transaction():
    cash, payable = _accounts()
    lines = [Line.dr(cash, 4200, "EUR"), Line.cr(payable, 4200, "EUR")]
    first = ledger_post(idempotency_key="once", code="c", lines=lines)
    before = _counts()
    # Same lines in another order are the same posting.
    again = ledger_post(idempotency_key="once", code="c", lines=list(reversed(lines)))
    assert again.pk == first.pk
    assert _counts() == before
    assert account_balance(key=cash) == 4200


def test_same_key_with_different_lines_is_a_conflict():
    cash, payable = _accounts()
    ledger_post(idempotency_key="once", code="c", lines=[Line.dr(cash, 4200, "EUR"), Line.cr(payable, 4200, "EUR")])
    before = _counts()
    with pytest.raises(ConflictError) as exc:
        ledger_post(idempotency_key="once", code="c", lines=[Line.dr(cash, 4300, "EUR"), Line.cr(payable, 4300, "EUR")])
    assert exc.value.fields["idempotency_key"] == "once"
    assert _counts() == before
    assert account_balance(key=cash) == 4200


def test_ledger_reverse_brings_the_balance_back_to_zero():
    cash, payable = _accounts()
    txn = ledger_post(
        idempotency_key="p", code="payment.received", lines=[Line.dr(cash, 990, "EUR"), Line.cr(payable, 990, "EUR")]
    )
    reversal = ledger_reverse(txn=txn, code="payment.reversed", memo="chargeback")
    assert reversal.reverses == txn
    assert reversal.code == "payment.reversed"
    assert account_balances(keys=[cash, payable]) == {cash: 0, payable: 0}
    # The original entries are still there: corrected, never edited.
    assert txn.postings.count() == 2
    assert reversal.postings.count() == 2
    # Reversing twice is idempotent, not a second reversal.
    assert ledger_reverse(txn=txn, code="payment.reversed").pk == reversal.pk
    assert account_balance(key=cash) == 0


def test_account_balances_sums_debits_minus_credits_per_account():
    cash, payable = _accounts()
    account_ensure(key="test:fees", name="Fees", kind=Account.Kind.INCOME, currency="EUR")
    ledger_post(idempotency_key="a", code="c", lines=[Line.dr(cash, 1000, "EUR"), Line.cr(payable, 1000, "EUR")])
    ledger_post(
        idempotency_key="b",
        code="c",
        lines=[Line.dr(payable, 150, "EUR"), Line.cr("test:fees", 150, "EUR")],
    )
    assert account_balances(keys=[cash, payable, "test:fees", "test:unknown"]) == {
        cash: 1000,
        payable: -850,
        "test:fees": -150,
        "test:unknown": 0,
    }


def test_account_ensure_refuses_a_currency_change():
    account_ensure(key="test:x", name="X", kind=Account.Kind.ASSET, currency="EUR")
    with pytest.raises(ValidationError):
        account_ensure(key="test:x", name="X", kind=Account.Kind.ASSET, currency="USD")
