"""Money in by bank transfer: importing camt.053 statements of the trust account, and the unmatched queue.

Matching cascade for each booked EUR credit (DOMAIN-RULES PAY-06, issue 5 "Payments in"):

1. a valid RF creditor reference in the structured remittance (``RmtInf/Strd/CdtrRefInf/Ref``);
2. a valid RF reference found in the free text (``RmtInf/Ustrd``, spaces, lowercase, line breaks);
3. the case reference (``RL-XXXXXXXX``, however spaced) or an invoice number of exactly one open case
   in the free text;
4. the payer's IBAN is the debtor's (given at intake), already paid for, or signed a mandate for,
   exactly one open case, and the amount is that case's balance or one of its plan's instalments;
5. the amount equals one open case's outstanding balance **and** the payer's name matches that case's
   debtor — only when exactly one case fits;
6. anything else goes to ``UnmatchedBankEntry`` for a human.

Before the cascade, a credit that names one of the agency's own pain.008 files (``Btch/MsgId``) or
one of their collections (``EndToEndId``) is the bank paying out our direct debits: it is
``reconciled`` against the file (``ReconciledBankEntry``) — the collections are payments already
(``sepa_settle``), or become payments now — and never counted as new money. A credit of another
amount, or for a collection marked returned, goes to the queue for a human.

A matched entry becomes a payment through ``payment_record(method="transfer", external_ref=<entry
key>)``: the entry key is the bank's ``AcctSvcrRef`` or a stable hash of the entry
(``camt.camt053_parse``), so importing the same statement twice changes nothing. Debits, non-EUR
amounts, entries not booked (``PDNG``/``INFO``) and reversals are reported, never applied.
FR-COL-02: a statement is applied only if its account is an agency's trust account
(``Agency.trust_iban``) — the only account debtors are told to pay, and the one the ledger debits.
FR-COL-12: each payment is recorded and audited as ``payment.received`` by ``payment_record``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO

from django.db import transaction
from django.db.models import QuerySet, Value
from django.db.models.functions import Replace, Upper
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case, CaseClaim, WorkItem
from relance.cases.queues import work_item_close, work_item_open
from relance.cases.selectors import case_outstanding_minor
from relance.cases.status import TERMINAL
from relance.claims.models import Debtor
from relance.core.errors import ConflictError, PermissionDeniedError, ValidationError
from relance.core.money import Money
from relance.payments.arrangement_models import PaymentPlan, PlanInstalment, SepaMandate
from relance.payments.arrangements import sepa_credit_recognise
from relance.payments.camt import CamtEntry, CamtError, CamtStatement, camt053_parse
from relance.payments.match import company_matches, person_matches
from relance.payments.models import Payment, ReconciledBankEntry, UnmatchedBankEntry
from relance.payments.reference import RF_BODY_MAX, rf_candidates, rf_is_valid
from relance.payments.services import payment_record
from relance.payments.transfer import iban_parse
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency

_IMPORT_ROLES = frozenset({"system", "agency_admin", "supervisor"})


class BankStatementError(ValidationError):
    code = "bank.statement_invalid"
    title = "This bank statement cannot be imported"


class BankAccountUnknownError(ValidationError):
    code = "bank.account_unknown"
    title = "This statement is not for a trust account"


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """What the import did with one entry of the statement."""

    statement_id: str
    position: int
    key: str
    outcome: str  # matched | reconciled | unmatched | duplicate | skipped
    detail: str  # matched: rf_structured | rf_text | case_reference | invoice_number | payer_account | amount_name;
    # reconciled: direct_debit_batch | direct_debit;
    # unmatched: no_match | ambiguous | rejected | dd_mismatch | dd_returned;
    # skipped: debit | currency | not_booked | reversal; duplicate: payment | unmatched | reconciled | in_file
    amount: str  # "120.50 EUR" as written in the statement
    case_reference: str = ""
    payment_id: int | None = None


@dataclass
class BankImportReport:
    """Entries of the file and what became of each; a second import of the same file: all duplicates."""

    statements: list[str] = field(default_factory=list)
    outcomes: list[EntryOutcome] = field(default_factory=list)

    def _of(self, outcome: str) -> list[EntryOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    @property
    def matched(self) -> list[EntryOutcome]:
        return self._of("matched")

    @property
    def reconciled(self) -> list[EntryOutcome]:
        return self._of("reconciled")

    @property
    def unmatched(self) -> list[EntryOutcome]:
        return self._of("unmatched")

    @property
    def duplicates(self) -> list[EntryOutcome]:
        return self._of("duplicate")

    @property
    def skipped(self) -> list[EntryOutcome]:
        return self._of("skipped")


def _trust_agency(*, iban: str, actor: Actor) -> Agency:
    checked = iban_parse(iban)
    agencies = Agency.objects.exclude(trust_iban="")
    if actor.agency_id is not None:
        agencies = agencies.filter(pk=actor.agency_id)
    for agency in agencies:
        trust = iban_parse(agency.trust_iban)
        if checked is not None and trust is not None and trust.compact == checked.compact:
            return agency
    raise BankAccountUnknownError(
        f"The statement's account {iban or '(none)'} is not an agency's trust account.", account=iban
    )


def _case_for_rf(*, agency: Agency, reference: str) -> Case | None:
    """The agency's case whose RF reference this is (``payments.reference.case_rf_reference``)."""
    body = reference[4:]
    if not 1 <= len(body) <= RF_BODY_MAX:
        return None
    cases = Case.objects.filter(creditor__agency=agency).select_related("creditor", "debtor")
    # Case references are "RL-" + 8 characters: the RF body is the reference without its dash.
    found = cases.filter(reference__in={body, f"{body[:2]}-{body[2:]}"}).first()
    if found is None:
        compact = Upper(Replace(Replace("reference", Value("-"), Value("")), Value(" "), Value("")))
        found = cases.annotate(compact=compact).filter(compact=body).first()
    return found


