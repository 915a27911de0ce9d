"""Rendering a message for one case: the words, the amounts and the portal link.

Templates live in ``comms/templates/comms/<channel>/<template>.<lang>.(subject|txt|html)``; SMS
templates are a ``.txt`` alone.
Mode B messages carry the R124-4 mentions (FR-COL-05..07); every rendered text is checked against
the forbidden wording of FR-COL-15/17 before it can leave.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.template import Context, engines
from django.template.base import Template
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from relance.cases.links import portal_token, portal_url
from relance.cases.models import Case, CaseClaim
from relance.cases.selectors import ClaimBalance, case_claim_balances
from relance.claims.models import Claim
from relance.comms.batch_sql import among
from relance.comms.models import Action, MessageTemplate
from relance.comms.template_fold import fold
from relance.compliance import fr
from relance.core.errors import ValidationError
from relance.core.money import Money, minor_digits
from relance.ledger.services import account_balances
from relance.tenancy.models import Creditor

# Channels whose messages are a text alone (no subject, no HTML part): only ``<template>.<lang>.txt``.
TEXT_ONLY_CHANNELS = frozenset({"sms", "call"})


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256("\x1f".join((self.subject, self.text, self.html)).encode()).hexdigest()


def _language(case: Case) -> str:
    return "en" if case.debtor.language.startswith("en") else "fr"


def message_language(case: Case) -> str:
    """The language a case's messages are written in ("fr" or "en")."""
    return _language(case)


# reverse() leaves these characters of a path argument as they are (RFC 3986 unreserved, sub-delims, ":").
_PATH_SAFE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+\Z")


class TokenPath:
    """``reverse(viewname, kwargs={"token": token})``, reversed once: the token is put between the two
    fixed parts of the path (same result, tested); a token ``reverse`` would quote is reversed as usual."""

    _MARK = "tOkEn-Mark_0"

    def __init__(self, viewname: str) -> None:
        self.viewname = viewname
        path = reverse(viewname, kwargs={"token": self._MARK})
        self.affixes = tuple(path.split(self._MARK)) if path.count(self._MARK) == 1 else None

    def __call__(self, token: str) -> str:
        if self.affixes is None or not _PATH_SAFE.match(token):
            return reverse(self.viewname, kwargs={"token": token})
        prefix, suffix = self.affixes
        return f"{prefix}{token}{suffix}"


# The template variables that are the same for every message of one creditor (FR-COL-05/07 mentions,
# the creditor's and the agency's identity): a batch renders what only reads them once (template_fold).
BATCH_WIDE_VARIABLES = ("creditor", "agency", "agency_mode", "l111_8", "amicable_statement")


def _creditor_context(creditor: Creditor) -> dict[str, Any]:
    return {
        "creditor": creditor,
        "agency": creditor.agency,
        "agency_mode": creditor.mode == Creditor.Mode.AGENCY,
        "l111_8": fr.L111_8_PARAGRAPHS,
        "amicable_statement": fr.AMICABLE_COLLECTION_STATEMENT,
    }


@dataclass
class RenderPrefetch:
    """What rendering reads from the database, read once for a batch of cases (the dispatcher's).

    Per case: its claims with their ledger balances and the day of its first letter; per creditor and
    language: the back office's stored template. ``forget`` drops a case (e.g. when the batch itself
    sends its first letter): it is then read again, per message, as without a prefetch.

    It also keeps what rendering works out once per batch: each template folded for a creditor and a
    language (``template_fold``), the portal link's path around the token, and one template ``Context``.
    """

    balances: dict[int, list[ClaimBalance]] = field(default_factory=dict)
    first_letters: dict[int, date | None] = field(default_factory=dict)
    stored: dict[tuple[str, str, str, int | None], MessageTemplate | None] = field(default_factory=dict)
    folded: dict[tuple[str, str, int], Template] = field(default_factory=dict)
    portal_path: TokenPath | None = None
    context: Context | None = None

    def forget(self, case_id: int) -> None:
        self.balances.pop(case_id, None)
        self.first_letters.pop(case_id, None)

    def portal_url(self, case: Case) -> str:
        """``cases.links.portal_url`` for ``case`` (the URL reversed once per batch)."""
        if self.portal_path is None:
            self.portal_path = TokenPath("portal:entry")
        token = portal_token(case_id=case.pk, reference=case.reference)
        return f"{settings.PUBLIC_BASE_URL}{self.portal_path(token)}"

    def render(self, key: str, template: Template, context: dict[str, Any], lang: str, creditor_id: int) -> str:
        """``template.render(context)`` with the template folded for this creditor and language."""
        folded = self.folded.get((key, lang, creditor_id))
        if folded is None:
            static = {name: context[name] for name in BATCH_WIDE_VARIABLES}
            folded = self.folded[key, lang, creditor_id] = fold(template, static) or template
        if self.context is None:
            self.context = Context(autoescape=template.engine.autoescape)
        with self.context.push(context):
            return str(folded.render(self.context))


