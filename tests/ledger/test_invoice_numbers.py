"""Fee invoice numbers: one unbroken series per agency and year (CGI art. 242 nonies A).

On PostgreSQL, many threads issue numbers at once, some of them rolling back: the committed numbers
are exactly 1..n — no gap, no duplicate — because the sequence row is locked until the issuing
transaction ends and a rollback gives its number back.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from relance.ledger.models import InvoiceSequence
from relance.ledger.remittances import invoice_number_format, invoice_number_next
from relance.tenancy.models import Agency


class _RollbackError(Exception):
    pass


def _issue(agency: Agency, *, fail: bool) -> int | None:
    try:
        with transaction.atomic():
            number = invoice_number_next(agency=agency, year=2026)
            if fail:
                raise _RollbackError
            return number
    except _RollbackError:
        return None


@pytest.mark.django_db
def test_a_rolled_back_invoice_gives_its_number_back():
    agency = Agency.objects.create(legal_name="A")
    assert _issue(agency, fail=False) == 1
    assert _issue(agency, fail=True) is None
    assert _issue(agency, fail=False) == 2
    assert invoice_number_format(year=2026, sequence=2) == "F2026-000002"
    other = Agency.objects.create(legal_name="B")
    assert _issue(other, fail=False) == 1  # one series per agency


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks under concurrency: PostgreSQL")
def test_concurrent_issuers_leave_no_gap_and_no_duplicate():
    agency = Agency.objects.create(legal_name="A")
    committed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        try:
            start.wait()
            for i in range(10):
                number = _issue(agency, fail=(index + i) % 4 == 0)
                if number is not None:
                    with lock:
                        committed.append(number)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(committed) == list(range(1, len(committed) + 1))
    assert len(committed) == 60  # 80 attempts, one in four rolled back
    assert InvoiceSequence.objects.get(agency=agency, year=2026).last_number == 60