def _debtor_matches(debtor: Debtor, payer: str) -> bool:
    if debtor.company_name and company_matches(company_name=debtor.company_name, payer=payer):
        return True
    return person_matches(first_name=debtor.first_name, last_name=debtor.last_name, payer=payer)


class _Matcher:
    """The cascade for one agency; the open cases are loaded once per import for step 3."""

    def __init__(self, agency: Agency) -> None:
        self.agency = agency
        self._open: list[Case] | None = None

    def by_reference(self, entry: CamtEntry) -> tuple[Case, str] | None:
        for ref in entry.structured_refs:
            compact = ref.replace(" ", "").upper()
            if rf_is_valid(compact) and (case := _case_for_rf(agency=self.agency, reference=compact)):
                return case, "rf_structured"
        for candidate in rf_candidates(entry.unstructured):
            if case := _case_for_rf(agency=self.agency, reference=candidate):
                return case, "rf_text"
        return None

    def _open_cases(self) -> QuerySet[Case]:
        return (
            Case.objects.filter(creditor__agency=self.agency)
            .exclude(status__in=[s.value for s in TERMINAL])
            .select_related("creditor", "debtor")
        )

    def by_text(self, entry: CamtEntry) -> tuple[Case, str] | None:
        """PAY-06 step 3: the case reference, or an invoice number of one open case, in the free text."""
        text = entry.unstructured.upper()
        references = {f"RL-{m.group(1)}" for m in _CASE_REFERENCE.finditer(text)}
        if references:
            found = list(self._open_cases().filter(reference__in=references)[:2])
            if len(found) == 1:
                return found[0], "case_reference"
        tokens = {t.strip(".,;:()[]") for t in entry.unstructured.split()}
        numbers = {t for t in tokens if len(t) >= _MIN_INVOICE_TOKEN and any(c.isdigit() for c in t)}
        if numbers:
            # As typed, or in capitals (invoice numbers are printed in capitals far more often than not).
            claims = CaseClaim.objects.filter(
                case__in=self._open_cases(), claim__invoice_number__in=numbers | {n.upper() for n in numbers}
            )
            case_ids = set(claims.values_list("case_id", flat=True)[:2])
            if len(case_ids) == 1:
                return self._open_cases().get(pk=case_ids.pop()), "invoice_number"
        return None

    def by_payer_account(self, entry: CamtEntry, amount: Money) -> tuple[Case, str] | None:
        """PAY-06 step 4: an account already seen for one open case, and an amount that case expects."""
        iban = entry.debtor_iban
        if not iban:
            return None
        seen = set(
            Payment.objects.filter(payer_iban=iban, case__creditor__agency=self.agency).values_list(
                "case_id", flat=True
            )
        )
        seen |= set(
            SepaMandate.objects.filter(iban=iban, plan__case__creditor__agency=self.agency).values_list(
                "plan__case_id", flat=True
            )
        )
        seen |= set(Case.objects.filter(debtor__iban=iban, creditor__agency=self.agency).values_list("pk", flat=True))
        candidates = list(self._open_cases().filter(pk__in=seen))
        fits = [c for c in candidates if amount.minor in _expected_amounts(c)]
        return (fits[0], "payer_account") if len(fits) == 1 else None

    def by_amount_and_name(self, entry: CamtEntry, amount: Money) -> tuple[list[Case], str]:
        if not entry.debtor_name:
            return [], "no_match"
        if self._open is None:
            self._open = list(self._open_cases().filter(currency=amount.currency))
        named = [c for c in self._open if _debtor_matches(c.debtor, entry.debtor_name)]
        fits = [c for c in named if case_outstanding_minor(case=c) == amount.minor]
        return fits, "amount_name"


