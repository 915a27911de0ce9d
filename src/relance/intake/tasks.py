"""Task shell: run an uploaded import in a worker (production) — the embedded loop calls the same."""

from __future__ import annotations

from django_tasks import task

from relance.intake.imports import import_run_pending


@task()
def import_run_task(batch_id: int) -> str:
    batch = import_run_pending(batch_id=batch_id)
    return "nothing to do" if batch is None else f"import {batch.pk} {batch.status}"
