"""Task shell (django.tasks API) for webhooks out; ``relance scheduler`` enqueues it."""

from __future__ import annotations

from django_tasks import task

from relance.api.webhooks import webhooks_run


@task()
def webhooks_run_task() -> dict[str, int]:
    report = webhooks_run()
    return {"succeeded": report.succeeded, "retrying": report.retrying, "failed": report.failed}
