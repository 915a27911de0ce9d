"""Task shells (django.tasks API) for arrangements: the review job and direct-debit settlement.

Enqueued by ``relance scheduler`` (at most once an hour); both are idempotent, so an extra run
changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict

from django_tasks import task

from relance.payments.arrangements import arrangements_review, sepa_settle
from relance.tenancy.actors import Actor


@task()
def arrangements_review_task() -> dict[str, int]:
    actor = Actor.system("arrangements")
    settled = sepa_settle(actor=actor)
    return {"settled": settled, **asdict(arrangements_review(actor=actor))}
