"""Append-only, hash-chained audit trail (invariant 7).

Each row stores the hash of the previous row and its own hash over a canonical JSON of its content,
so editing, deleting or inserting a row by hand breaks the chain at that row. Database triggers refuse
UPDATE and DELETE (installed by migration on PostgreSQL and SQLite).
"""

from __future__ import annotations

from django.db import models

from relance.audit.fields import AuditJSONField


class AuditEvent(models.Model):
    """One state change or one staff read of personal data, in order."""

    # The chain's position is the key: no separate ``id`` drawn from a sequence and indexed per row
    # (docs/decisions/0007-audit7-seq-key-json-data.md); ``pk`` is ``seq``.
    seq = models.BigIntegerField(primary_key=True)
    # Indexed by migration, not here: a BRIN index on PostgreSQL (append-only and monotonic, one summary
    # per block range instead of a b-tree entry per row), a b-tree on SQLite
    # (docs/decisions/0005-engine5-lighter-indexes.md; Django's ``BrinIndex`` is PostgreSQL's only).
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=120)
    # Not indexed: nothing searches the trail by verb alone (by subject, by ``seq``, or by a verb suffix,
    # which no b-tree serves): docs/decisions/0005-engine5-lighter-indexes.md.
    verb = models.CharField(max_length=80)
    subject_type = models.CharField(max_length=60)
    subject_id = models.CharField(max_length=64)
    # PostgreSQL ``json``: the hashed text as written (``audit/fields.py``, decision 0007).
    data = AuditJSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    # Not a unique index: the digest covers ``seq`` (unique), so two rows never share one, and nothing
    # looks rows up by hash; a random-valued index only cost one random b-tree insert per event
    # (docs/decisions/0002-engine-one-event-per-case.md).
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["subject_type", "subject_id", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.verb} {self.subject_type}:{self.subject_id}"