# "RL-7KQ2M9XA", "rl 7kq2m9xa", "RL7KQ2M9XA" (case references: ``cases.services.case_reference_new``).
_CASE_REFERENCE = re.compile(r"(?<![0-9A-Z])RL[\s-]?([0-9A-Z]{8})(?![0-9A-Z])")
# Shorter tokens ("12", "2026") are too common in free text to name an invoice.
_MIN_INVOICE_TOKEN = 4


def _expected_amounts(case: Case) -> set[int]:
    """What a payer of this case may send: the whole balance, or one instalment still to pay."""
    amounts = {case_outstanding_minor(case=case)}
    amounts |= set(
        PlanInstalment.objects.filter(
            plan__case=case,
            plan__status=PaymentPlan.Status.ACTIVE,
            status__in=[PlanInstalment.Status.SCHEDULED, PlanInstalment.Status.FAILED],
        ).values_list("amount_minor", flat=True)
    )
    return amounts


def _received_at(entry: CamtEntry) -> datetime:
    # The value date is when the money is available to the agency (R124-6: the remittance clock).
    day: date | None = entry.value_date or entry.booking_date
    if day is None:
        return timezone.now()
    return timezone.make_aware(datetime.combine(day, time.min))


def _skip_reason(entry: CamtEntry) -> str:
    if not entry.credit:
        return "debit"
    if entry.currency != "EUR":
        return "currency"
    if entry.status not in {"", "BOOK"}:
        return "not_booked"
    if entry.reversal:
        return "reversal"
    return ""


def _queue(
    *, agency: Agency, statement: CamtStatement, entry: CamtEntry, amount: Money, reason: str, actor: Actor
) -> UnmatchedBankEntry:
    row = UnmatchedBankEntry.objects.create(
        agency=agency,
        statement_id=statement.statement_id[:140],
        account_iban=statement.account_iban[:34],
        entry_key=entry.key[:120],
        entry_ref=entry.entry_ref[:140],
        amount_minor=amount.minor,
        currency=amount.currency,
        booking_date=entry.booking_date,
        value_date=entry.value_date,
        debtor_name=entry.debtor_name[:140],
        debtor_iban=entry.debtor_iban[:34],
        structured_ref=(entry.structured_refs[0] if entry.structured_refs else "")[:35],
        remittance_text=entry.unstructured,
        reason=reason,
    )
    audit_record(
        actor=actor,
        verb="bank.entry_unmatched",
        subject=row,
        data={"entry_key": row.entry_key, "amount": amount.minor, "currency": amount.currency, "reason": reason},
    )
    # A person matches it by hand (issue 6: unmatched-payments queue).
    work_item_open(
        kind=WorkItem.Kind.UNMATCHED_PAYMENT,
        source=f"bank:{row.pk}",
        agency_id=agency.pk,
        title=f"{amount.format()} from {row.debtor_name or '?'} ({row.get_reason_display()})",
        amount_minor=amount.minor,
        overdue_since=row.booking_date,
        data={"entry": row.pk, "reference": row.structured_ref or row.remittance_text[:140]},
        actor=actor,
    )
    return row


