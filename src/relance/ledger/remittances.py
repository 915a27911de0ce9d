"""Money out, ledger side: fee schedules, remittances, fee invoices and their postings (writes).

The ledger knows accounts, not cases: the caller (``payments.remittances``) says which movements
of a creditor's payable account it remits and what prices each case (``ledger.fees.CaseCollection``);
this module computes the figures, writes the remittance, its statement lines, the fee invoice
(gap-free number) and the balanced postings, all in one transaction.

Postings (every one balanced, ``ledger.balance``):

- ``remittance.ordered`` when the run creates the remittance::

      Dr creditor payable          collected      (the money the agency owes the creditor)
      Dr creditor fees receivable  receivable     (fee left to pay on the invoice, if any)
          Cr creditor payout       transfer       (ordered by pain.001, not yet debited)
          Cr agency fee income     commission HT
          Cr agency VAT payable    VAT

- ``remittance.paid`` when the bank has executed the transfer::

      Dr creditor payout           transfer
      Dr agency operating account  deducted       (the agency's fee leaves the trust account)
          Cr trust account         collected

FR-COL-02: until paid, the collected money stays on the trust account; only the agency's own fee
moves to its operating account, and only when the creditor's share leaves too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Sum

from relance.audit.services import audit_record
from relance.core.errors import ConflictError, ValidationError
from relance.ledger.balance import Line
from relance.ledger.fees import (
    DEFAULT_DOCUMENT,
    CaseCollection,
    FeeSchedule,
    FeeScheduleError,
    RemittanceFigures,
    remittance_compute,
    schedule_parse,
)
from relance.ledger.models import (
    Account,
    FeeInvoice,
    InvoiceSequence,
    LedgerTransaction,
    PayoutBatch,
    Posting,
    Remittance,
    RemittanceItem,
    RemittanceLine,
)
from relance.ledger.models import FeeSchedule as FeeScheduleModel
from relance.ledger.services import account_ensure, ledger_post
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor

REMITTANCE_CODES = ("remittance.ordered", "remittance.paid")


# --- accounts ---------------------------------------------------------------------------------------


def trust_account(agency_id: int, currency: str) -> str:
    """FR-COL-02: the client-money account where every debtor payment lands (an asset of the agency
    held for creditors); mirrors ``Agency.trust_iban``, the only IBAN debtors are told to pay."""
    key = f"trust:{agency_id}:{currency}"
    account_ensure(key=key, name="Client money (trust) account", kind=Account.Kind.ASSET, currency=currency)
    return key


def payout_account(creditor: Creditor, currency: str) -> str:
    key = f"creditor:{creditor.pk}:payout:{currency}"
    account_ensure(
        key=key, name=f"Remittance ordered to {creditor.legal_name}", kind=Account.Kind.LIABILITY, currency=currency
    )
    return key


def fees_receivable_account(creditor: Creditor, currency: str) -> str:
    key = f"creditor:{creditor.pk}:fees_receivable:{currency}"
    account_ensure(key=key, name=f"Fees invoiced to {creditor.legal_name}", kind=Account.Kind.ASSET, currency=currency)
    return key


def fee_income_account(agency_id: int, currency: str) -> str:
    key = f"agency:{agency_id}:fees:{currency}"
    account_ensure(key=key, name="Success fees (income)", kind=Account.Kind.INCOME, currency=currency)
    return key


def vat_payable_account(agency_id: int, currency: str) -> str:
    key = f"agency:{agency_id}:vat:{currency}"
    account_ensure(key=key, name="VAT collected (TVA collectée)", kind=Account.Kind.LIABILITY, currency=currency)
    return key


def operating_account(agency_id: int, currency: str) -> str:
    key = f"agency:{agency_id}:operating:{currency}"
    account_ensure(key=key, name="Agency operating account", kind=Account.Kind.ASSET, currency=currency)
    return key


# --- fee schedules ----------------------------------------------------------------------------------


def fee_schedule_for(creditor: Creditor) -> FeeSchedule:
    """The creditor's parsed schedule, or the default one when none is recorded."""
    row = FeeScheduleModel.objects.filter(creditor=creditor).first()
    return schedule_parse(row.document if row is not None else DEFAULT_DOCUMENT)


