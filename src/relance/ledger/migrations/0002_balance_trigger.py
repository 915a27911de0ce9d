"""PostgreSQL: a deferred constraint trigger checks at commit that every touched transaction balances.

SQLite has no deferred triggers; there the pure validator (ledger.balance.check_balanced), which
``ledger_post`` always runs, is the guard. Postings are also append-only on both databases.
"""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger AS $$
DECLARE
  txn bigint;
  bad record;
BEGIN
  IF TG_OP = 'DELETE' THEN txn := OLD.transaction_id; ELSE txn := NEW.transaction_id; END IF;
  SELECT currency, SUM(debit) - SUM(credit) AS diff INTO bad
    FROM ledger_posting WHERE transaction_id = txn
    GROUP BY currency HAVING SUM(debit) <> SUM(credit) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger transaction % does not balance: % %', txn, bad.currency, bad.diff
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER ledger_posting_balanced
  AFTER INSERT OR UPDATE OR DELETE ON ledger_posting
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
CREATE OR REPLACE FUNCTION ledger_posting_immutable() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'ledger postings are immutable: post a reversing transaction' USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_posting_no_update BEFORE UPDATE OR DELETE ON ledger_posting
  FOR EACH ROW EXECUTE FUNCTION ledger_posting_immutable();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
DROP TRIGGER IF EXISTS ledger_posting_no_update ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_check_balanced();
DROP FUNCTION IF EXISTS ledger_posting_immutable();
"""
# SQLite: UPDATE only. Django's test flush empties tables with DELETE; a deleted row still
# breaks the hash chain (audit) or the balance (ledger), which verification reports.
SQLITE_UP = [
    "CREATE TRIGGER ledger_posting_no_update BEFORE UPDATE ON ledger_posting "
    "BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable: post a reversing transaction'); END;",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS ledger_posting_no_update;", "DROP TRIGGER IF EXISTS ledger_posting_no_delete;"]


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_UP:
            schema_editor.execute(sql)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_DOWN:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(up, down)]
