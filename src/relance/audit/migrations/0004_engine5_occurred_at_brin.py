"""``occurred_at`` indexed by BRIN on PostgreSQL (docs/decisions/0005-engine5-lighter-indexes.md).

The trail is append-only (triggers refuse UPDATE and DELETE) and each append takes its time under the
chain's head lock, so rows lie on disk in ``occurred_at`` order: a BRIN index (the smallest and largest
time of each range of blocks) serves the auditor's date filter (``audit/selectors.py``,
``occurred_at >= since`` / ``< until``) as the b-tree did, without a b-tree entry per event (the engine
appends one per case and tick). ``autosummarize`` summarises each filled block range in the background;
ranges not yet summarised are always read, so a search never misses a row. On SQLite (no speed goal,
no BRIN) the b-tree stays; the model state no longer declares the index either way.
"""

from django.db import migrations, models

TABLE = "audit_auditevent"
BRIN = "audit_auditevent_occurred_at_brin"


def to_brin(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [TABLE, "% USING btree (occurred_at)"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        cursor.execute(
            f'CREATE INDEX IF NOT EXISTS "{BRIN}" ON "{TABLE}" USING brin ("occurred_at") WITH (autosummarize = on)'
        )


def to_btree(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX IF EXISTS "{BRIN}"')
        cursor.execute(f'CREATE INDEX IF NOT EXISTS "{TABLE}_occurred_at_1f007848" ON "{TABLE}" ("occurred_at")')


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_engfast2_drop_unread_indexes")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="auditevent", name="occurred_at", field=models.DateTimeField())
            ],
            database_operations=[migrations.RunPython(to_brin, to_btree)],
        )
    ]