def _import_entry(
    *,
    agency: Agency,
    statement: CamtStatement,
    entry: CamtEntry,
    matcher: _Matcher,
    seen: set[str],
    actor: Actor,
) -> EntryOutcome:
    def outcome(kind: str, detail: str, case_reference: str = "", payment_id: int | None = None) -> EntryOutcome:
        return EntryOutcome(
            statement_id=statement.statement_id,
            position=entry.position,
            key=entry.key,
            outcome=kind,
            detail=detail,
            amount=f"{entry.amount} {entry.currency}",
            case_reference=case_reference,
            payment_id=payment_id,
        )

    if reason := _skip_reason(entry):
        return outcome("skipped", reason)
    if entry.key in seen:
        return outcome("duplicate", "in_file")
    seen.add(entry.key)
    existing = Payment.objects.filter(method=Payment.Method.TRANSFER, external_ref=entry.key).select_related("case")
    if payment := existing.first():
        return outcome("duplicate", "payment", payment.case.reference, payment.pk)
    if UnmatchedBankEntry.objects.filter(entry_key=entry.key).exists():
        return outcome("duplicate", "unmatched")
    if ReconciledBankEntry.objects.filter(entry_key=entry.key).exists():
        return outcome("duplicate", "reconciled")
    amount = Money.parse(entry.amount, entry.currency)
    if amount.minor <= 0:
        return outcome("skipped", "zero")
    credit = sepa_credit_recognise(
        agency=agency,
        batch_message_id=entry.batch_message_id,
        end_to_end_id=entry.end_to_end_id,
        amount_minor=amount.minor,
        received_at=_received_at(entry),
        actor=actor,
    )
    if credit is not None:
        case_reference = credit.instalment.plan.case.reference if credit.instalment else ""
        if credit.outcome != "reconciled":
            reason = (
                UnmatchedBankEntry.Reason.DD_RETURNED
                if credit.outcome == "returned"
                else UnmatchedBankEntry.Reason.DD_MISMATCH
            )
            _queue(agency=agency, statement=statement, entry=entry, amount=amount, reason=reason, actor=actor)
            return outcome("unmatched", reason, case_reference)
        row = ReconciledBankEntry.objects.create(
            agency=agency,
            statement_id=statement.statement_id[:140],
            entry_key=entry.key[:120],
            amount_minor=amount.minor,
            currency=amount.currency,
            booking_date=entry.booking_date,
            value_date=entry.value_date,
            batch=credit.batch,
            instalment=credit.instalment,
        )
        audit_record(
            actor=actor,
            verb="bank.entry_reconciled",
            subject=credit.batch,
            data={
                "entry_key": row.entry_key,
                "amount": amount.minor,
                "file": credit.batch.message_id,
                "end_to_end_id": credit.instalment.end_to_end_id if credit.instalment else "",
                "settled_now": credit.settled,
            },
        )
        return outcome("reconciled", credit.detail, case_reference)
    found = matcher.by_reference(entry) or matcher.by_text(entry) or matcher.by_payer_account(entry, amount)
    if found is None:
        fits, rule = matcher.by_amount_and_name(entry, amount)
        if len(fits) != 1:
            reason = "ambiguous" if fits else "no_match"
            _queue(agency=agency, statement=statement, entry=entry, amount=amount, reason=reason, actor=actor)
            return outcome("unmatched", reason)
        found = (fits[0], rule)
    case, rule = found
    try:
        payment = payment_record(
            case=case,
            amount=amount,
            method=Payment.Method.TRANSFER,
            external_ref=entry.key,
            actor=actor,
            received_at=_received_at(entry),
            payer_iban=entry.debtor_iban,
        )
    except (ConflictError, ValidationError):
        # E.g. the case is not in euros: a person decides where this money goes.
        _queue(agency=agency, statement=statement, entry=entry, amount=amount, reason="rejected", actor=actor)
        return outcome("unmatched", "rejected", case.reference)
    return outcome("matched", rule, case.reference, payment.pk)


