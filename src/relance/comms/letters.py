"""Postal letters: rendering to PDF, the daily print batch and postal returns (NPAI).

A letter is an A4 HTML page (``comms/templates/comms/letter/<template>.<lang>.html``, layout and
window-envelope geometry in ``_layout.css``) turned into PDF by WeasyPrint. Invariants kept here:

- a Mode B letter cannot leave without the R124-4 mentions (FR-COL-05..07): ``letter_render`` refuses
  it, as it refuses wording imitating a judicial act or a threat (FR-COL-15/17);
- one action, one file: ``letters/<day>/action-<id>.pdf`` is a function of the action alone, so a
  dispatch repeated after a crash finds the PDF already written and sends that one (idempotent);
- the print batch is rebuilt from the stored PDFs and checks each against the SHA-256 recorded when
  it was sent: the printing house prints exactly what the debtor's file says was sent;
- a postal return (NPAI) bounces the action and flags the debtor's address in one audited
  transaction, and ``LetterSender.blocked`` then refuses letters to that address.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from relance.audit.services import audit_record
from relance.cases.models import Case, WorkItem
from relance.cases.queues import work_item_open
from relance.claims.models import Debtor
from relance.comms.models import Action
from relance.comms.render import message_context, message_language
from relance.compliance import fr
from relance.core.errors import ConflictError, ValidationError
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

LETTER_TEMPLATES = ("first_notice", "reminder", "final_notice")
# Actions whose PDF went to the printing house (a later return or delivery keeps them in their batch).
PRINTED_STATUSES = (Action.Status.SENT, Action.Status.DELIVERED, Action.Status.BOUNCED)
MANIFEST_COLUMNS = (
    "action_id",
    "case_reference",
    "recipient_name",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country",
    "first_page",
    "pages",
    "registered",
    "sha256",
    "file",
)


@dataclass(frozen=True, slots=True)
class RenderedLetter:
    subject: str
    text: str
    html: str


# --- rendering -----------------------------------------------------------------------------------


def debtor_postal_lines(debtor: Debtor) -> list[str]:
    """The address block as printed (AFNOR NF Z10-011 order: name, street, postcode and town, country)."""
    lines = [debtor.display_name, debtor.address_line1, debtor.address_line2]
    lines.append(f"{debtor.postcode} {debtor.city.upper()}".strip())
    if debtor.country and debtor.country.upper() != "FR":
        lines.append(debtor.country.upper())
    return [line for line in (" ".join(part.split()) for part in lines) if line]


def debtor_address_missing(debtor: Debtor) -> list[str]:
    """Fields an envelope cannot do without (empty when the address is complete)."""
    fields = {
        "name": f"{debtor.first_name}{debtor.last_name}{debtor.company_name}",
        "address_line1": debtor.address_line1,
        "postcode": debtor.postcode,
        "city": debtor.city,
        "country": debtor.country,
    }
    return [name for name, value in fields.items() if not value.strip()]


def _place(address: str) -> str:
    """The town of a sender address ("… 75001 Paris" → "Paris"), for the "Paris, le …" line."""
    match = re.search(r"\b\d{5}\s+([^\n,]+)\s*$", address.strip())
    return match.group(1).strip() if match else ""


def _qr_data_uri(url: str) -> str:
    import segno  # noqa: PLC0415 - only letters need it

    svg = io.BytesIO()
    segno.make(url, error="m").save(svg, kind="svg", scale=4, border=0, xmldecl=True)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()


def _group_iban(iban: str) -> str:
    compact = iban.replace(" ", "").upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def reference_line(*, reference: str, first_letter_on: date, lang: str) -> str:
    """FR-COL-06: every contact recalls the first letter's reference and date."""
    if lang == "en":
        return f"Ref. {reference} — letter of {first_letter_on:%d/%m/%Y}"
    return f"Réf. {reference} — courrier du {first_letter_on:%d/%m/%Y}"


def first_letter_date(*, case: Case, default: date, exclude_action_id: int | None = None) -> date:
    """The date of the case's first letter that left (FR-COL-06); ``default`` when this is the first."""
    earlier = Action.objects.filter(case=case, channel=Action.Channel.LETTER, sent_at__isnull=False)
    if exclude_action_id is not None:
        earlier = earlier.exclude(pk=exclude_action_id)
    first = earlier.order_by("sent_at").values_list("sent_at", flat=True).first()
    return timezone.localdate(first) if first is not None else default


