"""Task shells for payments (run by ``relance db_worker``; enqueued by ``relance scheduler``)."""

from __future__ import annotations

from django_tasks import task

from relance.payments.receipts import receipts_deliver_pending


@task()
def receipts_deliver_pending_task() -> str:
    return f"{receipts_deliver_pending()} receipts e-mailed"