def _read(file: bytes | IO[bytes]) -> bytes:
    return file if isinstance(file, bytes) else file.read()


@transaction.atomic
def camt053_import(*, file: bytes | IO[bytes], actor: Actor) -> BankImportReport:
    """Apply a camt.053 statement of a trust account: payments for what matches, a queue for the rest.

    Idempotent: every entry is keyed (``CamtEntry.key``); an entry already paid or queued is reported
    as a duplicate and changes nothing. The whole file is refused (``BankStatementError``,
    ``BankAccountUnknownError``) before anything is applied when it is not a camt.053 statement or
    one of its accounts is not a trust account.
    """
    if not actor.is_staff or actor.role not in _IMPORT_ROLES:
        raise PermissionDeniedError("Only agency administrators and supervisors import bank statements.")
    try:
        statements = camt053_parse(_read(file))
    except CamtError as exc:
        raise BankStatementError(str(exc), reason=exc.code) from None
    agencies = [_trust_agency(iban=s.account_iban, actor=actor) for s in statements]
    report = BankImportReport()
    seen: set[str] = set()
    for statement, agency in zip(statements, agencies, strict=True):
        matcher = _Matcher(agency)
        outcomes = [
            _import_entry(agency=agency, statement=statement, entry=e, matcher=matcher, seen=seen, actor=actor)
            for e in statement.entries
        ]
        report.statements.append(statement.statement_id)
        report.outcomes.extend(outcomes)
        audit_record(
            actor=actor,
            verb="bank.statement_imported",
            subject=agency,
            data={
                "statement": statement.statement_id,
                "message": statement.message_id,
                "version": statement.version,
                "account": statement.account_iban,
                **{kind: sum(1 for o in outcomes if o.outcome == kind) for kind in _KINDS},
            },
        )
    return report


_KINDS = ("matched", "reconciled", "unmatched", "duplicate", "skipped")


@transaction.atomic
def bank_entry_match(*, entry: UnmatchedBankEntry, case: Case, actor: Actor) -> Payment:
    """A person matched a queued entry to a case: record the payment, close the entry."""
    entry = UnmatchedBankEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != UnmatchedBankEntry.Status.OPEN:
        raise ConflictError("This bank entry is already resolved.", entry=entry.pk)
    if case.creditor.agency_id != entry.agency_id:
        raise ValidationError("This case is not one of the agency's.", field="case")
    value_day = entry.value_date or entry.booking_date
    payment = payment_record(
        case=case,
        amount=Money(entry.amount_minor, entry.currency),
        method=Payment.Method.TRANSFER,
        external_ref=entry.entry_key,
        actor=actor,
        received_at=timezone.make_aware(datetime.combine(value_day, time.min)) if value_day else None,
        payer_iban=entry.debtor_iban,
    )
    entry.status = UnmatchedBankEntry.Status.MATCHED
    entry.payment = payment
    entry.save(update_fields=["status", "payment", "updated_at"])
    audit_record(actor=actor, verb="bank.entry_matched", subject=entry, data={"case": case.pk, "payment": payment.pk})
    work_item_close(
        actor=actor,
        kind=WorkItem.Kind.UNMATCHED_PAYMENT,
        source=f"bank:{entry.pk}",
        outcome=f"matched to {case.reference}",
    )
    return payment


@transaction.atomic
def bank_entry_ignore(*, entry: UnmatchedBankEntry, reason: str, actor: Actor) -> UnmatchedBankEntry:
    """A person set a queued entry aside (not a debtor's payment, to refund …), saying why."""
    entry = UnmatchedBankEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != UnmatchedBankEntry.Status.OPEN:
        raise ConflictError("This bank entry is already resolved.", entry=entry.pk)
    if not reason.strip():
        raise ValidationError("Say why this entry is set aside.", field="reason")
    entry.status = UnmatchedBankEntry.Status.IGNORED
    entry.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, verb="bank.entry_ignored", subject=entry, data={"reason": reason.strip()})
    work_item_close(
        actor=actor, kind=WorkItem.Kind.UNMATCHED_PAYMENT, source=f"bank:{entry.pk}", outcome=f"set aside: {reason}"
    )
    return entry
