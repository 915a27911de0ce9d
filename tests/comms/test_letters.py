"""Letters: real PDFs from WeasyPrint, the window-envelope address block, the print batch and NPAI.

FR-COL-05..07 (R124-4): a Mode B letter carries the collector with "recouvrement amiable", the
creditor, the amounts split into principal / interest / other sums, how to pay and the two L111-8
paragraphs verbatim, and recalls "Réf. … — courrier du …" (FR-COL-06). FR-COL-15/17: no wording
imitating a judicial act. Mode A letters speak in the creditor's name only.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction
from pypdf import PdfReader

from relance.audit.models import AuditEvent
from relance.claims.models import Debtor
from relance.comms.channels import SendContext
from relance.comms.channels.letter import LetterSender
from relance.comms.letters import letter_missing_mentions, letter_print_batch, letter_render, letter_returned
from relance.comms.models import Action
from relance.comms.services import action_queue, outbox_dispatch
from relance.compliance import fr
from relance.core.errors import ValidationError
from relance.strategies.engine import engine_tick
from relance.strategies.services import strategy_save
from relance.tenancy.actors import Actor
from support import next_working_day_at

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
TRUST_IBAN = "FR7630006000011234567890189"
LETTERS = """
key: letters
version: 1
name: "Letters"
steps:
  - id: first_letter
    after_days: 0
    action: letter
    template: first_notice
  - id: reminder_letter
    after_days: 10
    action: letter
    template: reminder
  - id: return
    after_days: 30
    action: return_to_creditor
"""
MM = 72 / 25.4  # PDF points per millimetre


def _weekday_noon() -> datetime:
    return next_working_day_at(12)


@pytest.fixture
def letters(world, settings, tmp_path):
    """The world with a trust account, a letter strategy as the default and a private media folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    world.agency.trust_iban = TRUST_IBAN
    world.agency.save()
    strategy_save(source=LETTERS, make_default=True, actor=ACTOR)
    return world


def _send(now: datetime) -> None:
    engine_tick(now=now)
    outbox_dispatch(now=now)


