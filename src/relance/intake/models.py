"""File imports: one ImportBatch per uploaded file, its row issues, and its resume point.

An import is processed in chunks; each chunk commits its claims together with the batch's progress
(``rows_done``), so a crash leaves the previous state plus whole chunks, and re-running continues
where it stopped. Placement is idempotent anyway (invariant 2): running a file twice changes nothing.
"""

from __future__ import annotations

from django.db import models

from relance.core.models import TimeStampedModel
from relance.tenancy.models import Creditor


class ImportBatch(TimeStampedModel):
    """One file (or API batch) of claims from one creditor."""

    class Mode(models.TextChoices):
        VALID_ROWS = "valid_rows", "Import valid rows, report the rest"
        ALL_OR_NOTHING = "all_or_nothing", "All or nothing"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        REJECTED = "rejected", "Rejected (all or nothing)"
        FAILED = "failed", "Failed"

    creditor = models.ForeignKey(Creditor, on_delete=models.PROTECT, related_name="imports")
    filename = models.CharField(max_length=255)
    file = models.FileField(upload_to="imports/%Y/%m/")
    sha256 = models.CharField(max_length=64, db_index=True)
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.VALID_ROWS)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    mapping = models.JSONField(default=dict, blank=True)
    sheet = models.CharField(max_length=100, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0, help_text="data rows processed and committed")
    rows_created = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_credited = models.PositiveIntegerField(default=0)
    rows_review = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import {self.pk} {self.filename} ({self.status})"


class ImportIssue(models.Model):
    """A row-level problem (error) or a change waiting for a human (review)."""

    class Kind(models.TextChoices):
        ERROR = "error", "Error"
        REVIEW = "review", "Needs review"

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="issues")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ERROR)
    row = models.PositiveIntegerField()
    column = models.CharField(max_length=100, blank=True)
    value = models.TextField(blank=True)
    code = models.CharField(max_length=60)
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ["row", "pk"]
        indexes = [models.Index(fields=["batch", "kind", "row"])]

    def __str__(self) -> str:
        return f"row {self.row} {self.column}: {self.code}"
