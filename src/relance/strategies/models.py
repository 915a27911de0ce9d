"""Stored strategy documents, versioned: a case keeps the version it started with."""

from __future__ import annotations

from django.db import models

from relance.core.models import TimeStampedModel


class Strategy(TimeStampedModel):
    """One version of a strategy document (YAML source kept verbatim)."""

    key = models.CharField(max_length=60)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    source = models.TextField(help_text="YAML document, see docs/strategies.md")
    is_default = models.BooleanField(default=False)
    # Routing: enabled strategies whose ``applies_to`` condition matches a new case compete (highest
    # ``priority`` wins, then the highest version); the default strategy is the fallback.
    enabled = models.BooleanField(default=False)
    priority = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="strategy_unique_version"),
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="strategy_one_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"


class EventCursor(models.Model):
    """How far the engine has read the audit trail to wake cases that have new events (reactions)."""

    name = models.CharField(max_length=40, unique=True)
    seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.seq}"
