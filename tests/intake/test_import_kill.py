"""SIGKILL in the middle of ``relance import``, then the same command again (intake issue, "Done means").

The real command runs in a subprocess against the test database; the test polls the database until a
few chunks are committed and kills the process with SIGKILL (no handler, no cleanup, no rollback in
Python). What must hold (item 4, invariant 2):

- the killed import left whole chunks only: every committed claim has its case, its ledger account with
  exactly one placement transaction and its audit event, and ``rows_done`` is a multiple of the chunk;
- running the command again on the same file (a new import: placement is idempotent) ends in the state
  of an uninterrupted import of that file: same claims, same amounts, same cases, one placement each,
  the ledger balanced and the audit chain intact.

PostgreSQL only: with SQLite, pytest-django's test database is in memory, out of a subprocess's reach.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Sum

from relance.audit.models import AuditEvent
from relance.cases.models import Case, CaseClaim
from relance.claims.models import Claim, Debtor
from relance.intake.models import ImportBatch
from relance.ledger.models import Account, LedgerTransaction, Posting

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a subprocess cannot reach SQLite's in-memory test database"
    ),
    pytest.mark.django_db(transaction=True),
]

ROWS = 3000
CHUNK = 100
BIN = Path(sys.executable).parent
TODAY = date.today()


def _file(path: Path) -> dict[str, int]:
    """A French ``;`` export of ROWS claims (every 97th row invalid); returns the valid refs' amounts."""
    expected: dict[str, int] = {}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        ["Référence", "Date de facture", "Échéance", "Montant", "Prénom", "Nom", "E-mail", "Adresse", "Code postal"]
    )
    for n in range(1, ROWS + 1):
        minor = 1000 + (n * 37) % 50000
        amount = f"{minor // 100},{minor % 100:02d}" if n % 97 else "n/a"
        person = n % 1200  # some debtors owe several claims, spread over chunks
        writer.writerow(
            [
                f"K-{n:05d}",
                (TODAY - timedelta(days=40 + n % 30)).strftime("%d/%m/%Y"),
                (TODAY - timedelta(days=10)).strftime("%d/%m/%Y"),
                amount,
                "Camille",
                f"Débiteur{person}",
                f"debiteur{person}@example.fr",
                f"{person} rue de la Paix",
                "75002",
            ]
        )
        if n % 97:
            expected[f"K-{n:05d}"] = minor
    path.write_bytes(out.getvalue().encode("cp1252"))
    return expected


def _env(tmp_path: Path) -> dict[str, str]:
    """The subprocess talks to this test's database (pytest-django renamed it), not the configured one."""
    db = connection.settings_dict
    url = (
        f"postgres://{quote(db['USER'], safe='')}:{quote(db['PASSWORD'] or '', safe='')}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"
    )
    return {**os.environ, "DATABASE_URL": url, "RELANCE_VAR_DIR": str(tmp_path / "var")}


