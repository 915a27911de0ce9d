"""Lighter indexes on the audit trail (docs/decisions/0005-engine5-lighter-indexes.md).

The engine appends one event per case and tick, each with an entry in every index of the table.

- ``occurred_at``: indexed by BRIN on PostgreSQL. The trail is append-only (triggers refuse UPDATE and
  DELETE) and each append takes its time under the chain's head lock, so rows lie on disk in
  ``occurred_at`` order: a BRIN index (the smallest and largest time of each range of blocks) serves the
  auditor's date filter (``audit/selectors.py``, ``occurred_at >= since`` / ``< until``) as the b-tree
  did, without a b-tree entry per event. ``autosummarize`` summarises each filled block range in the
  background; ranges not yet summarised are always read, so a search never misses a row. On SQLite (no
  speed goal, no BRIN) the b-tree stays. The model state declares no index on it either way.
- ``verb``: its b-tree is dropped (both databases). No query is served by it: the engine's event reads
  go by subject (``(subject_type, subject_id, seq)``) or by ``seq`` (the wake-up reads ``seq > cursor``
  in ``seq`` order, the verb as a filter), the access search filters verbs by suffix (``LIKE '%.viewed'``,
  which no b-tree serves), the case page by subject. Nearly every row carries one of a handful of verbs,
  so the index never narrowed a search much either.
"""

from django.db import migrations, models

TABLE = "audit_auditevent"
BRIN = "audit_auditevent_occurred_at_brin"
OCCURRED_BTREE = "audit_auditevent_occurred_at_1f007848"  # Django's names for the two b-trees
VERB_BTREE = "audit_auditevent_verb_41a3b318"


def _single_column_btrees(schema_editor, column):
    with schema_editor.connection.cursor() as cursor:
        found = schema_editor.connection.introspection.get_constraints(cursor, TABLE)
    return [
        name
        for name, info in found.items()
        if info["columns"] == [column]
        and info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info.get("type") in {"btree", "idx"}
    ]


def lighter(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for name in _single_column_btrees(schema_editor, "verb"):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
    if postgresql:
        for name in _single_column_btrees(schema_editor, "occurred_at"):
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{BRIN}" ON "{TABLE}" USING brin ("occurred_at") WITH (autosummarize = on)'
        )


def heavier(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{BRIN}"')
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{OCCURRED_BTREE}" ON "{TABLE}" ("occurred_at")')
    schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{VERB_BTREE}" ON "{TABLE}" ("verb")')


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_engfast2_drop_unread_indexes")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="auditevent", name="occurred_at", field=models.DateTimeField()),
                migrations.AlterField(model_name="auditevent", name="verb", field=models.CharField(max_length=80)),
            ],
            database_operations=[migrations.RunPython(lighter, heavier)],
        )
    ]
