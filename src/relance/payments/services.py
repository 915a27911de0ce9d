"""Recording payments: ledger posting, allocation, case status, audit — one transaction."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.selectors import ClaimBalance, case_claim_balances
from relance.cases.services import case_transition
from relance.cases.status import Status, can_transition
from relance.claims.services import case_overpayment_account, creditor_claims_account, creditor_payable_account
from relance.core.errors import ConflictError, ValidationError
from relance.core.money import Money
from relance.ledger.allocate import Allocation, allocate
from relance.ledger.balance import Line
from relance.ledger.remittances import trust_account
from relance.ledger.services import account_balance, ledger_post
from relance.payments.models import CreditorNotification, Payment
from relance.payments.notify import creditor_notify
from relance.payments.receipts import receipt_deliver_on_commit, receipt_issue
from relance.tenancy.actors import Actor

# Far above any real payment, far below the 64-bit columns that hold amounts and their sums.
MAX_PAYMENT_MINOR = 10**12


def _trust_account(case: Case) -> str:
    # FR-COL-02: debtors' money lands on the agency's dedicated (trust) account.
    return trust_account(case.creditor.agency_id, case.currency)


def _payable_account(case: Case) -> str:
    return creditor_payable_account(case.creditor, case.currency)


def _overpayment_account(case: Case) -> str:
    return case_overpayment_account(case_id=case.pk, case_reference=case.reference, currency=case.currency)


@transaction.atomic
def payment_record(
    *,
    case: Case,
    amount: Money,
    method: str,
    external_ref: str,
    actor: Actor,
    received_at: datetime | None = None,
    payer_iban: str = "",
) -> Payment:
    """Record money received for a case; idempotent on (method, external_ref).

    The same (method, external_ref) again returns the first payment if it is for the same case and
    amount, and raises ``ConflictError`` otherwise.

    Allocation: oldest claim first (C. civ. 1342-10 [S]); no interest or fees are charged yet, so
    the whole amount goes to principal. What exceeds the outstanding balance becomes a refundable
    balance (never kept silently). Writes Dr trust / Cr claims, and moves the creditor's share from
    "claims under management" to "payable to creditor".
    """
    existing = Payment.objects.filter(method=method, external_ref=external_ref).first()
    if existing is not None:
        # A retried webhook is the same payment; the same reference with other details is not, and
        # returning the first one would silently lose this one (invariant 8).
        if (existing.case_id, existing.amount_minor, existing.currency) != (case.pk, amount.minor, amount.currency):
            raise ConflictError(
                "This payment reference was already recorded with other details.",
                field="external_ref",
                method=method,
                external_ref=external_ref,
            )
        return existing
    if amount.minor <= 0:
        raise ValidationError("A payment amount must be positive.", field="amount")
    if amount.minor > MAX_PAYMENT_MINOR:
        raise ValidationError("This payment amount is too large.", field="amount")
    if amount.currency != case.currency:
        raise ValidationError(f"This case is in {case.currency}.", field="currency")
    case = Case.objects.select_for_update().select_related("creditor").get(pk=case.pk)
    received_at = received_at or timezone.now()
    payment = Payment.objects.create(
        case=case,
        amount_minor=amount.minor,
        currency=amount.currency,
        method=method,
        external_ref=external_ref,
        received_at=received_at,
        payer_iban=payer_iban[:34],
    )
    balances = case_claim_balances(case=case)
    allocations, remainder = allocate(amount.minor, [(b.claim.ledger_key, b.outstanding_minor) for b in balances])
    cur = amount.currency
    allocated = amount.minor - remainder
    if method == Payment.Method.CREDITOR_REPORTED:
        # Paid to the creditor directly: no money reached the trust account; the claim is settled
        # against the creditor's claims under management, and nothing becomes payable to it.
        if remainder:
            raise ValidationError("A payment made to the creditor cannot exceed what is owed.", field="amount")
        lines = [Line.dr(creditor_claims_account(case.creditor, cur), allocated, cur)]
        lines += [Line.cr(a.key, a.amount, cur) for a in allocations]
        code = "payment.creditor_reported"
    else:
        lines = [Line.dr(_trust_account(case), amount.minor, cur)]
        lines += [Line.cr(a.key, a.amount, cur) for a in allocations]
        code = "payment.received"
    if allocated and method != Payment.Method.CREDITOR_REPORTED:
        lines += [
            Line.dr(creditor_claims_account(case.creditor, cur), allocated, cur),
            Line.cr(_payable_account(case), allocated, cur),
        ]
    if remainder:
        lines.append(Line.cr(_overpayment_account(case), remainder, cur))
    payment.ledger_transaction = ledger_post(
        idempotency_key=f"payment:{payment.pk}",
        code=code,
        lines=lines,
        memo=f"{method} {external_ref}",
        occurred_at=received_at,
    )
    payment.save(update_fields=["ledger_transaction", "updated_at"])
    outstanding = sum(b.outstanding_minor for b in balances) - allocated
    audit_record(
        actor=actor,
        verb="payment.received",
        subject=case,
        data={
            "payment": payment.pk,
            "amount": amount.minor,
            "currency": cur,
            "method": method,
            "allocation": {a.key: a.amount for a in allocations},
            "overpayment": remainder,
            "outstanding": outstanding,
        },
    )
    if outstanding == 0 and can_transition(Status(case.status), Status.PAID):
        case_transition(case=case, to=Status.PAID, actor=actor, reason="paid in full", now=received_at)
    _receipt_and_notice(
        payment=payment, balances=balances, allocations=allocations, remainder=remainder, outstanding=outstanding
    )
    return payment


def _receipt_and_notice(
    *, payment: Payment, balances: list[ClaimBalance], allocations: list[Allocation], remainder: int, outstanding: int
) -> None:
    """FR-COL-13: a receipt for every payment; FR-COL-12: the creditor is told of every payment."""
    case = payment.case
    receipt = receipt_issue(
        payment_id=payment.pk,
        received_at=payment.received_at,
        balances=balances,
        allocations=allocations,
        overpayment_minor=remainder,
        remaining_minor=outstanding,
    )
    amount = Money(payment.amount_minor, payment.currency)
    if payment.method == Payment.Method.CREDITOR_REPORTED:
        return  # the creditor told us; the debtor's receipt comes from the creditor who was paid
    creditor_notify(
        case=case,
        kind=CreditorNotification.Kind.PAYMENT_RECEIVED
        if outstanding == 0
        else CreditorNotification.Kind.PAYMENT_PARTIAL,
        message=f"{case.reference}: {amount.format('en_GB')} received ({payment.method}); "
        f"left to pay {Money(outstanding, payment.currency).format('en_GB')}",
        data={
            "payment": payment.pk,
            "amount": payment.amount_minor,
            "method": payment.method,
            "outstanding": outstanding,
            "receipt": receipt.number,
        },
    )
    if payment.method != Payment.Method.SIMULATED:
        receipt_deliver_on_commit(receipt.pk)


def overpayment_apply(*, case: Case, key: str, actor: Actor) -> int:
    """Set the debtor's refundable balance against what the case owes again; returns the amount applied.

    A reversal (a direct-debit return, a card chargeback or refund) reopens the claims the reversed
    payment had paid, while the debtor may meanwhile have paid more than was owed: the case would show a
    debt and money held for the same debtor at once. Both are certain and due between the same parties,
    so they extinguish each other up to the smaller (set-off, C. civ. 1347–1348): Dr the overpayment
    account / Cr the claims (oldest first, as a payment), and the creditor's share moves from "claims
    under management" to "payable". ``key`` names the event that reopened the claims (idempotent).
    Nothing happens when either side is nil.
    """
    held = -account_balance(key=_overpayment_account(case))  # a liability: credit balance
    balances = case_claim_balances(case=case)
    owed = sum(max(b.outstanding_minor, 0) for b in balances)
    amount = min(held, owed)
    if amount <= 0:
        return 0
    cur = case.currency
    allocations, _ = allocate(amount, [(b.claim.ledger_key, b.outstanding_minor) for b in balances])
    lines = [Line.dr(_overpayment_account(case), amount, cur)]
    lines += [Line.cr(a.key, a.amount, cur) for a in allocations]
    lines += [
        Line.dr(creditor_claims_account(case.creditor, cur), amount, cur),
        Line.cr(_payable_account(case), amount, cur),
    ]
    ledger_post(
        idempotency_key=f"overpayment-applied:{key}",
        code="payment.overpayment_applied",
        lines=lines,
        memo=f"refundable balance set against {case.reference} ({key})",
    )
    audit_record(
        actor=actor,
        verb="payment.overpayment_applied",
        subject=case,
        data={"amount": amount, "currency": cur, "allocation": {a.key: a.amount for a in allocations}, "key": key},
    )
    return amount