def _import(path: Path, env: dict[str, str], creditor: str = "shop") -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own command, arguments built here
        [str(BIN / "relance"), "import", str(path), "--creditor", creditor, "--chunk", str(CHUNK)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_after_some_chunks(process: subprocess.Popen[bytes], filename: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the import ended before it could be killed: {out!r} {err[-2000:]!r}")
        if ImportBatch.objects.filter(filename=filename, rows_done__gte=3 * CHUNK).exists():
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return
        time.sleep(0.005)
    process.kill()
    pytest.fail("no chunk committed within 30 s")


def _claims(creditor: Any) -> dict[str, int]:
    return dict(Claim.objects.filter(creditor=creditor).values_list("external_ref", "original_amount_minor"))


def _assert_every_claim_whole(creditor: Any) -> None:
    """Nothing half-written: each claim has its case, its account and balance, one placement, its event."""
    claims = Claim.objects.filter(creditor=creditor)
    ids = set(claims.values_list("pk", flat=True))
    assert set(CaseClaim.objects.filter(claim__in=ids).values_list("claim_id", flat=True)) == ids
    keys = {f"claim:{pk}" for pk in ids}
    balances = {
        r["account__key"]: r["d"] - r["c"]
        for r in Posting.objects.filter(account__key__in=keys)
        .values("account__key")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    }
    assert balances == {c.ledger_key: c.original_amount_minor for c in claims}
    placements = dict(
        LedgerTransaction.objects.filter(code="claim.placed", postings__account__key__in=keys)
        .values("postings__account__key")
        .annotate(n=Count("pk", distinct=True))
        .values_list("postings__account__key", "n")
    )
    assert placements == dict.fromkeys(keys, 1)
    created = AuditEvent.objects.filter(verb="claim.created", subject_type="claims.claim")
    assert {int(s) for s in created.values_list("subject_id", flat=True)} >= ids
    assert Account.objects.filter(key__startswith="claim:").count() == Claim.objects.count()
    assert not Case.objects.annotate(n=Count("caseclaim")).filter(n=0).exists()  # no empty case
    assert not Debtor.objects.annotate(n=Count("claims")).filter(n=0).exists()  # no orphan debtor
    unbalanced = Posting.objects.values("transaction_id").annotate(d=Sum("debit"), c=Sum("credit")).exclude(d=F("c"))
    assert not unbalanced.exists()


def _cases(creditor: Any) -> list[list[str]]:
    """Each case of the creditor as the sorted list of its claims' references."""
    grouped: dict[int, list[str]] = {}
    for case_id, ref in CaseClaim.objects.filter(case__creditor=creditor).values_list("case_id", "claim__external_ref"):
        grouped.setdefault(case_id, []).append(ref)
    return sorted(sorted(refs) for refs in grouped.values())


@pytest.mark.parametrize("again", ["fresh", "resume"])
def test_a_killed_import_leaves_whole_chunks_and_running_it_again_completes_it(world, tmp_path, again):
    path = tmp_path / "creances.csv"
    expected = _file(path)
    env = _env(tmp_path)

    _kill_after_some_chunks(_import(path, env), path.name)

    killed = ImportBatch.objects.get(filename=path.name)
    assert killed.status == ImportBatch.Status.RUNNING  # it never got to finish
    assert 3 * CHUNK <= killed.rows_done < ROWS
    assert killed.rows_done % CHUNK == 0  # chunk-aligned
    committed = {f"K-{n:05d}" for n in range(1, killed.rows_done + 1)}
    assert _claims(world.creditor) == {ref: a for ref, a in expected.items() if ref in committed}
    assert killed.rows_created == len(_claims(world.creditor))
    assert killed.rows_invalid == killed.issues.count() == sum(1 for ref in committed if ref not in expected)
    _assert_every_claim_whole(world.creditor)

    # "fresh": the same command on the same file (a new import; placement is idempotent);
    # "resume": ``--resume ID`` continues the killed import from its rows_done.
    arguments = [str(path), "--creditor", "shop"] if again == "fresh" else ["--resume", str(killed.pk)]
    finished = subprocess.run(  # noqa: S603 - our own command, arguments built here
        [str(BIN / "relance"), "import", *arguments, "--chunk", str(CHUNK)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-2000:]
    if again == "fresh":
        rerun = ImportBatch.objects.exclude(pk=killed.pk).get(filename=path.name)
        assert (rerun.rows_unchanged, rerun.rows_created) == (killed.rows_created, len(expected) - killed.rows_created)
    else:
        rerun = ImportBatch.objects.get(pk=killed.pk)
        assert (rerun.rows_unchanged, rerun.rows_created) == (0, len(expected))
    assert rerun.status == ImportBatch.Status.DONE
    assert (rerun.rows_total, rerun.rows_done, rerun.rows_invalid) == (ROWS, ROWS, ROWS - len(expected))
    assert rerun.issues.count() == ROWS - len(expected)  # each bad row reported once
    assert _claims(world.creditor) == expected
    _assert_every_claim_whole(world.creditor)

    # The reference: the same file imported in one go (for the other creditor, so the debtors match).
    call_command("import", str(path), creditor="other", chunk=1000, stdout=io.StringIO(), stderr=io.StringIO())
    assert _claims(world.other_creditor) == expected
    assert _cases(world.creditor) == _cases(world.other_creditor)
    _assert_every_claim_whole(world.other_creditor)
    totals = Posting.objects.aggregate(d=Sum("debit"), c=Sum("credit"))
    assert totals["d"] == totals["c"]

    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "audit chain OK" in out.getvalue()