_CLAIM_FIELDS = ("id", "invoice_number", "invoice_date", "due_date", "currency", "original_amount_minor")


def render_prefetch(*, cases: Iterable[Case], templates: Iterable[tuple[str, str]]) -> RenderPrefetch:
    """Read, in a handful of queries, what ``render_message`` needs for ``cases`` and (channel, template)."""
    cases = list(cases)
    case_ids = [c.pk for c in cases]
    prefetch = RenderPrefetch()
    links = list(CaseClaim.objects.filter(among(CaseClaim, "case", case_ids)).values_list("case_id", "claim_id"))
    # The columns message_context reads (any other loads when read).
    claims = {
        claim.pk: claim
        for claim in Claim.objects.only(*_CLAIM_FIELDS).filter(among(Claim, "id", [c for _, c in links]))
    }
    amounts = account_balances(keys=[c.ledger_key for c in claims.values()])
    for case_id in case_ids:
        prefetch.balances[case_id] = []
    for case_id, claim_id in links:
        claim = claims[claim_id]
        prefetch.balances[case_id].append(ClaimBalance(claim=claim, outstanding_minor=amounts[claim.ledger_key]))
    for rows in prefetch.balances.values():
        rows.sort(key=lambda b: (b.claim.due_date, b.claim.pk))  # as case_claim_balances
    prefetch.first_letters = dict.fromkeys(case_ids)
    letters = (
        Action.objects.filter(among(Action, "case", case_ids), channel=Action.Channel.LETTER, sent_at__isnull=False)
        .order_by("case_id", "sent_at")
        .values_list("case_id", "sent_at")
    )
    for case_id, sent_at in letters:
        if prefetch.first_letters[case_id] is None:
            prefetch.first_letters[case_id] = timezone.localdate(sent_at)
    for channel, template in set(templates):
        for case in cases:
            lang = _language(case)
            key = (channel, template, lang, case.creditor_id)
            if key not in prefetch.stored:
                prefetch.stored[key] = stored_template(
                    channel=channel, template=template, lang=lang, creditor_id=case.creditor_id
                )
    return prefetch


_PROBE = re.compile(r"(?s)(.*?)1(\D+)234(?:\2)567(?:(\D+)89)?(.*)")


@lru_cache(maxsize=64)
def _money_shape(currency: str, locale: str) -> tuple[int, tuple[str, str], tuple[str, str], str, str] | None:
    """How ``Money.format`` writes amounts of one currency in one locale, read from two formatted probes:
    (decimals, (prefix, suffix) for positive and negative amounts, group and decimal separators);
    ``None`` when the probes do not have the plain shape (then ``Money.format`` is called each time)."""
    digits = minor_digits(currency)
    if digits not in (0, 2):
        return None
    probe = 123456789 if digits == 2 else 1234567
    shapes = [_PROBE.fullmatch(Money(sign * probe, currency).format(locale)) for sign in (1, -1)]
    if any(m is None or (digits == 2) != (m.group(3) is not None) for m in shapes):
        return None
    pos, neg = shapes
    assert pos is not None and neg is not None  # noqa: S101 - narrowed above
    if (pos.group(2), pos.group(3)) != (neg.group(2), neg.group(3)):
        return None
    return digits, (pos.group(1), pos.group(4)), (neg.group(1), neg.group(4)), pos.group(2), pos.group(3) or ""


def money_text(minor: int, currency: str, locale: str) -> str:
    """``Money(minor, currency).format(locale)``, without babel's per-call pattern work (tested equal)."""
    shape = _money_shape(currency, locale)
    if shape is None:
        return Money(minor, currency).format(locale)
    digits, positive, negative, group, decimal = shape
    units, cents = divmod(abs(minor), 10**digits)
    whole = f"{units:,}".replace(",", group)
    number = f"{whole}{decimal}{cents:0{digits}d}" if digits else whole
    prefix, suffix = negative if minor < 0 else positive
    return f"{prefix}{number}{suffix}"