def letter_render(
    *, case: Case, template: str, letter_date: date, first_letter_on: date | None = None
) -> RenderedLetter:
    """The letter's HTML and its text; refuses a Mode B letter missing an R124-4 mention."""
    if template not in LETTER_TEMPLATES:
        raise ValidationError(f"Unknown letter template {template!r}.", template=template)
    lang = message_language(case)
    context: dict[str, Any] = message_context(case=case, lang=lang)
    creditor, agency = case.creditor, case.creditor.agency
    agency_mode = creditor.mode == Creditor.Mode.AGENCY
    # Mode B: the collector writes (R124-4 1°); Mode A: the merchant writes, the agency stays unseen.
    if agency_mode:
        sender = {"name": agency.legal_name, "address": agency.address, "email": agency.email, "phone": agency.phone}
    else:
        sender = {"name": creditor.legal_name, "address": creditor.address, "email": creditor.support_email}
    ref_line = reference_line(reference=case.reference, first_letter_on=first_letter_on or letter_date, lang=lang)
    context |= {
        "lang": lang,
        "sender": sender,
        "place": _place(sender["address"]),
        "letter_date": letter_date,
        "reference_line": ref_line,
        "recipient_lines": debtor_postal_lines(case.debtor),
        "registered": creditor.registered_letters,
        "qr_data_uri": _qr_data_uri(context["portal_url"]),
        "trust_iban_display": _group_iban(agency.trust_iban),
    }
    name = f"comms/letter/{template}.{lang}.html"
    with translation.override(lang):
        html = render_to_string(name, context)
    subject, text = html_text(html)
    own_words = " ".join(text.split())
    for paragraph in fr.L111_8_PARAGRAPHS:
        own_words = own_words.replace(paragraph, "")
    bad = fr.forbidden_words_in(own_words)
    if bad:
        raise ValidationError(f"Letter {name} uses forbidden wording (FR-COL-15/17): {', '.join(bad)}.", template=name)
    if agency_mode:
        missing = letter_missing_mentions(
            text=text,
            collector=agency.legal_name,
            creditor=creditor.legal_name,
            reference_line=ref_line,
            payment_marks=[context["portal_url"], agency.trust_iban] if agency.trust_iban else [context["portal_url"]],
        )
        if missing:
            raise ValidationError(
                f"Letter {name} lacks mandatory mentions (R124-4, FR-COL-05/06): {', '.join(missing)}.",
                template=name,
                missing=missing,
            )
    return RenderedLetter(subject=subject, text=text, html=html)


def letter_missing_mentions(
    *, text: str, collector: str, creditor: str, reference_line: str, payment_marks: list[str]
) -> list[str]:
    """FR-COL-05/06/07: the mentions a Mode B letter must carry, by name, that ``text`` lacks."""
    flat = " ".join(text.split())
    compact = flat.replace(" ", "")
    checks = {
        "collector identity": collector in flat,
        "recouvrement amiable": "recouvrement amiable" in flat,
        "creditor identity": creditor in flat,
        "principal": "Principal" in flat,
        "intérêts": "Intérêts" in flat,
        "autres sommes": "Autres sommes" in flat,
        "payment terms": any(mark.replace(" ", "") in compact for mark in payment_marks),
        "reference line": reference_line in flat,
        "L111-8 paragraphs": all(" ".join(p.split()) in flat for p in fr.L111_8_PARAGRAPHS),
    }
    return [name for name, present in checks.items() if not present]


class _TextExtractor(HTMLParser):
    """Text of a letter's HTML, one line per block; the ``subject`` element is also kept apart."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "table", "h1", "h2", "h3", "li", "ul", "ol"})
    SKIP = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skipping = 0
        self.in_subject = 0
        self.subject: list[str] = []

    def _flush(self) -> None:
        line = " ".join("".join(self.current).split())
        if line:
            self.lines.append(line)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self._flush()
        elif tag in {"td", "th"}:
            self.current.append("  ")
        if self.in_subject and tag == "div":
            self.in_subject += 1
        elif tag == "div" and ("class", "subject") in attrs:
            self.in_subject = 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self._flush()
        if tag == "div" and self.in_subject:
            self.in_subject -= 1

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.current.append(data)
        if self.in_subject:
            self.subject.append(data)


def html_text(html: str) -> tuple[str, str]:
    """(subject, text) of a letter's HTML: what the debtor reads, as plain text."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    parser._flush()
    return " ".join("".join(parser.subject).split()), "\n".join(parser.lines) + "\n"


def letter_pdf(html: str) -> bytes:
    """WeasyPrint: HTML → PDF bytes. Fonts come from the system (Debian's DejaVu), never downloaded."""
    from weasyprint import HTML  # noqa: PLC0415 - loads Pango; only the letter paths need it

    pdf = HTML(string=html, base_url=None).write_pdf()
    if not isinstance(pdf, bytes):  # write_pdf returns bytes when no target is given
        raise TypeError("WeasyPrint returned no PDF")
    return pdf


# --- storage -------------------------------------------------------------------------------------


def letter_storage_name(action: Action) -> str:
    """Where the action's PDF lives. ``scheduled_at`` does not move between the claim and the send
    nor when a crashed dispatch is recovered, so a repeated dispatch finds the same name."""
    return f"letters/{timezone.localdate(action.scheduled_at):%Y-%m-%d}/action-{action.pk}.pdf"


