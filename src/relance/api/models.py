"""API data: idempotency records of requests, and webhooks out (endpoints, events, deliveries).

Idempotency: a retried request gets the first response, never a second effect. Webhooks: events are
derived from the audit chain (``api.webhooks``), each delivered at least once with a unique id.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from relance.core.models import TimeStampedModel
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


class WebhookEndpoint(TimeStampedModel):
    """A creditor's URL that receives signed events (issue 6). The secret signs every delivery."""

    creditor = models.ForeignKey(Creditor, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Shown once at creation; kept (not hashed) because signing needs it, like any HMAC key.
    secret = models.CharField(max_length=80)
    event_types = models.JSONField(default=list)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One event for one creditor, derived from one audit event; ``event_id`` lets receivers de-duplicate."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    creditor = models.ForeignKey(Creditor, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=60)
    audit_seq = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["audit_seq", "type"], name="webhook_event_once_per_audit")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDelivery(TimeStampedModel):
    """Sending one event to one endpoint: retried with exponential backoff, then failed; replayable."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    replay_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replays")

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id}: {self.status}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery, for the delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.at}: {self.status_code or self.error}"


class WebhookCursor(models.Model):
    """How far the audit chain has been turned into webhook events (the last audit ``seq`` read)."""

    name = models.CharField(max_length=40, unique=True)
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.last_seq}"
