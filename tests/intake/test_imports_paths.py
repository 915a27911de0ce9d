"""The fast PostgreSQL import path and the ORM path (SQLite, the embedded default) give the same result.

Intake at volume (issue 3, speed goal) adds a second way of writing an import on PostgreSQL: rows
parsed in a worker process, new claims written with COPY (``intake/bulk_pg.py``). The decisions are
made by the same code on both paths; these tests check the written results agree, file by file of
the ugly-file corpus and on a file built to exercise debtor matching (every rule, ambiguity, two
currencies, consolidation on and off) and a second file with credit notes and reviews: same claims,
debtors, cases, match reasons, review list, ledger balances, issues and counts. On PostgreSQL the
two paths really differ; on SQLite both runs take the ORM path (the comparison still holds).
"""

from __future__ import annotations

import csv
import io
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from relance.audit.models import AuditEvent
from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.claims.models import Claim, Debtor, DebtorMatchReview
from relance.intake import imports, placement
from relance.intake.imports import import_create, import_run
from relance.intake.models import ImportBatch
from relance.ledger.models import Posting
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
CORPUS = Path(__file__).parent / "corpus"
TODAY = date.today()
INVOICED = (TODAY - timedelta(days=40)).strftime("%d/%m/%Y")
DUE = (TODAY - timedelta(days=10)).strftime("%d/%m/%Y")
HEADER = ["Référence", "Date de facture", "Échéance", "Montant", "Devise", "Prénom", "Nom", "Raison sociale"]
HEADER += ["SIREN", "SIRET", "N° TVA intracommunautaire", "IBAN", "E-mail", "Téléphone", "Adresse", "Code postal"]
HEADER += ["Ville"]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _row(ref: str, amount: str, **fields: str) -> list[str]:
    values = {
        "Référence": ref,
        "Date de facture": INVOICED,
        "Échéance": DUE,
        "Montant": amount,
        "Devise": "EUR",
        "Prénom": "Jeanne",
        "Nom": "Martin",
        "Raison sociale": "",
        "SIREN": "",
        "SIRET": "",
        "N° TVA intracommunautaire": "",
        "IBAN": "",
        "E-mail": "",
        "Téléphone": "",
        "Adresse": "3 rue des Lilas",
        "Code postal": "33000",
        "Ville": "Bordeaux",
        **fields,
    }
    return [values[c] for c in HEADER]


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("cp1252")


# Every matching rule (match.py), inside one chunk and across chunks (chunks of 4 rows below).
MATCHING = [
    _row("M-01", "100,00", **{"E-mail": "jeanne@example.fr", "Téléphone": "06 12 34 56 78"}),
    _row("M-02", "20,00", **{"E-mail": "JEANNE@example.fr", "Nom": "Martin-Durand"}),  # e-mail
    _row("M-03", "30,00", **{"Téléphone": "0612345678"}),  # phone + name
    _row("M-04", "40,00", **{"Prénom": "jeanne", "Nom": "MARTIN", "Code postal": "33000"}),  # name + postcode
    _row("M-05", "50,00", **{"E-mail": "autre@example.fr"}),  # same name, another e-mail: ambiguous
    _row(
        "M-06",
        "60,00",
        **{"Nom": "", "Raison sociale": "ACME SARL", "SIREN": "732 829 320", "SIRET": "732 829 320 00074"},
        **{"N° TVA intracommunautaire": "FR 44 732 829 320", "IBAN": "FR76 3000 6000 0112 3456 7890 189"},
    ),
    _row("M-07", "70,00", **{"Nom": "", "Raison sociale": "Acme", "SIREN": "732829320"}),  # SIREN
    _row("M-08", "80,00", **{"E-mail": "jeanne@example.fr", "Devise": "USD"}),  # same debtor, other currency
    _row("M-09", "90,00", **{"Prénom": "Paul", "Nom": "Durand", "E-mail": "paul@example.fr"}),
    _row("M-10", "abc", **{"Prénom": "Paul", "Nom": "Durand"}),  # invalid
    _row("M-11", "11,00", **{"Prénom": "Paul", "Nom": "Durand", "E-mail": "paul@example.fr"}),
    _row("M-12", "12,00", **{"Prénom": "Paul", "Nom": "Durand", "Code postal": "33000", "E-mail": ""}),
    _row("M-01", "1,00"),  # duplicate reference in the file
]
# The same claims later: lower (credit note, below what is owed), higher (review), equal, new.
LATER = [
    _row("M-01", "60,00", **{"E-mail": "jeanne@example.fr"}),
    _row("M-02", "25,00", **{"E-mail": "jeanne@example.fr"}),
    _row("M-03", "30,00"),
    _row("M-13", "13,00", **{"E-mail": "jeanne@example.fr"}),
]


