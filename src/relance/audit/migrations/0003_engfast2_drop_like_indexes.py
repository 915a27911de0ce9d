"""Drop the ``varchar_pattern_ops`` copies of ``audit_auditevent.hash`` and ``.verb``
(docs/decisions/0011-engfast2-one-event-per-case.md).

Django adds such a copy on PostgreSQL for every indexed or unique ``CharField``; it only serves
``LIKE 'prefix%'``. The trail is read by ``hash`` never, by ``verb`` with equality, ``IN`` or a suffix
(``LIKE '%.viewed'``, which no b-tree serves): the plain indexes stay (the unique constraint on
``hash``, the index on ``verb``), the copies go. Every appended event wrote an entry in both.
"""

from django.db import migrations

LIKE_COPIES = (("audit_auditevent", "hash"), ("audit_auditevent", "verb"))


def drop_like_copies(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # only PostgreSQL has the pattern-ops copies
    with schema_editor.connection.cursor() as cursor:
        for table, column in LIKE_COPIES:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
                [table, f"%({column} varchar_pattern_ops)"],
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def restore_like_copies(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, column in LIKE_COPIES:
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS "{table}_{column}_like" ON "{table}" ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]
    operations = [migrations.RunPython(drop_like_copies, restore_like_copies)]