@transaction.atomic
def fee_schedule_set(*, creditor: Creditor, document: dict[str, Any], actor: Actor) -> FeeScheduleModel:
    """Record a creditor's fee schedule after checking it; a bad document changes nothing."""
    try:
        schedule_parse(document)
    except FeeScheduleError as exc:
        raise ValidationError(exc.message, field=exc.field) from None
    row, _ = FeeScheduleModel.objects.update_or_create(creditor=creditor, defaults={"document": document})
    audit_record(actor=actor, verb="fee_schedule.set", subject=creditor, data={"document": document})
    return row


# --- reads used by the run --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Movement:
    """A transaction on a creditor's payable account not yet remitted (amount: credit − debit)."""

    transaction_id: int
    amount_minor: int
    occurred_at: datetime
    code: str


def movements_unremitted(*, account_key: str, until: datetime) -> list[Movement]:
    """Movements on ``account_key`` before ``until`` that no remittance holds yet, oldest first."""
    rows = (
        Posting.objects.filter(
            account__key=account_key,
            transaction__occurred_at__lt=until,
            transaction__remittance_item__isnull=True,
        )
        .exclude(transaction__code__in=REMITTANCE_CODES)
        .values("transaction_id", "transaction__occurred_at", "transaction__code")
        .annotate(c=Sum("credit"), d=Sum("debit"))
        .order_by("transaction__occurred_at", "transaction_id")
    )
    return [
        Movement(
            r["transaction_id"], (r["c"] or 0) - (r["d"] or 0), r["transaction__occurred_at"], r["transaction__code"]
        )
        for r in rows
        if (r["c"] or 0) != (r["d"] or 0)
    ]