def _world(n: int, *, consolidate: bool = True) -> Creditor:
    agency = Agency.objects.create(legal_name=f"Agence {n}")
    return Creditor.objects.create(
        agency=agency, slug=f"c{n}", legal_name=f"Créancier {n}", consolidate_cases=consolidate
    )


def _import(creditor: Creditor, content: bytes, filename: str, *, fast: bool, monkeypatch: Any) -> ImportBatch:
    monkeypatch.setattr(placement, "PG_COPY", fast)
    monkeypatch.setattr(imports, "PARSE_WORKER", fast)
    batch = import_create(creditor=creditor, content=io.BytesIO(content), filename=filename, actor=ACTOR)
    import_run(batch=batch, actor=ACTOR, chunk_rows=4)
    batch.refresh_from_db()
    return batch


def _debtor_key(d: Debtor) -> tuple[str, ...]:
    return (
        *(d.kind, d.first_name, d.last_name, d.company_name, d.siren, d.siret, d.vat_number, d.iban),
        *(d.email, d.phone, d.postcode, d.country),
    )


def _summary(creditor: Creditor, batches: list[ImportBatch]) -> dict[str, Any]:
    """Everything an import leaves, with database ids replaced by what they stand for."""
    debtors = {d.pk: _debtor_key(d) for d in Debtor.objects.filter(agency=creditor.agency)}
    balance = {
        r["account__key"]: r["d"] - r["c"]
        for r in Posting.objects.values("account__key").annotate(d=Sum("debit"), c=Sum("credit"))
    }
    claims = {}
    for c in Claim.objects.filter(creditor=creditor):
        (created,) = AuditEvent.objects.filter(verb="claim.created", subject_id=str(c.pk))
        claims[c.external_ref] = (
            c.invoice_number,
            c.invoice_date,
            c.due_date,
            c.currency,
            c.original_amount_minor,
            c.segment,
            balance[c.ledger_key],
            debtors[c.debtor_id],
            created.data["debtor_match"],
        )
    cases = sorted(
        (
            case.currency,
            case.status,
            case.strategy_key,
            debtors[case.debtor_id],
            sorted(case.caseclaim_set.values_list("claim__external_ref", flat=True)),
        )
        for case in Case.objects.filter(creditor=creditor)
    )
    reviews = sorted(
        (debtors[r.debtor_id], debtors[r.candidate_id], r.rule)
        for r in DebtorMatchReview.objects.filter(debtor__agency=creditor.agency)
    )
    creditor_accounts = {
        k[len(f"creditor:{creditor.pk}") :]: v for k, v in balance.items() if k.startswith(f"creditor:{creditor.pk}:")
    }
    return {
        "claims": claims,
        "debtors": sorted(debtors.values()),
        "cases": cases,
        "reviews": reviews,
        "creditor accounts": creditor_accounts,
        "batches": [
            (
                b.status,
                b.message,
                b.rows_total,
                b.rows_done,
                b.rows_created,
                b.rows_unchanged,
                b.rows_credited,
                b.rows_review,
                b.rows_invalid,
                list(b.issues.order_by("row", "pk").values_list("kind", "row", "column", "value", "code", "message")),
            )
            for b in batches
        ],
    }


CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".csv", ".xlsx", ".txt"))


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_each_corpus_file_gives_the_same_state_on_both_paths(name, monkeypatch):
    content = (CORPUS / name).read_bytes()
    fast, orm = _world(1), _world(2)
    fast_batch = _import(fast, content, name, fast=True, monkeypatch=monkeypatch)
    orm_batch = _import(orm, content, name, fast=False, monkeypatch=monkeypatch)
    assert _summary(fast, [fast_batch]) == _summary(orm, [orm_batch])


@pytest.mark.parametrize("consolidate", [True, False], ids=["consolidated", "one-case-per-claim"])
def test_matching_grouping_credit_notes_and_reviews_are_the_same_on_both_paths(consolidate, monkeypatch):
    fast, orm = _world(1, consolidate=consolidate), _world(2, consolidate=consolidate)
    results = {}
    for creditor, is_fast in ((fast, True), (orm, False)):
        first = _import(creditor, _csv(MATCHING), "m.csv", fast=is_fast, monkeypatch=monkeypatch)
        later = _import(creditor, _csv(LATER), "later.csv", fast=is_fast, monkeypatch=monkeypatch)
        again = _import(creditor, _csv(MATCHING), "m.csv", fast=is_fast, monkeypatch=monkeypatch)
        results[is_fast] = _summary(creditor, [first, later, again])
    assert results[True] == results[False]
    summary = results[True]
    # What the file was built to show (so that "equal" is not "equally empty").
    rules = {ref: v[-1] for ref, v in summary["claims"].items()}
    assert rules == {
        "M-01": "new",
        "M-02": "email",
        "M-03": "phone+name",
        "M-04": "name+postcode",
        "M-05": "ambiguous",
        "M-06": "new",
        "M-07": "siren",
        "M-08": "email",
        "M-09": "new",
        "M-11": "email",
        "M-12": "name+postcode",
        "M-13": "email",
    }
    assert summary["reviews"]
    # The company's identifiers are written by both paths, normalised.
    assert summary["claims"]["M-06"][7][5:8] == ("73282932000074", "FR44732829320", "FR7630006000011234567890189")
    first, later, again = summary["batches"]
    assert first[4:9] == (11, 0, 0, 0, 2)
    assert later[4:9] == (1, 1, 1, 1, 0)
    assert again[4:9] == (0, 10, 0, 1, 2)  # M-01 at 100,00 is now above its face value: review
    assert summary["claims"]["M-01"][6] == 6000  # credited from 100,00 to 60,00
    ok, broken = audit_verify()
    assert broken is None and ok > 0


