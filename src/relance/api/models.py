"""Idempotency keys of API requests: a retried request gets the first response, never a second effect."""

from __future__ import annotations

from django.db import models

from relance.tenancy.models import Creditor


class IdempotencyRecord(models.Model):
    """The response given to one (creditor, Idempotency-Key), with the hash of the request it answered."""

    creditor = models.ForeignKey(Creditor, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["creditor", "key"], name="idempotency_unique_key")]

    def __str__(self) -> str:
        return f"{self.creditor_id}:{self.key}"
