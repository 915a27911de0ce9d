"""Evidence attached to claims through the service (issue 3 item 7; invariant 5, "evidence first").

Files are hashed while streamed, limited to 25 MB (stopping at the limit), typed by extension and
content, stored through Django's default storage under a tmp MEDIA_ROOT, audited, and de-duplicated
per claim. Attaching the last missing kind re-arms a case the engine paused.
"""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone

from relance.audit.models import AuditEvent
from relance.cases.models import Case
from relance.claims.models import Evidence
from relance.claims.selectors import evidence_missing, evidence_missing_for_case
from relance.claims.services import (
    MAX_EVIDENCE_BYTES,
    EvidenceEmptyError,
    EvidenceKindError,
    EvidenceTooLargeError,
    EvidenceTypeError,
    evidence_attach,
)
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _stored(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def _attach(claim, content: bytes, filename: str = "invoice.pdf", kind: str = "invoice") -> Evidence:
    return evidence_attach(claim=claim, kind=kind, content=io.BytesIO(content), filename=filename, actor=ACTOR)


class CountingStream(io.RawIOBase):
    """An endless PDF-looking stream that counts what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 64 * 1024 if size is None or size < 0 else size
        chunk = (b"%PDF-" + b" " * size)[:size] if self.read_bytes == 0 else b" " * size
        self.read_bytes += len(chunk)
        return chunk


def test_attaching_a_pdf_stores_it_with_its_sha256_and_audits_it(place, media_root):
    claim = place("INV-1").claim

    evidence = _attach(claim, PDF, filename="Facture F-1.pdf")

    assert evidence.kind == Evidence.Kind.INVOICE
    assert evidence.sha256 == hashlib.sha256(PDF).hexdigest()
    assert evidence.size == len(PDF)
    assert evidence.content_type == "application/pdf"
    assert evidence.original_filename == "Facture F-1.pdf"
    assert evidence.uploaded_by == "system:tests"
    now = timezone.now()
    assert evidence.file.name == f"evidence/{now:%Y}/{now:%m}/{evidence.sha256}.pdf"
    (stored,) = _stored(media_root)
    assert stored.read_bytes() == PDF
    (event,) = AuditEvent.objects.filter(verb="evidence.attached")
    assert (event.subject_type, event.subject_id) == ("claims.claim", str(claim.pk))
    assert event.data["sha256"] == evidence.sha256
    assert event.data["evidence"] == evidence.pk


def test_the_same_file_twice_is_one_record_and_one_stored_file(place, media_root):
    claim = place("INV-1").claim
    first = _attach(claim, PDF)

    again = _attach(claim, PDF, filename="renamed.pdf", kind="other")

    assert again.pk == first.pk
    assert again.kind == Evidence.Kind.INVOICE  # the first record stands; nothing changes twice
    assert Evidence.objects.count() == 1
    assert len(_stored(media_root)) == 1
    assert AuditEvent.objects.filter(verb="evidence.attached").count() == 1


def test_the_same_file_on_two_claims_is_two_records(place):
    first = place("INV-1").claim
    second = place("INV-2", email="paul.durand@example.fr", last_name="Durand").claim
    assert _attach(first, PDF).pk != _attach(second, PDF).pk


def test_a_file_over_25_mb_is_refused_without_reading_the_rest(place, media_root):
    claim = place("INV-1").claim
    stream = CountingStream()

    with pytest.raises(EvidenceTooLargeError) as caught:
        evidence_attach(claim=claim, kind="invoice", content=stream, filename="huge.pdf", actor=ACTOR)

    assert caught.value.fields["field"] == "file"
    assert "25 MB" in caught.value.message
    assert MAX_EVIDENCE_BYTES < stream.read_bytes <= MAX_EVIDENCE_BYTES + 64 * 1024
    assert not Evidence.objects.exists()
    assert _stored(media_root) == []


def test_a_file_of_exactly_25_mb_is_accepted(place):
    content = b"%PDF-" + b" " * (MAX_EVIDENCE_BYTES - 5)
    assert _attach(place("INV-1").claim, content).size == MAX_EVIDENCE_BYTES


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (("invoice.pdf", "invoice", PNG), EvidenceTypeError),  # the content says PNG
        (("invoice.png", "invoice", PDF), EvidenceTypeError),
        (("invoice.jpg", "invoice", PDF), EvidenceTypeError),
        (("invoice.exe", "invoice", b"MZ\x90\x00"), EvidenceTypeError),
        (("invoice", "invoice", PDF), EvidenceTypeError),
        (("invoice.txt", "invoice", b"an invoice in plain text"), EvidenceTypeError),  # documents only
        (("order.csv", "order", b"ref;qty\n1;\x00\n"), EvidenceTypeError),  # not text
        (("invoice.pdf", "invoice", b""), EvidenceEmptyError),
        (("invoice.pdf", "receipt", PDF), EvidenceKindError),
    ],
)
def test_files_that_are_not_what_they_claim_are_refused(place, media_root, upload, error):
    filename, kind, content = upload
    with pytest.raises(error) as caught:
        _attach(place("INV-1").claim, content, filename=filename, kind=kind)
    assert caught.value.fields["field"] == ("kind" if error is EvidenceKindError else "file")
    assert caught.value.status == 422
    assert not Evidence.objects.exists()
    assert _stored(media_root) == []


@pytest.mark.parametrize(
    ("filename", "kind", "content", "content_type"),
    [
        ("scan.PNG", "delivery_proof", PNG, "image/png"),
        ("photo.jpeg", "delivery_proof", b"\xff\xd8\xff\xe0" + b"\x00" * 16, "image/jpeg"),
        ("order.csv", "order", "ref;qté\nA-1;2\n".encode(), "text/csv"),
        ("consent.json", "consent_log", b'{"accepted_at": "2026-01-02T10:00:00Z"}', "application/json"),
        ("cgv.xml", "terms_accepted", b"<terms version='3' accepted='yes'/>", "application/xml"),
        ("log.txt", "consent_log", b"2026-01-02 accepted terms v3", "text/plain"),
    ],
)
def test_accepted_types_get_our_content_type(place, filename, kind, content, content_type):
    assert _attach(place("INV-1").claim, content, filename=filename, kind=kind).content_type == content_type


def test_a_client_path_never_reaches_the_storage(place, media_root):
    evidence = _attach(place("INV-1").claim, PDF, filename="../../etc/cron.d\\..\\evil.pdf")
    assert evidence.original_filename == "evil.pdf"
    (stored,) = _stored(media_root)
    assert stored.is_relative_to(media_root / "evidence")
    assert stored.name == f"{evidence.sha256}.pdf"


def test_required_evidence_must_name_known_kinds(world):
    creditor = world.creditor
    creditor.required_evidence = ["invoice", "delivery_proof"]
    creditor.full_clean()
    creditor.required_evidence = ["invoice", "selfie"]
    with pytest.raises(DjangoValidationError):
        creditor.full_clean()


def test_every_claim_needs_every_required_kind():
    """Invariant 5: one claim's invoice does not prove another claim."""
    assert evidence_missing(["invoice"], [{"invoice"}, set()]) == ("invoice",)
    assert evidence_missing(["invoice", "order"], [{"invoice", "order"}, {"invoice", "order", "other"}]) == ()
    assert evidence_missing(["delivery_proof", "invoice"], [{"invoice"}]) == ("delivery_proof",)
    assert evidence_missing([], [set()]) == ()


def test_missing_evidence_for_a_case_counts_each_claim(world, place):
    Creditor.objects.filter(pk=world.creditor.pk).update(required_evidence=["invoice", "delivery_proof"])
    first = place("INV-1")
    second = place("INV-2")  # same debtor: consolidated into the same case
    assert first.case.pk == second.case.pk
    _attach(first.claim, PDF)
    _attach(first.claim, PNG, filename="pod.png", kind="delivery_proof")

    assert evidence_missing_for_case(case_id=first.case.pk, required=["invoice", "delivery_proof"]) == (
        "invoice",
        "delivery_proof",
    )
    _attach(second.claim, PDF + b"2")
    assert evidence_missing_for_case(case_id=first.case.pk, required=["invoice", "delivery_proof"]) == (
        "delivery_proof",
    )


def test_completing_the_evidence_re_arms_a_paused_case(world, place):
    """Invariant 5: a case paused for missing evidence is due again once the last kind is attached."""
    Creditor.objects.filter(pk=world.creditor.pk).update(required_evidence=["invoice", "delivery_proof"])
    placed = place("INV-1")
    Case.objects.filter(pk=placed.case.pk).update(next_action_at=None)  # as the engine leaves it

    _attach(placed.claim, PDF)
    placed.case.refresh_from_db()
    assert placed.case.next_action_at is None  # still missing the proof of delivery

    before = timezone.now()
    _attach(placed.claim, PNG, filename="pod.png", kind="delivery_proof")
    placed.case.refresh_from_db()
    assert before <= placed.case.next_action_at <= timezone.now()
    (event,) = AuditEvent.objects.filter(verb="case.evidence_complete")
    assert event.subject_id == str(placed.case.pk)


def test_a_scheduled_case_keeps_its_schedule_when_evidence_arrives(world, place):
    Creditor.objects.filter(pk=world.creditor.pk).update(required_evidence=["invoice"])
    placed = place("INV-1")
    later = timezone.now() + timedelta(days=3)
    Case.objects.filter(pk=placed.case.pk).update(next_action_at=later)

    _attach(placed.claim, PDF)

    placed.case.refresh_from_db()
    assert placed.case.next_action_at == later
    assert not AuditEvent.objects.filter(verb="case.evidence_complete").exists()