def message_context(*, case: Case, lang: str, prefetch: RenderPrefetch | None = None) -> dict[str, Any]:
    """The variables every channel's templates share (documented in docs/strategies.md)."""
    locale = "en_GB" if lang == "en" else "fr_FR"
    first_letter_on: object
    if prefetch is not None and case.pk in prefetch.balances:
        balances = prefetch.balances[case.pk]
        first_letter_on = prefetch.first_letters[case.pk]
    else:
        balances = case_claim_balances(case=case)
        first_letter_on = _first_letter_on(case)
    outstanding = sum(b.outstanding_minor for b in balances)
    return {
        **_creditor_context(case.creditor),
        "case": case,
        "debtor": case.debtor,
        "claims": [
            {
                "invoice_number": b.claim.invoice_number,
                "invoice_date": b.claim.invoice_date,
                "due_date": b.claim.due_date,
                "original": money_text(b.claim.original_amount_minor, b.claim.currency, locale),
                "outstanding": money_text(b.outstanding_minor, b.claim.currency, locale),
            }
            for b in balances
        ],
        "outstanding": money_text(outstanding, case.currency, locale),
        "zero": money_text(0, case.currency, locale),
        "portal_url": (
            prefetch.portal_url(case) if prefetch is not None else portal_url(case_id=case.pk, reference=case.reference)
        ),
        # FR-COL-06: every contact after the first letter recalls its reference and date.
        "first_letter_on": first_letter_on,
    }


def _first_letter_on(case: Case) -> object:
    if case.pk is None:
        return None
    first = (
        Action.objects.filter(case_id=case.pk, channel=Action.Channel.LETTER, sent_at__isnull=False)
        .order_by("sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    return timezone.localdate(first) if first is not None else None


def stored_template(*, channel: str, template: str, lang: str, creditor_id: int | None) -> MessageTemplate | None:
    """The back office's template for (channel, name, language): the creditor's, else the agency's."""
    rows = MessageTemplate.objects.filter(channel=channel, name=template, language=lang).filter(
        Q(creditor_id=creditor_id) | Q(creditor__isnull=True)
    )
    found = sorted(rows, key=lambda t: t.creditor_id is None)
    return found[0] if found else None


@lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    # Keyed by the text itself: an edited template is a new key, so nothing stale is ever rendered.
    return engines["django"].from_string(source)


def render_source(source: str, context: dict[str, Any]) -> str:
    return str(_compiled(source).render(context))


def render_message(
    *,
    case: Case,
    channel: str,
    template: str,
    extra: dict[str, Any] | None = None,
    prefetch: RenderPrefetch | None = None,
) -> Rendered:
    """Render one message; ``extra`` adds channel-specific variables to the shared context.

    ``prefetch`` (``render_prefetch``) supplies what would otherwise be read for this one case.
    """
    lang = _language(case)
    context = {**message_context(case=case, lang=lang, prefetch=prefetch), **(extra or {})}
    base = f"comms/{channel}/{template}.{lang}"
    text_only = channel in TEXT_ONLY_CHANNELS
    key = (channel, template, lang, case.creditor_id)
    if prefetch is not None and key in prefetch.stored:
        stored = prefetch.stored[key]
    else:
        stored = stored_template(channel=channel, template=template, lang=lang, creditor_id=case.creditor_id)
    batch = prefetch if prefetch is not None and not extra else None

    def from_source(source: str) -> str:
        if batch is None:
            return render_source(source, context)
        return batch.render(source, _compiled(source).template, context, lang, case.creditor_id)

    def from_file(name: str) -> str:
        if batch is None:
            return render_to_string(name, context)
        template = get_template(name)
        base = getattr(template, "template", None)  # Django's engine: its compiled template
        if not isinstance(base, Template):
            return str(template.render(context))
        return batch.render(name, base, context, lang, case.creditor_id)

    with translation.override(lang):
        if stored is not None:
            subject = "" if text_only else " ".join(from_source(stored.subject).split())
            text = from_source(stored.body_text).strip() + "\n"
            html = "" if text_only or not stored.body_html else from_source(stored.body_html)
        else:
            subject = "" if text_only else " ".join(from_file(f"{base}.subject").split())
            text = from_file(f"{base}.txt").strip() + "\n"
            html = "" if text_only else from_file(f"{base}.html")
    # The L111-8 paragraphs are mandated verbatim (FR-COL-07) and may name what the rest may not.
    own_words = text
    for paragraph in fr.L111_8_PARAGRAPHS:
        own_words = own_words.replace(paragraph, "")
    bad = fr.forbidden_words_in(subject + "\n" + own_words)
    if bad:
        raise ValidationError(
            f"Template {base} uses forbidden wording (FR-COL-15/17): {', '.join(bad)}.", template=base
        )
    return Rendered(subject=subject, text=text, html=html)
