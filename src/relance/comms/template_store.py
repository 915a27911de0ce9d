"""Message templates edited in the back office: lint, render check, save, preview.

A stored template (``comms.models.MessageTemplate``) overrides the shipped file of the same channel,
name and language, for one creditor or for the whole agency. Nothing is saved that
- does not compile (Django template syntax; the error names the line),
- uses a variable outside ``VARIABLES`` (documented in docs/strategies.md),
- imitates a judicial or bailiff act, invents fees or threatens (FR-COL-15, FR-COL-16, FR-COL-17,
  FR-COL-09/11) — ``lint_template``,
- fails to render for a sample case, or leaves out the case reference that every contact recalls
  with the first letter's date (FR-COL-06).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.template import TemplateSyntaxError, engines
from django.utils import translation

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.comms.models import MessageTemplate
from relance.comms.render import TEXT_ONLY_CHANNELS, Rendered, message_context, message_language, render_message
from relance.compliance import fr
from relance.core.errors import ValidationError
from relance.tenancy.actors import Actor

EDITABLE_CHANNELS = ("email", "sms", "call")

# The variables a template may use (message_context and the channels' extras), documented for editors.
VARIABLES: dict[str, str] = {
    "case": "the case: case.reference (always shown), case.currency",
    "debtor": "the debtor: debtor.display_name, debtor.first_name, debtor.last_name, debtor.company_name",
    "creditor": "the creditor: creditor.display_name, creditor.legal_name, creditor.address",
    "agency": "the agency (Mode B): agency.legal_name, agency.address, agency.email, agency.phone",
    "agency_mode": "true when the agency collects for the creditor (Mode B, R124-4 applies)",
    "claims": "the claims, each with invoice_number, invoice_date, due_date, original, outstanding",
    "outstanding": "the total still owed, formatted in the debtor's language",
    "zero": "zero in the case's currency (interest and other sums lines)",
    "portal_url": "the debtor's personal link (pay, plan, promise, dispute)",
    "l111_8": "the two L111-8 paragraphs to reproduce verbatim in Mode B (FR-COL-07)",
    "amicable_statement": "the statement that the agency collects amicably (FR-COL-05 1°)",
    "first_letter_on": "date of the first letter, empty before it left (FR-COL-06 recall)",
    "forloop": "Django's loop helper inside {% for %}",
}

# FR-COL-09/11/17: fees and damages the platform never invents, unless the sentence denies them.
_FEES = (
    "frais de recouvrement",
    "frais de dossier",
    "frais de relance",
    "frais de l'acte",
    "frais accessoires",
    "dommages et intérêts",
    "dommages-intérêts",
    "collection fee",
    "recovery fee",
    "administration fee",
)
_DENIALS = ("aucun", "aucuns", "sans", "pas de", "ni ", "no ", "without", "not ")
# FR-COL-15/16/17: threats and imitations of judicial acts or public authority, beyond fr.FORBIDDEN_WORDS.
_THREATS = (
    "fichier ficp",
    "ficp",
    "fichage",
    "inscription au fichier",
    "poursuites judiciaires",
    "poursuites pénales",
    "mise en demeure d'huissier",
    "avis d'huissier",
    "acte d'huissier",
    "saisie sur salaire",
    "prison",
    "gendarmerie",
    "police",
    "casier judiciaire",
    "bailiff",
    "court order",
    "seizure",
    "enforcement officer",
    "legal proceedings",
    "criminal",
    "blacklist",
    "credit file",
)
# Layouts that imitate an official document: the Marianne, "RF" letterheads, seals and stamps.
_LAYOUT = re.compile(r"marianne|r[ée]publique|liberté\s*[-,·]\s*égalité|\bcachet\b|\btampon\b|\bseal\b|\bstamp\b", re.I)
_ACT_HEADING = re.compile(r"^\s*(ACTE|AVIS|SOMMATION|COMMANDEMENT|NOTIFICATION|MISE EN DEMEURE)\b[^a-z\n]*$", re.M)
_VARIABLE = re.compile(r"{{\s*([A-Za-z_]\w*)")
_TAG_NAMES = re.compile(r"{%\s*(?:for|with)\s+([^%]*?)\s*%}")


class TemplateInvalidError(ValidationError):
    code = "template.invalid"
    title = "The template cannot be saved"


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    part: str  # subject | body_text | body_html
    line: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.part}, line {self.line}" if self.line else self.part
        return f"{where}: {self.problem}"


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def lint_template(parts: dict[str, str]) -> list[TemplateProblem]:
    """Wording and layout problems of a template's sources (FR-COL-15 and following); [] when clean."""
    problems: list[TemplateProblem] = []
    for part, source in parts.items():
        own = source
        for paragraph in fr.L111_8_PARAGRAPHS:
            own = own.replace(paragraph, " " * len(paragraph))
        lowered = own.lower()
        for word in (*fr.FORBIDDEN_WORDS, *_THREATS):
            problems.extend(
                TemplateProblem(part, _line_of(own, match.start()), f"forbidden wording {word!r} (FR-COL-15/17)")
                for match in re.finditer(r"(?<!\w)" + re.escape(word) + r"(?!\w)", lowered)
            )
        for word in _FEES:
            for match in re.finditer(re.escape(word), lowered):
                before = lowered[max(0, match.start() - 25) : match.start()]
                if not any(d in before for d in _DENIALS):
                    problems.append(
                        TemplateProblem(
                            part,
                            _line_of(own, match.start()),
                            f"{word!r}: collection fees and damages are not charged to the debtor (FR-COL-09/11/17)",
                        )
                    )
        problems.extend(
            TemplateProblem(
                part, _line_of(own, match.start()), f"{match.group(0)!r} imitates an official document (FR-COL-15)"
            )
            for match in _LAYOUT.finditer(own)
        )
        problems.extend(
            TemplateProblem(part, _line_of(own, match.start()), "a heading that reads like a judicial act (FR-COL-15)")
            for match in _ACT_HEADING.finditer(own)
        )
        loop_names = {n for m in _TAG_NAMES.finditer(source) for n in re.findall(r"[A-Za-z_]\w*", m.group(1))}
        for match in _VARIABLE.finditer(source):
            name = match.group(1)
            if name not in VARIABLES and name not in loop_names:
                problems.append(
                    TemplateProblem(part, _line_of(source, match.start()), f"unknown variable {name!r} (see the list)")
                )
    return sorted(problems, key=lambda p: (p.part, p.line or 0))