def _pdf(action: Action) -> bytes:
    with default_storage.open(action.provider_message_id, "rb") as fh:
        return fh.read()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _pdf_text(data: bytes) -> str:
    return _flat("\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def test_mode_b_letter_is_a_real_pdf_with_every_r124_4_mention(letters, place):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case

    _send(now)

    (action,) = Action.objects.filter(case=case)
    assert (action.channel, action.status) == ("letter", Action.Status.SENT)
    assert action.provider_message_id == f"letters/{now:%Y-%m-%d}/action-{action.pk}.pdf"
    data = _pdf(action)
    assert data.startswith(b"%PDF")
    assert action.content_hash == hashlib.sha256(data).hexdigest()
    assert len(PdfReader(io.BytesIO(data)).pages) >= 1
    text = _pdf_text(data)
    for mention in (
        "Recouvrement Test SAS",  # collector (R124-4 1°)
        "recouvrement amiable",
        "Shop SAS",  # creditor (2°)
        "Principal",  # amounts, itemised (3°)
        "Intérêts",
        "Autres sommes",
        "Nous vous demandons de bien vouloir régler",  # demand to pay (4°)
        f"Réf. {case.reference} — courrier du {now:%d/%m/%Y}",  # FR-COL-06
        _flat(fr.L111_8_PARAGRAPHS[0]),  # L111-8 verbatim (5°, FR-COL-07)
        _flat(fr.L111_8_PARAGRAPHS[1]),
    ):
        assert mention in text, mention
    assert TRUST_IBAN in text.replace(" ", "")  # FR-COL-02: pay into the trust account
    assert f"{settings.PUBLIC_BASE_URL}/p/" in text.replace(" ", "")  # the portal link
    own_words = text
    for paragraph in fr.L111_8_PARAGRAPHS:
        own_words = own_words.replace(_flat(paragraph), "")
    assert fr.forbidden_words_in(own_words) == []
    assert "frais de recouvrement" not in own_words.lower()  # never collection costs (FR-COL-09)
    # What is kept on the action is the letter's text, readable without the PDF.
    assert "recouvrement amiable" in action.body_text
    assert _flat(fr.L111_8_PARAGRAPHS[1]) in _flat(action.body_text)
    assert action.subject.startswith("Objet : facture impayée")
    assert "33000 BORDEAUX" in action.to_address


def _positions(data: bytes) -> dict[str, tuple[float, float]]:
    """Where page 1 draws each text run: (mm from the left edge, mm from the top edge), highest first."""
    page = PdfReader(io.BytesIO(data)).pages[0]
    height = float(page.mediabox.height)
    found: dict[str, tuple[float, float]] = {}

    def visit(text, cm, tm, font, size):
        if not text.strip():
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        top = (height - y) / MM
        if text.strip() not in found or top < found[text.strip()][1]:  # the highest run of that text
            found[text.strip()] = (x / MM, top)

    page.extract_text(visitor_text=visit)
    return found


def test_address_block_sits_in_the_window_of_a_french_envelope(letters, place):
    """The window frame: 85 × 33 mm, 110 mm from the left and 55 mm from the top (see _layout.css)."""
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    _send(now)
    action = Action.objects.get(case=case)

    positions = _positions(_pdf(action))

    for line in ("Jeanne Martin", "3 rue des Lilas", "33000 BORDEAUX"):
        left, top = positions[line]
        assert 109.9 <= left <= 112, (line, left)
        assert 55 <= top <= 88, (line, top)
    assert positions["Jeanne Martin"][1] < positions["33000 BORDEAUX"][1]
    sender_left, sender_top = positions["Recouvrement Test SAS"]
    assert sender_left < 100 and sender_top < 55  # the sender stays out of the window
    # Structurally: the CSS box the PDF was made from.
    assert "margin: 15mm 20mm 18mm 20mm" in action.body_html
    assert "top: 40mm" in action.body_html and "left: 90mm" in action.body_html
    assert "width: 85mm" in action.body_html and "height: 33mm" in action.body_html


def test_mode_a_letter_speaks_in_the_creditors_name_only(letters, place):
    now = _weekday_noon()
    letters.other_creditor.address = "9 avenue du Port, 13002 Marseille"
    letters.other_creditor.save()
    case = place("INV-A", "80.00", creditor=letters.other_creditor).case

    _send(now)

    action = Action.objects.get(case=case)
    text = _pdf_text(_pdf(action))
    assert "Other SARL" in text
    assert "Marseille, le" in text
    assert "Principal" in text
    assert TRUST_IBAN in text.replace(" ", "")
    assert "Recouvrement Test SAS" not in text
    assert "recouvrement amiable" not in text
    assert "L111-8" not in text


def test_letter_in_english_for_an_english_speaking_debtor(letters, place):
    now = _weekday_noon()
    case = place("INV-E", "42.00", language="en").case
    _send(now)
    action = Action.objects.get(case=case)
    text = _pdf_text(_pdf(action))
    assert "Dear Sir or Madam" in text
    assert f"Ref. {case.reference} — letter of {now:%d/%m/%Y}" in text
    assert "recouvrement amiable" in text and _flat(fr.L111_8_PARAGRAPHS[0]) in text


def test_later_letters_recall_the_first_letters_reference_and_date(letters, place):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    _send(now)
    later = now + timedelta(days=14)
    while later.weekday() >= 5:
        later += timedelta(days=1)

    _send(later)

    reminder = Action.objects.get(case=case, template="reminder")
    assert reminder.status == Action.Status.SENT
    assert f"Réf. {case.reference} — courrier du {now:%d/%m/%Y}" in _pdf_text(_pdf(reminder))
    assert reminder.provider_message_id.startswith(f"letters/{later:%Y-%m-%d}/")


def test_print_batch_merges_the_days_letters_with_a_manifest(letters, place):
    now = _weekday_noon()
    letters.creditor.registered_letters = True
    letters.creditor.save()
    cases = [place(f"INV-{n}", "120.50", email=f"d{n}@example.fr", last_name=f"Martin{n}").case for n in range(3)]
    _send(now)
    actions = list(Action.objects.filter(case__in=cases).order_by("pk"))
    pages = [len(PdfReader(io.BytesIO(_pdf(a))).pages) for a in actions]

    pdf_name, manifest_name = letter_print_batch(day=now.date())

    with default_storage.open(pdf_name, "rb") as fh:
        merged = PdfReader(io.BytesIO(fh.read()))
    assert len(merged.pages) == sum(pages)
    with default_storage.open(manifest_name, "rb") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read().decode("utf-8"))))
    assert [int(r["action_id"]) for r in rows] == [a.pk for a in actions]
    assert [int(r["pages"]) for r in rows] == pages
    assert [int(r["first_page"]) for r in rows] == [1, 1 + pages[0], 1 + pages[0] + pages[1]]
    first = rows[0]
    assert first["case_reference"] == cases[0].reference
    assert (first["recipient_name"], first["address_line1"], first["postcode"], first["city"], first["country"]) == (
        "Jeanne Martin0",
        "3 rue des Lilas",
        "33000",
        "Bordeaux",
        "FR",
    )
    assert {r["registered"] for r in rows} == {"yes"}
    assert [r["sha256"] for r in rows] == [a.content_hash for a in actions]
    # The registered-letter option shows on the letter too.
    assert "Lettre recommandée" in _pdf_text(_pdf(actions[0]))
    # Rebuilding the day gives the same batch; another day has none.
    assert letter_print_batch(day=now.date()) == (pdf_name, manifest_name)
    empty_pdf, empty_manifest = letter_print_batch(day=now.date() - timedelta(days=1))
    assert empty_pdf == ""
    with default_storage.open(empty_manifest, "rb") as fh:
        assert fh.read().decode().count("\n") == 1


