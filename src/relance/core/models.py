"""Base models shared by every app: timestamps."""

from __future__ import annotations

from django.db import models


class TimeStampedModel(models.Model):
    """Creation and last-change times, always aware (USE_TZ)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
