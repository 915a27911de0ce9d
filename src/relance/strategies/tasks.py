"""Task shells (django.tasks API): the engine and the dispatcher as background tasks.

Production runs ``relance db_worker`` processes (any number, on any machine) and one
``relance scheduler`` that enqueues these every few seconds; the embedded default calls the same
functions from a thread of ``relance run``.
"""

from __future__ import annotations

from django_tasks import task

from relance.comms.services import outbox_dispatch, outbox_recover
from relance.strategies.engine import engine_tick


@task()
def engine_tick_task() -> str:
    return str(engine_tick())


@task()
def outbox_dispatch_task() -> dict[str, int]:
    outbox_recover()
    report = outbox_dispatch()
    return {
        "sent": sum(report.sent.values()),
        "blocked": report.blocked,
        "deferred": report.deferred,
        "failed": report.failed,
    }