def test_batch_command_prints_where_the_files_are(letters, place, capsys):
    now = _weekday_noon()
    place("INV-1", "120.50")
    _send(now)
    call_command("letters", "batch", "--day", f"{now:%Y-%m-%d}")
    out = capsys.readouterr().out
    assert f"letters-{now:%Y-%m-%d}.pdf" in out and f"manifest-{now:%Y-%m-%d}.csv" in out


def test_postal_return_flags_the_address_and_blocks_the_next_letter(letters, place):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    _send(now)
    action = Action.objects.get(case=case)

    letter_returned(action=action, reason="NPAI — destinataire inconnu à l'adresse", actor=ACTOR)

    action.refresh_from_db()
    assert action.status == Action.Status.BOUNCED
    assert "NPAI" in action.status_reason
    debtor = Debtor.objects.get(pk=case.debtor_id)
    assert debtor.address_invalid and debtor.address_invalid_at is not None
    assert AuditEvent.objects.filter(verb="letter.returned", subject_id=str(case.pk)).exists()
    with transaction.atomic():
        again = action_queue(
            case=case, channel="letter", template="reminder", step_key="manual:1", scheduled_at=now, actor=ACTOR
        )
    outbox_dispatch(now=now + timedelta(hours=1))
    again.refresh_from_db()
    assert again.status == Action.Status.BLOCKED
    assert "postal address is invalid" in again.status_reason
    assert "NPAI — destinataire inconnu" in again.status_reason
    assert not again.provider_message_id


def test_after_a_postal_return_the_engine_skips_the_next_letter_step_with_its_reason(letters, place):
    """NPAI: the strategy moves on instead of queuing letters that can only be blocked."""
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    _send(now)
    letter_returned(action=Action.objects.get(case=case), reason="NPAI", actor=ACTOR)

    later = now + timedelta(days=10)
    while later.weekday() >= 5:
        later += timedelta(days=1)
    engine_tick(now=later)

    assert Action.objects.filter(case=case).count() == 1  # no second letter queued
    case.refresh_from_db()
    assert case.step == 2  # the reminder letter step was passed
    skipped = AuditEvent.objects.filter(verb="engine.deferred", subject_id=str(case.pk)).order_by("-seq").first()
    assert skipped is not None
    assert "reminder_letter skipped: no letter address" in skipped.data["reason"]


def test_incomplete_address_blocks_the_letter(letters, place):
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    Debtor.objects.filter(pk=case.debtor_id).update(city="", address_line2="")  # e.g. edited by hand
    _send(now)
    action = Action.objects.get(case=case)
    assert action.status == Action.Status.BLOCKED
    assert "incomplete" in action.status_reason and "city" in action.status_reason


def test_a_letter_dispatched_twice_is_one_file(letters, place):
    """A dispatcher that died after writing the PDF: the recovered dispatch sends that same PDF."""
    now = _weekday_noon()
    case = place("INV-1", "120.50").case
    engine_tick(now=now)
    action = Action.objects.select_related("case__creditor__agency", "case__debtor").get(case=case)
    crashed = LetterSender().send(action, SendContext(now=now))  # file written, outcome never recorded

    outbox_dispatch(now=now + timedelta(minutes=20))

    action.refresh_from_db()
    assert action.status == Action.Status.SENT
    assert action.provider_message_id == crashed.provider_message_id
    assert action.content_hash == crashed.content_hash
    folder = crashed.provider_message_id.rsplit("/", 1)[0]
    assert default_storage.listdir(folder)[1] == [f"action-{action.pk}.pdf"]


def test_refuses_a_letter_with_judicial_wording(letters, place):
    case = place("INV-1", "120.50").case
    case.creditor.legal_name = "Huissier Express SARL"
    case.creditor.save()
    with pytest.raises(ValidationError, match="forbidden wording"):
        letter_render(case=case, template="first_notice", letter_date=_weekday_noon().date())


def test_mode_b_mentions_check_names_what_is_missing():
    full = " ".join(
        [
            "Agence SAS exerce une activité de recouvrement amiable pour Shop SAS.",
            "Principal 10 € Intérêts 0 € Autres sommes 0 €",
            "https://pay.example/portal/x",
            "Réf. R-1 — courrier du 01/02/2026",
            *fr.L111_8_PARAGRAPHS,
        ]
    )
    args = {
        "collector": "Agence SAS",
        "creditor": "Shop SAS",
        "reference_line": "Réf. R-1 — courrier du 01/02/2026",
        "payment_marks": ["https://pay.example/portal/x"],
    }
    assert letter_missing_mentions(text=full, **args) == []
    assert letter_missing_mentions(text=full.replace(fr.L111_8_PARAGRAPHS[1], ""), **args) == ["L111-8 paragraphs"]
    assert letter_missing_mentions(text=full.replace("Intérêts 0 €", ""), **args) == ["intérêts"]
    assert letter_missing_mentions(text=full.replace("recouvrement amiable", "recouvrement"), **args) == [
        "recouvrement amiable"
    ]
