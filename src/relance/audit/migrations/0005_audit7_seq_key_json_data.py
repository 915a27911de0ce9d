"""``seq`` as the audit table's primary key (no ``id``), ``data`` as PostgreSQL ``json``.

docs/decisions/0007-audit7-seq-key-json-data.md. Each appended event spared an ``id`` drawn from a
sequence and a second monotonic b-tree entry (``seq`` was already unique), and ``jsonb``'s parse of
the data text into its binary form; the hash chain is unchanged (it hashes the canonical value, which
reads back the same from either type).

- PostgreSQL: one ``ALTER TABLE`` — drop the ``id`` column (its key and identity sequence go with it)
  and the unique constraint on ``seq``, add the primary key on ``seq``, change ``data`` to ``json``.
  The type change rewrites the table once, and every index with it, so the primary key is built in
  that same pass (``ADD … PRIMARY KEY USING INDEX`` cannot take the unique constraint's own index,
  and would save nothing next to the rewrite). The append-only trigger (audit 0002) is a trigger on
  the table: it stays, and a rewrite by ``ALTER TABLE`` is neither an UPDATE nor a DELETE.
- SQLite: the table is rebuilt by hand in one pass (Django's operations would rebuild it three times)
  with the same column definitions Django gives the model; the rebuild drops the table's triggers and
  indexes, so the append-only trigger, the subject index and the ``occurred_at`` b-tree that SQLite
  keeps (audit 0004) are created again. ``data`` stays Django's ``JSONField`` column there.

Reversible on both databases (``id`` drawn again in ``seq`` order).
"""

from django.db import migrations, models

import relance.audit.fields

TABLE = "audit_auditevent"
SUBJECT_INDEX = 'CREATE INDEX "audit_audit_subject_4c8590_idx" ON "audit_auditevent" ("subject_type", "subject_id", "seq")'
SQLITE_OCCURRED = 'CREATE INDEX "audit_auditevent_occurred_at_1f007848" ON "audit_auditevent" ("occurred_at")'
SQLITE_TRIGGER = (  # the one of audit 0002
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit_auditevent is append-only (UPDATE refused)'); END;"
)
_COLUMNS = (
    '"occurred_at" datetime NOT NULL, "actor" varchar(120) NOT NULL, "verb" varchar(80) NOT NULL,'
    ' "subject_type" varchar(60) NOT NULL, "subject_id" varchar(64) NOT NULL,'
    ' "data" text NOT NULL CHECK ((JSON_VALID("data") OR "data" IS NULL)), "prev_hash" varchar(64) NOT NULL'
)
_COPIED = '"seq", "occurred_at", "actor", "verb", "subject_type", "subject_id", "data", "prev_hash", "hash"'
SQLITE_NEW = f'CREATE TABLE "new__audit_auditevent" ("seq" bigint NOT NULL PRIMARY KEY, {_COLUMNS}, "hash" varchar(64) NOT NULL)'
SQLITE_OLD = (
    'CREATE TABLE "new__audit_auditevent" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,'
    f' "seq" bigint NOT NULL UNIQUE, {_COLUMNS}, "hash" varchar(64) NOT NULL UNIQUE)'
)


def _pg_constraint(schema_editor, kind, column):
    """The name of the table's constraint of ``kind`` (``p``, ``u``) on ``column`` alone (Django's)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a"
            " ON a.attrelid = c.conrelid AND c.conkey = ARRAY[a.attnum]::int2[]"
            " WHERE c.conrelid = %s::regclass AND c.contype = %s AND a.attname = %s",
            [TABLE, kind, column],
        )
        (name,) = cursor.fetchone()
        return name


def _sqlite_rebuild(schema_editor, create, into, select):
    execute = schema_editor.execute
    execute('DROP TABLE IF EXISTS "new__audit_auditevent"')
    execute(create)
    execute(f'INSERT INTO "new__audit_auditevent" ({into}) SELECT {select} FROM "{TABLE}" ORDER BY "seq"')
    execute(f'DROP TABLE "{TABLE}"')  # its triggers and indexes go with it
    execute(f'ALTER TABLE "new__audit_auditevent" RENAME TO "{TABLE}"')
    execute(SUBJECT_INDEX)
    execute(SQLITE_OCCURRED)
    execute(SQLITE_TRIGGER)


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        key, unique = _pg_constraint(schema_editor, "p", "id"), _pg_constraint(schema_editor, "u", "seq")
        schema_editor.execute(
            f'ALTER TABLE "{TABLE}" DROP CONSTRAINT "{key}", DROP COLUMN "id",'
            f' DROP CONSTRAINT "{unique}", ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY ("seq"),'
            ' ALTER COLUMN "data" TYPE json USING "data"::text::json'
        )
    elif vendor == "sqlite":
        _sqlite_rebuild(schema_editor, SQLITE_NEW, _COPIED, _COPIED)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f'ALTER TABLE "{TABLE}" DROP CONSTRAINT "{TABLE}_pkey", ADD CONSTRAINT "{TABLE}_seq_key" UNIQUE ("seq"),'
            ' ALTER COLUMN "data" TYPE jsonb USING "data"::jsonb'
        )
        # Ids drawn again in the chain's order (an ``ADD COLUMN … IDENTITY`` numbers rows as stored).
        schema_editor.execute(f'ALTER TABLE "{TABLE}" ADD COLUMN "id" bigint')
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{TABLE}" DISABLE TRIGGER audit_event_no_update')
            cursor.execute(f'UPDATE "{TABLE}" SET "id" = "seq"')
            cursor.execute(f'ALTER TABLE "{TABLE}" ENABLE TRIGGER audit_event_no_update')
        schema_editor.execute(
            f'ALTER TABLE "{TABLE}" ALTER COLUMN "id" SET NOT NULL, ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY ("id"),'
            ' ALTER COLUMN "id" ADD GENERATED BY DEFAULT AS IDENTITY'
        )
        schema_editor.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{TABLE}\"', 'id'), coalesce(max(\"id\"), 0) + 1, false)"
            f' FROM "{TABLE}"'
        )
    elif vendor == "sqlite":
        _sqlite_rebuild(schema_editor, SQLITE_OLD, '"id", ' + _COPIED, '"seq", ' + _COPIED)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_engine5_lighter_indexes")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="auditevent", name="id"),
                migrations.AlterField(
                    model_name="auditevent", name="data", field=relance.audit.fields.AuditJSONField(default=dict)
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="seq",
                    field=models.BigIntegerField(primary_key=True, serialize=False),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        )
    ]
