"""Contact pressure read for a batch equals the one-debtor read (FR-COL-16/19; issue 4's engine).

On PostgreSQL ``debtors_recent_contacts`` is one per-debtor index lookup (``LATERAL``), elsewhere the
ORM's filter: both must give, per debtor, exactly what ``debtor_recent_contacts`` gives.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from relance.comms.models import Action
from relance.comms.services import debtor_recent_contacts, debtors_recent_contacts

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 4, 12, tzinfo=ZoneInfo("Europe/Paris"))


def test_batch_contact_pressure_equals_the_one_debtor_read(place):
    cases = [place(f"INV-{n}", "10.00", email=f"d{n}@example.fr", last_name=f"D{n}").case for n in range(4)]
    statuses = list(Action.Status)
    shapes = [  # (status, sent_at offset in hours or None, scheduled offset in hours)
        (status, sent, scheduled)
        for status in statuses
        for sent in (None, -1, -24 * 6, -24 * 8, 0, 5)  # in the window, on its edges, outside, in the future
        for scheduled in (-2, 3)
    ]
    for n, (status, sent, scheduled) in enumerate(shapes):
        case = cases[n % 3]  # the fourth debtor has no action at all
        Action.objects.create(
            case=case,
            debtor_id=case.debtor_id,
            channel="email",
            template="first_notice",
            step_key=f"s{n}",
            status=status,
            sent_at=None if sent is None else NOW + timedelta(hours=sent),
            scheduled_at=NOW + timedelta(hours=scheduled),
        )
    debtors = [c.debtor_id for c in cases]

    batch = debtors_recent_contacts(debtor_ids=debtors, now=NOW)

    assert {d: sorted(times) for d, times in batch.items()} == {
        d: sorted(debtor_recent_contacts(debtor_id=d, now=NOW)) for d in debtors
    }
    assert batch[cases[3].debtor_id] == []
    assert all(batch[c.debtor_id] for c in cases[:3])
    twice = debtors_recent_contacts(debtor_ids=[*debtors, debtors[0]], now=NOW)  # a debtor named twice
    assert {d: sorted(times) for d, times in twice.items()} == {d: sorted(times) for d, times in batch.items()}
    assert debtors_recent_contacts(debtor_ids=[], now=NOW) == {}
