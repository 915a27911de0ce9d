"""Drop audit indexes no query reads (docs/decisions/0002-engine-one-event-per-case.md).

- The ``varchar_pattern_ops`` copies Django adds on PostgreSQL for the indexed ``verb`` and the unique
  ``hash``: they only serve ``LIKE 'prefix%'``, and the trail is read by ``verb`` with equality, ``IN``
  or a suffix (``LIKE '%.viewed'``, which no b-tree serves). The plain index on ``verb`` stays.
- The unique constraint on ``hash``: nothing looks rows up by hash, and the digest covers ``seq``
  (unique), so two rows never share one. Its random values cost one random b-tree insert per event,
  a cost that grew with the table. On SQLite (no performance goal there) the table keeps its unique
  index: dropping it would rebuild the table and lose the append-only trigger.
"""

from django.db import migrations, models

LIKE_COPIES = (("audit_auditevent", "hash"), ("audit_auditevent", "verb"))


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, column in LIKE_COPIES:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
                [table, f"%({column} varchar_pattern_ops)"],
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'audit_auditevent'::regclass AND contype = 'u'"
            " AND conkey = ARRAY[(SELECT attnum FROM pg_attribute"
            " WHERE attrelid = 'audit_auditevent'::regclass AND attname = 'hash')]::int2[]"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE audit_auditevent DROP CONSTRAINT "{name}"')


def restore_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute('ALTER TABLE audit_auditevent ADD CONSTRAINT "audit_auditevent_hash_key" UNIQUE ("hash")')
        for table, column in LIKE_COPIES:
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS "{table}_{column}_like" ON "{table}" ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="auditevent", name="hash", field=models.CharField(max_length=64))
            ],
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
        )
    ]