def case_history(*, creditor: Creditor, references: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(collected, commission) already remitted per case reference, for the minimum fee per case."""
    rows = (
        RemittanceLine.objects.filter(remittance__creditor=creditor, reference__in=list(references))
        .values("reference")
        .annotate(c=Sum("collected_minor"), f=Sum("commission_minor"))
    )
    return {r["reference"]: (r["c"] or 0, r["f"] or 0) for r in rows}


# --- writes -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemIn:
    """One movement the caller remits, with the case it belongs to."""

    transaction_id: int
    reference: str
    amount_minor: int
    encashed_on: date


def invoice_number_next(*, agency: Agency, year: int) -> int:
    """Allocate the next invoice number of ``year``: call inside the transaction that issues it.

    The sequence row is locked (``SELECT … FOR UPDATE``) until that transaction ends, so concurrent
    issuers wait for each other, and a rolled-back invoice gives its number back: no gaps, no
    duplicates (French invoices are numbered in one unbroken chronological series, CGI 242 nonies A).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invoice_number_next must run inside the invoice's transaction")
    seq, _ = InvoiceSequence.objects.select_for_update().get_or_create(agency=agency, year=year)
    seq.last_number += 1
    seq.save(update_fields=["last_number"])
    return seq.last_number


def invoice_number_format(*, year: int, sequence: int) -> str:
    return f"F{year}-{sequence:06d}"


def _party(*, name: str, siren: str, vat_number: str, address: str) -> dict[str, str]:
    return {"name": name, "siren": siren, "vat_number": vat_number, "address": address}


@transaction.atomic
def remittance_create(
    *,
    creditor: Creditor,
    period_end: date,
    currency: str,
    items: Sequence[ItemIn],
    cases: Sequence[CaseCollection],
    schedule: FeeSchedule,
    payable_account: str,
    due_by: date,
    payee_iban: str,
    issued_on: date,
    occurred_at: datetime,
    actor: Actor,
    labels: Mapping[str, str] | None = None,
) -> Remittance:
    """Write one remittance with its items, statement lines, fee invoice and postings.

    ``cases`` must cover exactly the references of ``items`` with the same sums; a movement already
    remitted or a second remittance for the same creditor, period and currency is a conflict.
    """
    if not items:
        raise ValidationError("A remittance needs at least one movement.")
    by_ref: dict[str, int] = {}
    for item in items:
        by_ref[item.reference] = by_ref.get(item.reference, 0) + item.amount_minor
    if by_ref != {c.key: c.collected_minor for c in cases} or len(cases) != len(by_ref):
        raise ValidationError("The cases do not add up to the movements remitted.")
    if Remittance.objects.filter(creditor=creditor, period_end=period_end, currency=currency).exists():
        raise ConflictError("This creditor already has a remittance for this period.", period_end=str(period_end))
    figures = remittance_compute(cases, schedule)
    if figures.collected_minor <= 0:
        raise ValidationError("Nothing to remit: the movements add up to zero or less.")
    agency = creditor.agency
    txn = ledger_post(
        idempotency_key=f"remittance:{creditor.pk}:{currency}:{period_end.isoformat()}",
        code="remittance.ordered",
        lines=_ordered_lines(creditor=creditor, currency=currency, figures=figures, payable_account=payable_account),
        memo=f"Remittance to {creditor.legal_name} for the period ending {period_end.isoformat()}",
        occurred_at=occurred_at,
    )
    remittance = Remittance.objects.create(
        agency=agency,
        creditor=creditor,
        period_end=period_end,
        currency=currency,
        mode=figures.mode,
        status=Remittance.Status.ORDERED if figures.transfer_minor > 0 else Remittance.Status.NOTHING_TO_PAY,
        vat_rate=figures.vat_rate,
        collected_minor=figures.collected_minor,
        commission_minor=figures.commission_minor,
        vat_minor=figures.vat_minor,
        deducted_minor=figures.deducted_minor,
        transfer_minor=figures.transfer_minor,
        receivable_minor=figures.receivable_minor,
        first_encashed_on=min(item.encashed_on for item in items),
        due_by=due_by,
        payee_name=creditor.legal_name,
        payee_iban=payee_iban,
        end_to_end_id=f"RLR-{creditor.pk}-{period_end:%Y%m%d}-{currency}"[:35],
        ledger_transaction=txn,
    )
    RemittanceItem.objects.bulk_create(
        RemittanceItem(
            remittance=remittance,
            source_transaction_id=item.transaction_id,
            reference=item.reference,
            amount_minor=item.amount_minor,
            encashed_on=item.encashed_on,
        )
        for item in items
    )
    by_key = {c.key: c for c in cases}
    RemittanceLine.objects.bulk_create(
        RemittanceLine(
            remittance=remittance,
            reference=line.key,
            creditor_refs=(labels or {}).get(line.key, "")[:300],
            segment=by_key[line.key].segment,
            age_days=by_key[line.key].age_days,
            placed_minor=by_key[line.key].placed_minor,
            collected_minor=line.collected_minor,
            rate=line.rate,
            commission_minor=line.fee_minor,
            minimum_applied=line.minimum_applied,
        )
        for line in figures.lines
    )
    if figures.commission_minor > 0:
        _invoice_issue(remittance=remittance, figures=figures, issued_on=issued_on, items=items)
    audit_record(
        actor=actor,
        verb="remittance.created",
        subject=creditor,
        data={
            "remittance": remittance.pk,
            "period_end": period_end.isoformat(),
            "currency": currency,
            "collected": figures.collected_minor,
            "commission": figures.commission_minor,
            "vat": figures.vat_minor,
            "transfer": figures.transfer_minor,
            "receivable": figures.receivable_minor,
            "cases": len(cases),
        },
    )
    return remittance


def _ordered_lines(
    *, creditor: Creditor, currency: str, figures: RemittanceFigures, payable_account: str
) -> list[Line]:
    agency_id = creditor.agency_id
    cur = currency
    lines = [Line.dr(payable_account, figures.collected_minor, cur)]
    if figures.receivable_minor:
        lines.append(Line.dr(fees_receivable_account(creditor, cur), figures.receivable_minor, cur))
    if figures.transfer_minor:
        lines.append(Line.cr(payout_account(creditor, cur), figures.transfer_minor, cur))
    if figures.commission_minor:
        lines.append(Line.cr(fee_income_account(agency_id, cur), figures.commission_minor, cur))
    if figures.vat_minor:
        lines.append(Line.cr(vat_payable_account(agency_id, cur), figures.vat_minor, cur))
    return lines


def _invoice_issue(
    *, remittance: Remittance, figures: RemittanceFigures, issued_on: date, items: Sequence[ItemIn]
) -> FeeInvoice:
    agency = remittance.agency
    creditor = remittance.creditor
    sequence = invoice_number_next(agency=agency, year=issued_on.year)
    return FeeInvoice.objects.create(
        agency=agency,
        creditor=creditor,
        remittance=remittance,
        year=issued_on.year,
        sequence=sequence,
        number=invoice_number_format(year=issued_on.year, sequence=sequence),
        issued_on=issued_on,
        service_from=min(item.encashed_on for item in items),
        service_to=max(item.encashed_on for item in items),
        currency=remittance.currency,
        vat_rate=figures.vat_rate,
        amount_ht_minor=figures.commission_minor,
        vat_minor=figures.vat_minor,
        amount_ttc_minor=figures.commission_ttc_minor,
        deducted_minor=figures.deducted_minor,
        due_minor=figures.receivable_minor,
        seller=_party(name=agency.legal_name, siren=agency.siren, vat_number=agency.vat_number, address=agency.address),
        buyer=_party(
            name=creditor.legal_name, siren=creditor.siren, vat_number=creditor.vat_number, address=creditor.address
        ),
    )


@transaction.atomic
def payout_batch_create(
    *, agency: Agency, period_end: date, remittances: Sequence[Remittance], msg_id: str, execution_date: date, xml: str
) -> PayoutBatch:
    """Record the pain.001 file that pays ``remittances`` (all ordered, same currency, no batch yet)."""
    currencies = {r.currency for r in remittances}
    if len(currencies) != 1 or any(r.batch_id is not None or r.transfer_minor <= 0 for r in remittances):
        raise ValidationError("A payout batch pays ordered remittances of one currency, once.")
    batch = PayoutBatch.objects.create(
        agency=agency,
        period_end=period_end,
        msg_id=msg_id,
        execution_date=execution_date,
        currency=currencies.pop(),
        transactions=len(remittances),
        control_sum_minor=sum(r.transfer_minor for r in remittances),
        xml=xml,
    )
    Remittance.objects.filter(pk__in=[r.pk for r in remittances]).update(batch=batch)
    return batch


@transaction.atomic
def payout_batch_mark_paid(*, batch: PayoutBatch, paid_on: date, actor: Actor, trust_account: str) -> PayoutBatch:
    """The bank executed the file: move the money out of the trust account (idempotent)."""
    batch = PayoutBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status == PayoutBatch.Status.PAID:
        return batch
    for remittance in batch.remittances.select_related("creditor").order_by("pk"):
        cur = remittance.currency
        lines = [Line.dr(payout_account(remittance.creditor, cur), remittance.transfer_minor, cur)]
        if remittance.deducted_minor:
            lines.append(Line.dr(operating_account(remittance.agency_id, cur), remittance.deducted_minor, cur))
        lines.append(Line.cr(trust_account, remittance.transfer_minor + remittance.deducted_minor, cur))
        txn: LedgerTransaction = ledger_post(
            idempotency_key=f"remittance-paid:{remittance.pk}",
            code="remittance.paid",
            lines=lines,
            memo=f"{batch.msg_id} {remittance.end_to_end_id}",
        )
        remittance.paid_transaction = txn
        remittance.status = Remittance.Status.PAID
        remittance.save(update_fields=["paid_transaction", "status"])
        audit_record(  # the creditor's "remittance.paid" webhook event
            actor=actor,
            verb="remittance.paid",
            subject=remittance.creditor,
            data={
                "remittance": remittance.pk,
                "transfer": remittance.transfer_minor,
                "currency": cur,
                "paid_on": paid_on.isoformat(),
                "end_to_end_id": remittance.end_to_end_id,
            },
        )
    batch.status = PayoutBatch.Status.PAID
    batch.paid_on = paid_on
    batch.save(update_fields=["status", "paid_on"])
    audit_record(
        actor=actor,
        verb="payout_batch.paid",
        subject=batch.agency,
        data={"batch": batch.pk, "msg_id": batch.msg_id, "paid_on": paid_on.isoformat()},
    )
    return batch
