"""Reversing a payment, in full or in part: a refund or a card chargeback (issue 5).

Entries are never edited: a reversal is a new balanced transaction taking back, from the accounts the
payment credited, the amount that left the trust account — first what was an overpayment (it was the
debtor's anyway), then the claims in the reverse order of the allocation (the last claim paid is the
first reopened). The creditor's share moves back from "payable" to "claims under management", so a
chargeback after a remittance leaves the creditor owing it back, visibly. A paid case reopens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.cases.services import case_transition
from relance.cases.status import Status
from relance.claims.services import case_overpayment_account, creditor_claims_account, creditor_payable_account
from relance.core.errors import ConflictError, ValidationError
from relance.core.money import Money
from relance.ledger.balance import Line
from relance.ledger.models import Posting
from relance.ledger.services import ledger_post
from relance.payments.models import CreditorNotification, Payment
from relance.payments.notify import creditor_notify
from relance.payments.portal_models import PaymentReversal
from relance.payments.services import overpayment_apply
from relance.tenancy.actors import Actor


@dataclass(frozen=True, slots=True)
class Takeback:
    key: str
    amount: int


def reversal_split(amount: int, *, overpayment: int, claims: Sequence[tuple[str, int]]) -> list[Takeback]:
    """Where ``amount`` comes back from (pure): the overpayment first, then ``claims`` (in allocation
    order, with what is still allocated to each) from the last one backwards."""
    if amount <= 0:
        raise ValueError("a reversal takes back a positive amount")
    left = amount
    out: list[Takeback] = []
    for key, available in [("overpayment", overpayment), *reversed(claims)]:
        if left == 0:
            break
        take = min(left, max(available, 0))
        if take:
            out.append(Takeback(key, take))
            left -= take
    if left:
        raise ValueError("a reversal cannot take back more than the payment brought")
    return out


def _still_allocated(payment: Payment, case: Case) -> tuple[int, list[tuple[str, int]]]:
    """(overpayment, [(claim account, amount)]) the payment still holds after earlier reversals."""
    overpay_key = f"overpayment:case:{case.pk}"
    txn_ids = [payment.ledger_transaction_id]
    txn_ids += list(payment.reversals.exclude(ledger_transaction=None).values_list("ledger_transaction_id", flat=True))
    held: dict[str, int] = defaultdict(int)
    order: list[str] = []
    for p in Posting.objects.filter(transaction_id__in=txn_ids).select_related("account").order_by("pk"):
        key = p.account.key
        if key.startswith("claim:") or key == overpay_key:
            if key not in order and p.transaction_id == payment.ledger_transaction_id:
                order.append(key)
            held[key] += p.credit - p.debit
    return held[overpay_key], [(k, held[k]) for k in order if k.startswith("claim:")]


@transaction.atomic
def payment_reverse(
    *,
    payment: Payment,
    kind: str,
    amount_minor: int,
    external_ref: str,
    actor: Actor,
    occurred_at: datetime | None = None,
) -> PaymentReversal:
    """Take ``amount_minor`` of ``payment`` back; idempotent on ``(kind, external_ref)``."""
    if kind not in PaymentReversal.Kind.values:
        raise ValidationError(f"Unknown reversal kind {kind!r}.", field="kind")
    existing = PaymentReversal.objects.filter(kind=kind, external_ref=external_ref).first()
    if existing is not None:
        if (existing.payment_id, existing.amount_minor) != (payment.pk, amount_minor):
            raise ConflictError("This reversal reference was already used with other details.", field="external_ref")
        return existing
    case = Case.objects.select_for_update().select_related("creditor").get(pk=payment.case_id)
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    already = payment.reversals.aggregate(t=Sum("amount_minor"))["t"] or 0
    if amount_minor <= 0 or already + amount_minor > payment.amount_minor:
        raise ValidationError(
            f"A reversal of {amount_minor} exceeds what is left of payment {payment.pk}"
            f" ({payment.amount_minor - already}).",
            field="amount",
        )
    overpayment, claims = _still_allocated(payment, case)
    split = reversal_split(amount_minor, overpayment=overpayment, claims=claims)
    cur = payment.currency
    trust = f"trust:{case.creditor.agency_id}:{cur}"
    lines = [Line.cr(trust, amount_minor, cur)]
    from_claims = 0
    for take in split:
        if take.key == "overpayment":
            key = case_overpayment_account(case_id=case.pk, case_reference=case.reference, currency=cur)
            lines.append(Line.dr(key, take.amount, cur))
        else:
            lines.append(Line.dr(take.key, take.amount, cur))
            from_claims += take.amount
    if from_claims:
        lines += [
            Line.dr(creditor_payable_account(case.creditor, cur), from_claims, cur),
            Line.cr(creditor_claims_account(case.creditor, cur), from_claims, cur),
        ]
    occurred_at = occurred_at or timezone.now()
    reversal = PaymentReversal.objects.create(
        payment=payment,
        kind=kind,
        amount_minor=amount_minor,
        currency=cur,
        external_ref=external_ref,
        occurred_at=occurred_at,
    )
    reversal.ledger_transaction = ledger_post(
        idempotency_key=f"payment-reversal:{reversal.pk}",
        code=f"payment.{kind}",
        lines=lines,
        memo=f"{kind} of payment {payment.pk} ({external_ref})",
        occurred_at=occurred_at,
    )
    reversal.save(update_fields=["ledger_transaction", "updated_at"])
    # What the debtor overpaid on other payments settles what this reversal reopened (set-off).
    overpayment_apply(case=case, key=f"reversal:{reversal.pk}", actor=actor)
    outstanding = case_outstanding_minor(case=case)
    audit_record(
        actor=actor,
        verb=f"payment.{kind}",
        subject=case,
        data={
            "payment": payment.pk,
            "reversal": reversal.pk,
            "amount": amount_minor,
            "currency": cur,
            "split": {t.key: t.amount for t in split},
            "outstanding": outstanding,
        },
    )
    creditor_notify(
        case=case,
        kind=CreditorNotification.Kind.PAYMENT_REVERSED,
        message=f"{case.reference}: {kind} of {Money(amount_minor, cur).format('en_GB')}"
        f" on a payment of {Money(payment.amount_minor, cur).format('en_GB')}",
        data={"payment": payment.pk, "kind": kind, "amount": amount_minor, "outstanding": outstanding},
    )
    if outstanding > 0 and case.status == Status.PAID.value:
        # The money is gone: the case is owed again and chasing resumes.
        case_transition(case=case, to=Status.ACTIVE, actor=actor, reason=f"payment {kind}", now=occurred_at)
        case.next_action_at = occurred_at
        case.save(update_fields=["next_action_at", "updated_at"])
    return reversal