def _compile(parts: dict[str, str]) -> list[TemplateProblem]:
    problems = []
    for part, source in parts.items():
        try:
            engines["django"].from_string(source)
        except TemplateSyntaxError as exc:
            info = getattr(exc, "template_debug", None)
            line = info.get("line") if isinstance(info, dict) else None
            problems.append(TemplateProblem(part, line, f"template syntax: {exc}"))
    return problems


def _render_parts(parts: dict[str, str], context: dict[str, Any], lang: str) -> dict[str, str]:
    with translation.override(lang):
        return {part: engines["django"].from_string(src).render(context) for part, src in parts.items()}


def template_check(
    *, channel: str, name: str, language: str, subject: str, body_text: str, body_html: str, sample: Case | None
) -> tuple[list[TemplateProblem], dict[str, str]]:
    """Every problem of a template before it is saved, and its rendering for ``sample`` (if any)."""
    problems: list[TemplateProblem] = []
    if channel not in EDITABLE_CHANNELS:
        problems.append(TemplateProblem("channel", None, f"choose one of {', '.join(EDITABLE_CHANNELS)}"))
    if language not in MessageTemplate.Language.values:
        problems.append(TemplateProblem("language", None, "choose fr or en"))
    if not re.match(r"^[A-Za-z0-9_-]{1,40}$", name):
        problems.append(TemplateProblem("name", None, "letters, digits, - and _ only (at most 40)"))
    parts = {"body_text": body_text}
    if channel not in TEXT_ONLY_CHANNELS:
        parts = {"subject": subject, "body_text": body_text, **({"body_html": body_html} if body_html else {})}
        if not subject.strip():
            problems.append(TemplateProblem("subject", None, "an e-mail needs a subject"))
    if not body_text.strip():
        problems.append(TemplateProblem("body_text", None, "the text is empty"))
    problems += _compile(parts)
    if problems:
        return problems, {}
    problems += lint_template(parts)
    if "case.reference" not in body_text and "_mentions" not in body_text:
        problems.append(TemplateProblem("body_text", None, "must show {{ case.reference }} (FR-COL-06 recall)"))
    if "first_letter_on" not in body_text and "_mentions" not in body_text:
        problems.append(
            TemplateProblem(
                "body_text", None, "must recall the first letter: {% if first_letter_on %}…{% endif %} (FR-COL-06)"
            )
        )
    if channel == "sms" and "STOP" not in body_text:
        problems.append(TemplateProblem("body_text", None, "an SMS says how to stop them (STOP)"))
    rendered: dict[str, str] = {}
    if sample is not None and not problems:
        context = {**message_context(case=sample, lang=language), "first_letter_on": sample.placed_at.date()}
        try:
            rendered = _render_parts(parts, context, language)
        except Exception as exc:  # a filter raising on real data, e.g. |date on a text
            problems.append(TemplateProblem("body_text", None, f"does not render for a sample case: {exc}"))
        else:
            # What leaves must be clean too (variables can bring words in).
            problems += [
                TemplateProblem(p.part, None, f"once rendered: {p.problem}")
                for p in lint_template(rendered)
                if "variable" not in p.problem
            ]
    return problems, rendered


@transaction.atomic
def template_save(
    *,
    channel: str,
    name: str,
    language: str,
    subject: str,
    body_text: str,
    body_html: str = "",
    creditor_id: int | None = None,
    sample: Case | None = None,
    actor: Actor,
) -> MessageTemplate:
    """Lint, render-check and store a template (new or replacing the same slot); audited."""
    problems, _ = template_check(
        channel=channel,
        name=name,
        language=language,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        sample=sample,
    )
    if problems:
        raise TemplateInvalidError("; ".join(str(p) for p in problems), problems=[str(p) for p in problems])
    row, created = MessageTemplate.objects.update_or_create(
        channel=channel,
        name=name,
        language=language,
        creditor_id=creditor_id,
        defaults={"subject": subject, "body_text": body_text, "body_html": body_html},
    )
    audit_record(
        actor=actor,
        verb="template.saved",
        subject=row,
        data={"channel": channel, "name": name, "language": language, "creditor": creditor_id, "created": created},
    )
    return row


@transaction.atomic
def template_delete(*, template_id: int, actor: Actor) -> bool:
    """Remove a stored template (the shipped file applies again); audited. False if there is none."""
    row = MessageTemplate.objects.filter(pk=template_id).first()
    if row is None:
        return False
    audit_record(actor=actor, verb="template.deleted", subject=row, data={"name": row.name, "channel": row.channel})
    row.delete()
    return True


def template_preview(*, case: Case, channel: str, template: str) -> Rendered:
    """The message ``case`` would get now (stored template or shipped file), without sending anything."""
    return render_message(case=case, channel=channel, template=template)


__all__ = ["VARIABLES", "lint_template", "message_language", "template_check", "template_preview", "template_save"]