def test_a_file_error_found_by_the_worker_fails_the_import_with_its_message(monkeypatch):
    fast, orm = _world(1), _world(2)
    content = (CORPUS / "missing_columns.csv").read_bytes()
    fast_batch = _import(fast, content, "missing_columns.csv", fast=True, monkeypatch=monkeypatch)
    orm_batch = _import(orm, content, "missing_columns.csv", fast=False, monkeypatch=monkeypatch)
    assert fast_batch.status == orm_batch.status == ImportBatch.Status.FAILED
    assert fast_batch.message == orm_batch.message != ""


def test_duplicate_references_are_found_the_same_once_they_no_longer_fit_in_memory(monkeypatch):
    """Past ``_SeenRefs.IN_MEMORY`` references the first rows move to a temporary file: same reports."""
    rows = [_row(f"D-{n % 7}", f"{10 + n},00", **{"E-mail": f"d{n}@example.fr"}) for n in range(20)]
    small, default = _world(1), _world(2)
    monkeypatch.setattr(imports._SeenRefs, "IN_MEMORY", 3)
    spilled = _import(small, _csv(rows), "d.csv", fast=False, monkeypatch=monkeypatch)
    monkeypatch.setattr(imports._SeenRefs, "IN_MEMORY", 100_000)
    in_memory = _import(default, _csv(rows), "d.csv", fast=False, monkeypatch=monkeypatch)
    assert _summary(small, [spilled]) == _summary(default, [in_memory])
    assert spilled.rows_created == 7
    assert spilled.rows_invalid == 13


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the parse worker runs on PostgreSQL only")
def test_a_killed_parse_worker_stops_the_import_resumably_and_resuming_completes_it(monkeypatch):
    rows = [_row(f"W-{n:02d}", f"{10 + n},00", **{"E-mail": f"w{n}@example.fr"}) for n in range(12)]
    real = imports.validate_claim

    def dies_at_row_9(data: Any, **options: Any) -> Any:
        if data.external_ref == "W-07":
            os._exit(9)  # in the worker process: as if the OOM killer took it
        return real(data, **options)

    creditor, reference = _world(1), _world(2)
    monkeypatch.setattr(imports, "validate_claim", dies_at_row_9)
    monkeypatch.setattr(placement, "PG_COPY", True)
    monkeypatch.setattr(imports, "PARSE_WORKER", True)
    batch = import_create(creditor=creditor, content=io.BytesIO(_csv(rows)), filename="w.csv", actor=ACTOR)
    with pytest.raises(RuntimeError, match="import worker stopped"):
        import_run(batch=batch, actor=ACTOR, chunk_rows=4)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.RUNNING
    assert batch.rows_done in (0, 4)  # whole chunks only (a block still in the dead worker's buffer is lost)
    assert Claim.objects.filter(creditor=creditor).count() == batch.rows_created == batch.rows_done

    monkeypatch.setattr(imports, "validate_claim", real)
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.PENDING)
    batch.refresh_from_db()
    import_run(batch=batch, actor=ACTOR, chunk_rows=4)
    batch.refresh_from_db()
    uninterrupted = _import(reference, _csv(rows), "w.csv", fast=True, monkeypatch=monkeypatch)
    assert _summary(creditor, [batch]) == _summary(reference, [uninterrupted])


def test_copy_tables_fill_unset_columns_from_the_model_defaults_computed_per_row_when_callable():
    from django.utils import timezone

    from relance.claims.models import Evidence
    from relance.intake.bulk_pg import _Table

    table = _Table(Debtor, ["id", "agency_id"], timezone.now())
    tail = dict(zip(table.columns[2:], table.tail, strict=False))
    assert tail["country"] == "FR" and tail["email_opt_out"] is False and tail["phone"] == ""
    assert table.per_row == []
    evidence = _Table(Evidence, ["id"], timezone.now())
    assert [f.name for f in evidence.per_row] == ["uploaded_at"]  # default=timezone.now: one value per row
