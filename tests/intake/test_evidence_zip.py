"""Evidence in bulk: a ZIP with ``manifest.csv`` (issue 3 item 7; invariants 5, 6 and 8).

Every problem is reported with its manifest row (header = row 1); valid rows are attached; a refused
row leaves neither a record nor a stored file; hostile archives (path traversal, zip bombs, lying
headers) cost a bounded amount of work.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from relance.audit.models import AuditEvent
from relance.claims.models import Evidence
from relance.claims.services import MAX_EVIDENCE_BYTES
from relance.intake import evidence_zip
from relance.intake.evidence_zip import evidence_import_zip, member_name_is_safe
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
PDF = b"%PDF-1.4\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _stored(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


def _zip(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    buffer.seek(0)
    return buffer


def _import(world, files: dict[str, bytes], creditor=None):
    return evidence_import_zip(creditor=creditor or world.creditor, zip_file=_zip(files), actor=ACTOR)


def _codes(report) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.code) for e in report.errors]


@pytest.mark.parametrize(
    "manifest",
    [
        "external_ref;kind;filename\nINV-1;invoice;docs/f1.pdf\nINV-2;delivery_proof;pod.png\n",
        "external_ref,kind,filename\r\nINV-1,invoice,docs/f1.pdf\r\nINV-2,delivery_proof,pod.png\r\n",
        "\ufeffKind;Filename;External_Ref\ninvoice;docs/f1.pdf;INV-1\nDELIVERY_PROOF;pod.png;INV-2\n",
    ],
    ids=["semicolon", "comma-crlf", "bom-any-order"],
)
def test_a_valid_zip_attaches_every_row(world, place, manifest):
    first, second = place("INV-1").claim, place("INV-2").claim

    report = _import(world, {"manifest.csv": manifest.encode(), "docs/f1.pdf": PDF, "pod.png": PNG})

    assert report.errors == []
    assert (report.rows, report.attached, report.unchanged) == (2, 2, 0)
    assert Evidence.objects.get(claim=first).kind == "invoice"
    assert Evidence.objects.get(claim=second).kind == "delivery_proof"
    assert Evidence.objects.get(claim=first).original_filename == "f1.pdf"


def test_sending_the_same_zip_twice_changes_nothing_twice(world, place, media_root):
    place("INV-1")
    files = {"manifest.csv": b"external_ref;kind;filename\nINV-1;invoice;f1.pdf\n", "f1.pdf": PDF}
    _import(world, files)

    again = _import(world, files)

    assert (again.attached, again.unchanged, again.errors) == (0, 1, [])
    assert Evidence.objects.count() == 1
    assert len(_stored(media_root)) == 1


def test_every_problem_is_reported_with_its_manifest_row(world, place, media_root):
    place("INV-1")
    place("THEIRS-1", creditor=world.other_creditor)
    manifest = "\n".join(
        [
            "external_ref;kind;filename",
            "INV-1;invoice;f1.pdf",  # 2: fine
            "UNKNOWN;invoice;f1.pdf",  # 3
            "THEIRS-1;invoice;f1.pdf",  # 4: another creditor's claim answers like an unknown one
            "INV-1;selfie;f1.pdf",  # 5
            "INV-1;order;absent.pdf",  # 6
            "INV-1;order;../f1.pdf",  # 7
            "INV-1;order;/etc/passwd",  # 8
            "INV-1;order;C:\\f1.pdf",  # 9
            "INV-1;delivery_proof;fake.png",  # 10: a PDF named .png
            "",  # 11: blank lines are skipped but still counted
            ";invoice;",  # 12
            ";;",  # 13: an empty spreadsheet row is skipped too
            "INV-1;order;order.csv",  # 14: fine
        ]
    )
    files = {"manifest.csv": manifest.encode(), "f1.pdf": PDF, "fake.png": PDF, "order.csv": b"sku;qty\nA;1\n"}

    report = _import(world, files)

    assert _codes(report) == [
        (3, "external_ref", "external_ref.unknown"),
        (4, "external_ref", "external_ref.unknown"),
        (5, "kind", "kind.unknown"),
        (6, "filename", "file.missing"),
        (7, "filename", "filename.unsafe"),
        (8, "filename", "filename.unsafe"),
        (9, "filename", "filename.unsafe"),
        (10, "filename", "evidence.type_not_allowed"),
        (12, "external_ref", "external_ref.missing"),
        (12, "filename", "filename.missing"),
    ]
    assert all(" / " in e.message for e in report.errors)  # English / français
    assert (report.rows, report.attached, report.invalid_rows) == (11, 2, 9)
    # Nothing half-written: only the two valid rows left records and files.
    assert sorted(Evidence.objects.values_list("kind", flat=True)) == ["invoice", "order"]
    assert len(_stored(media_root)) == 2


def test_a_zip_bomb_member_is_refused_from_its_declared_size(world, place, media_root):
    place("INV-1")
    bomb = b"%PDF-" + b"\x00" * MAX_EVIDENCE_BYTES  # 25 MB of zeros deflate to a few kilobytes
    files = {"manifest.csv": b"external_ref;kind;filename\nINV-1;invoice;bomb.pdf\n", "bomb.pdf": bomb}
    archive = _zip(files)
    assert len(archive.getvalue()) < 100_000

    report = evidence_import_zip(creditor=world.creditor, zip_file=archive, actor=ACTOR)

    assert _codes(report) == [(2, "filename", "file.too_big")]
    assert not Evidence.objects.exists()
    assert _stored(media_root) == []


def _lie_about_size(archive: io.BytesIO, member: str, declared: int) -> io.BytesIO:
    """Rewrite the central directory so ``member`` claims ``declared`` uncompressed bytes."""
    data = bytearray(archive.getvalue())
    offset = data.find(b"PK\x01\x02")
    while offset != -1:
        name_len = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46 : offset + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, offset + 24, declared)
        offset = data.find(b"PK\x01\x02", offset + 4)
    return io.BytesIO(bytes(data))


def test_a_member_that_lies_about_its_size_is_cut_off_and_refused(world, place, media_root):
    place("INV-1")
    real = b"%PDF-" + b" " * (MAX_EVIDENCE_BYTES + 1024 * 1024)
    files = {"manifest.csv": b"external_ref;kind;filename\nINV-1;invoice;liar.pdf\n", "liar.pdf": real}
    archive = _lie_about_size(_zip(files), "liar.pdf", 1000)

    report = evidence_import_zip(creditor=world.creditor, zip_file=archive, actor=ACTOR)

    # zipfile stops at the declared 1,000 bytes and the checksum then fails: never 26 MB read.
    assert _codes(report) == [(2, "filename", "file.corrupt")]
    assert not Evidence.objects.exists()
    assert _stored(media_root) == []


def test_the_bytes_unpacked_from_one_zip_are_capped(world, place, monkeypatch):
    place("INV-1")
    place("INV-2")
    place("INV-3")
    monkeypatch.setattr(evidence_zip, "MAX_ZIP_TOTAL_BYTES", 2 * len(PDF) + 1)
    manifest = b"external_ref;kind;filename\nINV-1;invoice;f.pdf\nINV-2;invoice;f.pdf\nINV-3;invoice;f.pdf\n"

    report = _import(world, {"manifest.csv": manifest, "f.pdf": PDF})

    assert report.attached == 2
    assert _codes(report) == [(4, "filename", "zip.too_much_data")]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"f1.pdf": PDF}, [(0, "", "manifest.missing")]),
        (
            {"manifest.csv": b"ref;type;file\nINV-1;invoice;f1.pdf\n"},
            [(1, "external_ref, kind, filename", "manifest.columns")],
        ),
        ({"manifest.csv": b""}, [(1, "external_ref, kind, filename", "manifest.columns")]),
    ],
)
def test_a_zip_without_a_usable_manifest_is_one_error(world, files, expected):
    report = _import(world, files)
    assert _codes(report) == expected
    assert report.rows == 0


def test_a_file_that_is_not_a_zip_is_one_error(world):
    report = evidence_import_zip(creditor=world.creditor, zip_file=io.BytesIO(b"PK\x03\x04garbage"), actor=ACTOR)
    assert _codes(report) == [(0, "", "zip.invalid")]


def test_a_cp1252_manifest_is_read(world, place):
    place("FACT-É1")
    manifest = "external_ref;kind;filename\nFACT-É1;invoice;facture-é.pdf\n".encode("cp1252")
    report = _import(world, {"manifest.csv": manifest, "facture-é.pdf": PDF})
    assert (report.attached, report.errors) == (1, [])


def test_the_import_is_audited_with_its_counts(world, place):
    place("INV-1")
    _import(
        world, {"manifest.csv": b"external_ref;kind;filename\nINV-1;invoice;f.pdf\nX;invoice;f.pdf\n", "f.pdf": PDF}
    )
    (event,) = AuditEvent.objects.filter(verb="evidence.zip_imported")
    assert event.data == {"rows": 2, "attached": 1, "unchanged": 0, "errors": 1}
    assert AuditEvent.objects.filter(verb="evidence.attached").count() == 1


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("f.pdf", True),
        ("docs/2026/f.pdf", True),
        ("../f.pdf", False),
        ("docs/../../f.pdf", False),
        ("/abs.pdf", False),
        ("C:/f.pdf", False),
        ("docs\\f.pdf", False),
        ("docs//f.pdf", False),
        ("./f.pdf", False),
        ("", False),
        ("f\x00.pdf", False),
    ],
)
def test_member_names_must_stay_inside_the_archive(name, safe):
    assert member_name_is_safe(name) is safe