def _is_complete_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def letter_stored_pdf(name: str) -> bytes | None:
    """The stored PDF when complete; a file cut short by a crash counts as absent."""
    if not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as fh:
        data = fh.read()
    return data if _is_complete_pdf(data) else None


def letter_store_pdf(name: str, pdf: bytes) -> None:
    if default_storage.exists(name):
        default_storage.delete(name)  # an incomplete file left by a crashed dispatch
    saved = default_storage.save(name, ContentFile(pdf))
    if saved != name:  # another dispatcher wrote it in between: theirs is the letter
        default_storage.delete(saved)


# --- the daily print batch -----------------------------------------------------------------------


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    following = day + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    return start, datetime(following.year, following.month, following.day, tzinfo=tz)


def letter_print_batch(*, day: date) -> tuple[str, str]:
    """Merge the letters sent on ``day`` (local time) into one PDF plus a CSV manifest.

    Returns the storage names of (PDF, manifest), under ``letters/batches/<day>/``; a day without
    letters gives a header-only manifest and no PDF (``""``). Rebuilding a day gives the same files.
    """
    from pypdf import PdfReader, PdfWriter  # noqa: PLC0415 - only the batch needs it

    start, end = _day_bounds(day)
    actions = (
        Action.objects.filter(
            channel=Action.Channel.LETTER, status__in=PRINTED_STATUSES, sent_at__gte=start, sent_at__lt=end
        )
        .select_related("case__creditor", "debtor")
        .order_by("pk")
    )
    folder = f"letters/batches/{day:%Y-%m-%d}"
    pdf_name, manifest_name = f"{folder}/letters-{day:%Y-%m-%d}.pdf", f"{folder}/manifest-{day:%Y-%m-%d}.csv"
    writer = PdfWriter()
    manifest = io.StringIO()
    out = csv.writer(manifest, lineterminator="\n")
    out.writerow(MANIFEST_COLUMNS)
    next_page = 1
    for action in actions:
        name = action.provider_message_id
        data = letter_stored_pdf(name) if name else None
        if data is None:
            raise ConflictError(f"Letter of action {action.pk} is missing from storage ({name}).", action=action.pk)
        digest = hashlib.sha256(data).hexdigest()
        if digest != action.content_hash:
            raise ConflictError(f"Letter of action {action.pk} differs from the one sent ({name}).", action=action.pk)
        reader = PdfReader(io.BytesIO(data))
        pages = len(reader.pages)
        writer.append(reader)
        debtor = action.debtor
        out.writerow(
            (
                action.pk,
                action.case.reference,
                debtor.display_name,
                debtor.address_line1,
                debtor.address_line2,
                debtor.postcode,
                debtor.city,
                debtor.country,
                next_page,
                pages,
                "yes" if action.case.creditor.registered_letters else "no",
                digest,
                name,
            )
        )
        next_page += pages
    for stale in (pdf_name, manifest_name):
        if default_storage.exists(stale):
            default_storage.delete(stale)
    if next_page > 1:
        merged = io.BytesIO()
        writer.write(merged)
        default_storage.save(pdf_name, ContentFile(merged.getvalue()))
    else:
        pdf_name = ""
    default_storage.save(manifest_name, ContentFile(manifest.getvalue().encode("utf-8")))
    return pdf_name, manifest_name


# --- postal returns ------------------------------------------------------------------------------


@transaction.atomic
def letter_returned(*, action: Action, reason: str, actor: Actor | None = None) -> Action:
    """A letter came back (NPAI…): bounce the action and flag the debtor's address, audited together."""
    actor = actor or Actor.system("letters")
    action = Action.objects.select_for_update().select_related("case").get(pk=action.pk)
    if action.channel != Action.Channel.LETTER:
        raise ValidationError("Only letters come back by post.", action=action.pk)
    if action.status not in (Action.Status.SENT, Action.Status.DELIVERED, Action.Status.BOUNCED):
        raise ConflictError(f"Action {action.pk} was not sent ({action.status}).", action=action.pk)
    reason = " ".join(reason.split())[:200] or "NPAI"
    now = timezone.now()
    if action.status != Action.Status.BOUNCED:
        action.status = Action.Status.BOUNCED
        action.status_reason = f"returned by post: {reason}"[:300]
        action.save(update_fields=["status", "status_reason", "updated_at"])
    Debtor.objects.filter(pk=action.debtor_id).update(
        address_invalid=True, address_invalid_at=now, address_invalid_reason=reason, updated_at=now
    )
    audit_record(
        actor=actor,
        verb="letter.returned",
        subject=action.case,
        data={"action": action.pk, "debtor": action.debtor_id, "reason": reason},
    )
    # Someone must find a better address (issue 6: returned-mail queue).
    work_item_open(
        kind=WorkItem.Kind.RETURNED_MAIL,
        source=f"letter:{action.pk}",
        agency_id=action.case.creditor.agency_id,
        case=action.case,
        title=f"Letter returned ({reason}) — {action.case.reference}",
        data={"action": action.pk, "reason": reason},
        actor=actor,
    )
    return action
