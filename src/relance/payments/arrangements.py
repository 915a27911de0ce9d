"""Arrangements: instalment plans (with SEPA direct debit), promises to pay, hardship budgets.

The use cases, each one transaction with its audit rows inside:

- ``plan_create``: a plan within the creditor's policy (``schedule.plan_violations`` empty) is
  accepted at once (case → ``in_plan``); outside it, it waits for an agent (``plan_decide``).
  Paid by SEPA direct debit: the mandate (UMR, IBAN, date of signature, evidence) is signed in the
  same transaction.
- ``promise_create``: a date and an amount within policy (case → ``promised``).
- ``hardship_declare``: a short budget → the affordable plan (``schedule.affordable_plan``); a
  vulnerable situation is flagged for a human.
- ``arrangements_review`` (scheduled job): promises kept or broken, instalments paid or missed,
  plans completed or broken — read from the ledger, never typed in.
- ``sepa_batch_create`` / ``sepa_settle`` / ``sepa_rtransactions_import``: pain.008 files for due
  instalments (FRST then RCUR), their settlement as payments through ``payment_record`` (the
  allocation rules of the ledger), and R-transactions (pain.002 rejects, camt.054 returns) that
  reverse the payment and mark the instalment missed.

Events for the strategy engine and the creditor (audit verbs, subject: the case; docs/payments.md):
``promise.made``, ``promise.kept``, ``promise.broken``, ``plan.created``, ``plan.proposed``,
``plan.accepted``, ``plan.rejected``, ``plan.instalment_paid``, ``plan.instalment_missed``,
``plan.completed``, ``plan.broken``, ``mandate.signed``, ``hardship.declared``,
``debtor.vulnerability_flagged``, ``payment.reversed``; and ``proposal.received`` for every debtor
proposal (plan, promise, hardship): FR-COL-12, the creditor is told of each one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import IO, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from relance.audit.services import audit_record
from relance.cases.models import Case, WorkItem
from relance.cases.queues import work_item_close, work_item_open
from relance.cases.selectors import case_outstanding_minor
from relance.cases.services import case_promise, case_transition
from relance.cases.status import Status, can_transition
from relance.core.errors import ConflictError, PermissionDeniedError, ValidationError
from relance.core.money import Money
from relance.ledger.services import ledger_reverse
from relance.payments.arrangement_models import (
    ArrangementPolicy,
    DirectDebitBatch,
    DirectDebitReturn,
    HardshipStatement,
    PaymentPlan,
    PlanInstalment,
    Promise,
    SepaCreditor,
    SepaMandate,
)
from relance.payments.models import Payment
from relance.payments.rtx import (
    NO_REPRESENTATION,
    REPRESENTABLE,
    RTransaction,
    RTransactionError,
    rtransactions_parse,
)
from relance.payments.schedule import (
    AffordablePlan,
    Budget,
    Instalment,
    PlanPolicy,
    Violation,
    add_months,
    affordable_plan,
    first_due_window,
    plan_schedule,
    plan_violations,
    promise_violations,
)
from relance.payments.sepa import (
    Creditor as SepaCreditorLine,
)
from relance.payments.sepa import (
    DebitLine,
    SepaFileError,
    end_to_end_id,
    ics_is_valid,
    pain008,
    umr_for,
)
from relance.payments.services import overpayment_apply, payment_record
from relance.payments.transfer import iban_parse
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency, Creditor

# Misses that break a plan: the second unpaid instalment (the first one is a reminder's business).
MISSES_TO_BREAK = 2
# Core direct debits are filed at least one banking day before the collection date (PAY-09).
COLLECTION_LEAD_DAYS = 1
# An instalment returned for insufficient funds (AM04) is presented once more this many days later;
# the debtor is told so when signing (``REPRESENTATION_NOTICE``), which makes the date part of the
# notified schedule (PAY-09 pre-notification).
REPRESENT_AFTER_DAYS = 7
MAX_PRESENTATIONS = 2
REPRESENTATION_NOTICE = gettext_noop(
    "If a debit is refused for insufficient funds, it is presented once more %(days)s days later, for the same amount."
)
_DECIDE_ROLES = frozenset({"system", "agent", "supervisor", "agency_admin"})
_SEPA_ROLES = frozenset({"system", "agency_admin", "supervisor"})
# The mandate wording the debtor accepts (EPC: authorisation and the 8-week refund right, PAY-08).
MANDATE_WORDING = gettext_noop(
    "By signing this mandate form, you authorise %(creditor)s to send instructions to your bank to debit your "
    "account and your bank to debit your account in accordance with the instructions from %(creditor)s. As part "
    "of your rights, you are entitled to a refund from your bank under the terms and conditions of your "
    "agreement with your bank. A refund must be claimed within 8 weeks starting from the date on which your "
    "account was debited."
)


class ArrangementPolicyError(ValidationError):
    code = "arrangement.outside_policy"
    title = "This is outside what can be accepted"


class ArrangementClosedError(ConflictError):
    code = "arrangement.case_not_open"
    title = "This case cannot take an arrangement now"


class DirectDebitUnavailableError(ValidationError):
    code = "arrangement.direct_debit_unavailable"
    title = "Direct debit is not available"


def policy_for(creditor: Creditor) -> PlanPolicy:
    """The creditor's arrangement policy (``ArrangementPolicy``), or the defaults."""
    row = ArrangementPolicy.objects.filter(creditor=creditor).first()
    if row is None:
        return PlanPolicy()
    return PlanPolicy(
        max_months=row.max_months,
        min_instalment_minor=row.min_instalment_minor,
        first_due_within_days=row.first_due_within_days,
        promise_within_days=row.promise_within_days,
        promise_min_percent=row.promise_min_percent,
        grace_days=row.grace_days,
        allowance_per_dependant_minor=row.allowance_per_dependant_minor,
        hardship_share_percent=row.hardship_share_percent,
    )


def sepa_creditor_for(agency: Agency) -> SepaCreditor | None:
    """The agency's SEPA creditor set-up when direct debit can be offered (valid ICS and trust IBAN)."""
    row = SepaCreditor.objects.filter(agency=agency).first()
    if row is None or not ics_is_valid(row.creditor_identifier) or iban_parse(agency.trust_iban) is None:
        return None
    return row


@dataclass(frozen=True, slots=True)
class PlanQuote:
    """What a plan would be: its schedule and the policy rules it breaks (none: accepted at once)."""

    total_minor: int
    currency: str
    months: int
    first_due: date
    instalments: list[Instalment]
    violations: list[Violation]

    @property
    def within_policy(self) -> bool:
        return not self.violations


def plan_quote(*, case: Case, months: int, first_due: date, today: date) -> PlanQuote:
    """The schedule for the case's outstanding balance and its check against the policy (no write)."""
    total = case_outstanding_minor(case=case)
    if total <= 0:
        raise ValidationError(_("Nothing is left to pay on this case."), field="months")
    if not 1 <= months <= 120:
        raise ValidationError(_("Choose between 1 and 120 months."), field="months")
    return PlanQuote(
        total_minor=total,
        currency=case.currency,
        months=months,
        first_due=first_due,
        instalments=plan_schedule(total_minor=total, months=months, first_due=first_due),
        violations=plan_violations(
            total_minor=total, months=months, first_due=first_due, today=today, policy=policy_for(case.creditor)
        ),
    )


@dataclass(frozen=True, slots=True)
class MandateIn:
    """What the debtor gives to sign a SEPA mandate online."""

    debtor_name: str
    iban: str
    accepted: bool  # ticked "I authorise …"
    ip: str | None = None
    user_agent: str = ""


def _open_case(case_id: int) -> Case:
    case = Case.objects.select_for_update().select_related("creditor__agency", "debtor").get(pk=case_id)
    if case.is_closed or case.status in {Status.DISPUTED.value, Status.ON_HOLD.value}:
        raise ArrangementClosedError(
            _("An arrangement needs an open case that is not disputed or on hold."), case=case.pk, status=case.status
        )
    return case


def _to(case: Case, target: Status, actor: Actor, reason: str, now: datetime) -> None:
    """Move the case to ``target``, through ``active`` when the status machine needs it."""
    current = Status(case.status)
    if current == target:
        return
    if not can_transition(current, target) and can_transition(current, Status.ACTIVE):
        case_transition(case=case, to=Status.ACTIVE, actor=actor, reason=reason, now=now)
    case_transition(case=case, to=target, actor=actor, reason=reason, now=now)


def _resume_chasing(case: Case, actor: Actor, reason: str, now: datetime) -> None:
    """Back to ``active`` with the engine looking now (a broken promise or plan)."""
    if Status(case.status) in {Status.PROMISED, Status.IN_PLAN}:
        case_transition(case=case, to=Status.ACTIVE, actor=actor, reason=reason, now=now)
        case.next_action_at = now
        case.save(update_fields=["next_action_at", "updated_at"])


def _proposal(*, case: Case, actor: Actor, kind: str, data: dict[str, Any]) -> None:
    # FR-COL-12 (R124-5): the creditor is told of every proposal to pay otherwise than at once.
    audit_record(actor=actor, verb="proposal.received", subject=case, data={"kind": kind, **data})


def _validate_mandate(mandate: MandateIn, agency: Agency) -> tuple[SepaCreditor, str, str, str]:
    sepa = sepa_creditor_for(agency)
    if sepa is None:
        raise DirectDebitUnavailableError(_("Direct debit is not set up for this agency."), field="method")
    name = " ".join(mandate.debtor_name.split())
    if not name:
        raise ValidationError(_("Enter the account holder's name."), field="debtor_name")
    if len(name) > 70:
        raise ValidationError(_("The account holder's name has at most 70 characters."), field="debtor_name")
    iban = iban_parse(mandate.iban)
    if iban is None:
        raise ValidationError(_("This IBAN is not valid: check its letters and digits."), field="iban")
    from schwifty import IBAN  # noqa: PLC0415 - only for the SEPA-zone check

    if not IBAN(iban.compact).in_sepa_zone:
        raise ValidationError(_("This account is outside the SEPA zone."), field="iban")
    if not mandate.accepted:
        raise ValidationError(_("Tick the box to sign the mandate."), field="accepted")
    return sepa, name, iban.compact, iban.bic


@transaction.atomic
def plan_create(
    *,
    case: Case,
    months: int,
    first_due: date,
    method: str,
    actor: Actor,
    mandate: MandateIn | None = None,
    source: str = PaymentPlan.Source.PORTAL,
    now: datetime | None = None,
) -> PaymentPlan:
    """A plan for the case's balance: active within policy, else a proposal for an agent."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    case = _open_case(case.pk)
    if method not in PaymentPlan.Method.values:
        raise ValidationError(_("Choose a payment method."), field="method")
    if PaymentPlan.objects.filter(case=case, status__in=["proposed", "active"]).exists():
        raise ConflictError(_("This case already has a plan."), field="months")
    quote = plan_quote(case=case, months=months, first_due=first_due, today=today)
    signed = None
    if method == PaymentPlan.Method.DIRECT_DEBIT:
        if case.currency != "EUR":
            raise DirectDebitUnavailableError(_("SEPA direct debits are in euros only."), field="method")
        if mandate is None:
            raise ValidationError(_("Sign the direct-debit mandate."), field="iban")
        signed = _validate_mandate(mandate, case.creditor.agency)
    plan = PaymentPlan.objects.create(
        case=case,
        status=PaymentPlan.Status.ACTIVE if quote.within_policy else PaymentPlan.Status.PROPOSED,
        method=method,
        source=source,
        total_minor=quote.total_minor,
        currency=case.currency,
        months=months,
        first_due=first_due,
        outstanding_at_start_minor=quote.total_minor,
        within_policy=quote.within_policy,
        violations=[v.code for v in quote.violations],
        decided_at=now if quote.within_policy else None,
        decided_by="policy" if quote.within_policy else "",
    )
    PlanInstalment.objects.bulk_create(
        PlanInstalment(plan=plan, number=i.number, due_date=i.due, amount_minor=i.amount_minor)
        for i in quote.instalments
    )
    if not quote.within_policy:  # an adviser decides (issue 6: the plan-proposals queue)
        work_item_open(
            kind=WorkItem.Kind.PLAN_PROPOSAL,
            source=f"plan:{plan.pk}",
            agency_id=case.creditor.agency_id,
            case=case,
            title=f"Plan of {months} months outside policy — {case.reference}",
            amount_minor=quote.total_minor,
            data={"plan": plan.pk, "violations": plan.violations},
            actor=actor,
        )
    data = {
        "plan": plan.pk,
        "months": months,
        "first_due": first_due,
        "total": quote.total_minor,
        "currency": case.currency,
        "method": method,
        "source": source,
        "within_policy": quote.within_policy,
        "violations": plan.violations,
    }
    audit_record(actor=actor, verb="plan.created", subject=case, data=data)
    _proposal(case=case, actor=actor, kind="plan", data=data)
    if signed is not None and mandate is not None:
        _mandate_create(case=case, plan=plan, signed=signed, mandate=mandate, actor=actor, now=now)
    if quote.within_policy:
        _plan_start(plan=plan, case=case, actor=actor, by="policy", now=now)
    else:
        audit_record(actor=actor, verb="plan.proposed", subject=case, data={"plan": plan.pk, **data})
    return plan


def mandate_wording(creditor_name: str) -> str:
    """The wording in the active language (the debtor's): its SHA-256 is kept with the mandate."""
    return _(MANDATE_WORDING) % {"creditor": creditor_name}


def representation_notice() -> str:
    """What the debtor is told, before signing and with the schedule, about a refused debit."""
    return _(REPRESENTATION_NOTICE) % {"days": REPRESENT_AFTER_DAYS}


def _mandate_create(
    *,
    case: Case,
    plan: PaymentPlan,
    signed: tuple[SepaCreditor, str, str, str],
    mandate: MandateIn,
    actor: Actor,
    now: datetime,
) -> SepaMandate:
    sepa, name, iban, bic = signed
    agency = case.creditor.agency
    wording = mandate_wording(agency.legal_name)
    row = SepaMandate.objects.create(
        case=case,
        plan=plan,
        umr=umr_for(case_reference=case.reference, plan_id=plan.pk),
        creditor_identifier=sepa.creditor_identifier,
        debtor_name=name,
        iban=iban,
        bic=bic,
        signed_at=now,
        signature_date=timezone.localdate(now),
        signed_ip=mandate.ip or None,
        signed_user_agent=mandate.user_agent[:300],
        wording_sha256=hashlib.sha256(wording.encode()).hexdigest(),
    )
    # Signing evidence (PAY-08): who, when, from where, which wording; the IBAN only by its last digits.
    audit_record(
        actor=actor,
        verb="mandate.signed",
        subject=case,
        data={
            "mandate": row.pk,
            "umr": row.umr,
            "ics": row.creditor_identifier,
            "iban_end": iban[-4:],
            "signature_date": row.signature_date,
            "ip": row.signed_ip,
            "user_agent": row.signed_user_agent,
            "wording_sha256": row.wording_sha256,
        },
    )
    return row


def _plan_start(*, plan: PaymentPlan, case: Case, actor: Actor, by: str, now: datetime) -> None:
    for promise in Promise.objects.filter(case=case, status=Promise.Status.PENDING):
        promise.status = Promise.Status.CANCELLED
        promise.resolved_at = now
        promise.save(update_fields=["status", "resolved_at", "updated_at"])
    _to(case, Status.IN_PLAN, actor, "plan", now)
    audit_record(actor=actor, verb="plan.accepted", subject=case, data={"plan": plan.pk, "by": by})


@transaction.atomic
def plan_decide(
    *, plan: PaymentPlan, accept: bool, actor: Actor, note: str = "", now: datetime | None = None
) -> PaymentPlan:
    """An agent accepts or declines a plan proposed outside the policy."""
    if not actor.is_staff or actor.role not in _DECIDE_ROLES:
        raise PermissionDeniedError(_("Only the agency's staff decide on proposed plans."))
    now = now or timezone.now()
    plan = PaymentPlan.objects.select_for_update().get(pk=plan.pk)
    if plan.status != PaymentPlan.Status.PROPOSED:
        raise ConflictError(_("This plan is not awaiting a decision."), plan=plan.pk, status=plan.status)
    plan.decided_at = now
    plan.decided_by = actor.label
    work_item_close(
        actor=actor,
        kind=WorkItem.Kind.PLAN_PROPOSAL,
        source=f"plan:{plan.pk}",
        outcome="accepted" if accept else "declined",
    )
    if not accept:
        plan.status = PaymentPlan.Status.REJECTED
        plan.save(update_fields=["status", "decided_at", "decided_by", "updated_at"])
        audit_record(actor=actor, verb="plan.rejected", subject=plan.case, data={"plan": plan.pk, "note": note})
        return plan
    case = _open_case(plan.case_id)
    plan.status = PaymentPlan.Status.ACTIVE
    plan.save(update_fields=["status", "decided_at", "decided_by", "updated_at"])
    _plan_start(plan=plan, case=case, actor=actor, by=actor.label, now=now)
    return plan


@transaction.atomic
def promise_create(
    *, case: Case, on: date, amount: Money, actor: Actor, now: datetime | None = None, enforce_policy: bool = True
) -> Promise:
    """The debtor promises to pay ``amount`` by ``on``, within the creditor's policy (else refused).

    ``enforce_policy=False``: an adviser took the promise (back office) with the authority to agree
    beyond the policy; the amount must still be at most the balance and the date in the future.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    case = _open_case(case.pk)
    if amount.currency != case.currency:
        raise ValidationError(_("This case is in %(currency)s.") % {"currency": case.currency}, field="amount")
    if case.status == Status.IN_PLAN.value:
        raise ArrangementClosedError(_("This case already has an instalment plan."), field="on")
    outstanding = case_outstanding_minor(case=case)
    policy = policy_for(case.creditor)
    if not enforce_policy:
        policy = replace(policy, promise_within_days=36500, promise_min_percent=0)
    violations = promise_violations(
        outstanding_minor=outstanding, amount_minor=amount.minor, on=on, today=today, policy=policy
    )
    if violations:
        raise ArrangementPolicyError(
            _("This promise is outside what can be accepted."),
            field=violations[0].field,
            violations=[v.code for v in violations],
        )
    Promise.objects.filter(case=case, status=Promise.Status.PENDING).update(
        status=Promise.Status.CANCELLED, resolved_at=now
    )
    promise = Promise.objects.create(
        case=case,
        due_date=on,
        amount_minor=amount.minor,
        currency=amount.currency,
        outstanding_at_promise_minor=outstanding,
    )
    if Status(case.status) == Status.NEW:
        case_transition(case=case, to=Status.ACTIVE, actor=actor, reason="promise", now=now)
    case_promise(case=case, on=on, amount_minor=amount.minor, actor=actor, now=now)
    data = {"promise": promise.pk, "on": on, "amount": amount.minor, "currency": amount.currency}
    audit_record(actor=actor, verb="promise.made", subject=case, data=data)
    _proposal(case=case, actor=actor, kind="promise", data=data)
    return promise


@dataclass(frozen=True, slots=True)
class HardshipOutcome:
    statement: HardshipStatement
    plan: AffordablePlan
    first_due: date


@transaction.atomic
def hardship_declare(
    *,
    case: Case,
    budget: Budget,
    vulnerable: bool,
    note: str,
    actor: Actor,
    now: datetime | None = None,
) -> HardshipOutcome:
    """Record a short budget and compute the affordable plan; flag a vulnerable situation for a human."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    case = _open_case(case.pk)
    for name, value in (("income", budget.income_minor), ("fixed_charges", budget.fixed_charges_minor)):
        if value < 0:
            raise ValidationError(_("Amounts cannot be negative."), field=name)
    if not 0 <= budget.dependants <= 20:
        raise ValidationError(_("Enter a number of dependants between 0 and 20."), field="dependants")
    outstanding = case_outstanding_minor(case=case)
    if outstanding <= 0:
        raise ValidationError(_("Nothing is left to pay on this case."), field="income")
    policy = policy_for(case.creditor)
    earliest, latest = first_due_window(today, policy)
    first_due = min(latest, max(earliest, today + timedelta(days=7)))
    proposal = affordable_plan(total_minor=outstanding, budget=budget, first_due=first_due, policy=policy)
    flagged = vulnerable or proposal.vulnerable
    statement = HardshipStatement.objects.create(
        case=case,
        income_minor=budget.income_minor,
        fixed_charges_minor=budget.fixed_charges_minor,
        dependants=budget.dependants,
        declared_vulnerable=vulnerable,
        note=note.strip()[:2000],
        capacity_minor=proposal.capacity_minor,
        proposed_months=proposal.months,
        proposed_instalment_minor=proposal.instalments[0].amount_minor,
        status=HardshipStatement.Status.TO_REVIEW if flagged else HardshipStatement.Status.RECORDED,
    )
    data = {
        "statement": statement.pk,
        "capacity": proposal.capacity_minor,
        "months": proposal.months,
        "instalment": proposal.instalments[0].amount_minor,
        "vulnerable": flagged,
    }
    audit_record(actor=actor, verb="hardship.declared", subject=case, data=data)
    _proposal(case=case, actor=actor, kind="hardship", data=data)
    if flagged:
        work_item_open(
            kind=WorkItem.Kind.HARDSHIP,
            source=f"hardship:{statement.pk}",
            agency_id=case.creditor.agency_id,
            case=case,
            title=f"Hardship to review — {case.reference}",
            amount_minor=outstanding,
            data={"statement": statement.pk, "declared": vulnerable},
            actor=actor,
        )
        audit_record(
            actor=actor,
            verb="debtor.vulnerability_flagged",
            subject=case,
            data={"statement": statement.pk, "declared": vulnerable, "budget_short": proposal.vulnerable},
        )
    return HardshipOutcome(statement=statement, plan=proposal, first_due=first_due)


# --- the review job: promises and plans read from the ledger ---------------------------------------


@dataclass
class ReviewReport:
    promises_kept: int = 0
    promises_broken: int = 0
    instalments_paid: int = 0
    instalments_missed: int = 0
    plans_completed: int = 0
    plans_broken: int = 0


def _promise_review(
    *, promise: Promise, today: date, grace: int, actor: Actor, now: datetime, report: ReviewReport
) -> None:
    case = Case.objects.select_for_update().get(pk=promise.case_id)
    paid_since = promise.outstanding_at_promise_minor - case_outstanding_minor(case=case)
    if paid_since >= promise.amount_minor:
        promise.status = Promise.Status.KEPT
        verb = "promise.kept"
        report.promises_kept += 1
    elif today > promise.due_date + timedelta(days=grace):
        promise.status = Promise.Status.BROKEN
        verb = "promise.broken"
        report.promises_broken += 1
    else:
        return
    promise.resolved_at = now
    promise.save(update_fields=["status", "resolved_at", "updated_at"])
    audit_record(
        actor=actor,
        verb=verb,
        subject=case,
        data={
            "promise": promise.pk,
            "on": promise.due_date,
            "amount": promise.amount_minor,
            "paid": max(0, paid_since),
        },
    )
    if case.status == Status.PROMISED.value:
        _resume_chasing(case, actor, verb, now)


def _instalment_missed(
    *, instalment: PlanInstalment, plan: PaymentPlan, case: Case, reason: str, kind: str, actor: Actor, now: datetime
) -> None:
    instalment.status = PlanInstalment.Status.FAILED
    instalment.failure_code = reason[:10]
    instalment.failed_at = now
    instalment.save(update_fields=["status", "failure_code", "failed_at", "updated_at"])
    audit_record(
        actor=actor,
        verb="plan.instalment_missed",
        subject=case,
        data={
            "plan": plan.pk,
            "instalment": instalment.number,
            "due": instalment.due_date,
            "amount": instalment.amount_minor,
            "reason": reason,
            "kind": kind,
        },
    )


def _plan_break_if_needed(plan: PaymentPlan, case: Case, actor: Actor, now: datetime) -> bool:
    if plan.status != PaymentPlan.Status.ACTIVE:
        return False
    misses = plan.instalments.filter(status=PlanInstalment.Status.FAILED).count()
    if misses < MISSES_TO_BREAK:
        return False
    plan.status = PaymentPlan.Status.BROKEN
    plan.save(update_fields=["status", "updated_at"])
    plan.instalments.filter(status=PlanInstalment.Status.SCHEDULED).update(status=PlanInstalment.Status.CANCELLED)
    SepaMandate.objects.filter(plan=plan).update(status=SepaMandate.Status.REVOKED)
    audit_record(actor=actor, verb="plan.broken", subject=case, data={"plan": plan.pk, "missed": misses})
    _resume_chasing(case, actor, "plan.broken", now)
    return True


def _collects_by_debit(plan: PaymentPlan) -> bool:
    if plan.method != PaymentPlan.Method.DIRECT_DEBIT:
        return False
    return SepaMandate.objects.filter(plan=plan, status=SepaMandate.Status.ACTIVE).exists()


def _plan_review(
    *, plan: PaymentPlan, today: date, grace: int, actor: Actor, now: datetime, report: ReviewReport
) -> None:
    case = Case.objects.select_for_update().get(pk=plan.case_id)
    plan = PaymentPlan.objects.select_for_update().get(pk=plan.pk)
    outstanding = case_outstanding_minor(case=case)
    instalments = list(plan.instalments.order_by("number"))
    # What the ledger shows paid since the plan started, less what settled direct debits already
    # account for: the rest covers the open instalments in order (a later payment never turns a
    # returned instalment into a paid one by counting another instalment's money).
    surplus = (plan.outstanding_at_start_minor - outstanding) - sum(
        i.amount_minor for i in instalments if i.status == PlanInstalment.Status.PAID
    )
    by_debit = _collects_by_debit(plan)
    for instalment in instalments:
        if instalment.status not in {PlanInstalment.Status.SCHEDULED, PlanInstalment.Status.FAILED}:
            continue  # paid, cancelled, or with the bank (settled by ``sepa_settle`` or an R-transaction)
        if surplus >= instalment.amount_minor:
            surplus -= instalment.amount_minor
            instalment.status = PlanInstalment.Status.PAID
            instalment.save(update_fields=["status", "updated_at"])
            report.instalments_paid += 1
            audit_record(
                actor=actor,
                verb="plan.instalment_paid",
                subject=case,
                data={"plan": plan.pk, "instalment": instalment.number, "amount": instalment.amount_minor},
            )
        elif (
            instalment.status == PlanInstalment.Status.SCHEDULED
            and not by_debit
            and today > instalment.due_date + timedelta(days=grace)
        ):
            _instalment_missed(
                instalment=instalment, plan=plan, case=case, reason="not_paid", kind="due", actor=actor, now=now
            )
            report.instalments_missed += 1
    if outstanding <= 0 or not plan.instalments.exclude(status__in=["paid", "cancelled"]).exists():
        plan.status = PaymentPlan.Status.COMPLETED
        plan.save(update_fields=["status", "updated_at"])
        report.plans_completed += 1
        audit_record(actor=actor, verb="plan.completed", subject=case, data={"plan": plan.pk})
        if outstanding > 0:
            _resume_chasing(case, actor, "plan.completed", now)
        return
    if _plan_break_if_needed(plan, case, actor, now):
        report.plans_broken += 1


def arrangements_review(*, actor: Actor, now: datetime | None = None) -> ReviewReport:
    """The scheduled job: settle due debits' outcomes from the ledger; one transaction per case."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    report = ReviewReport()
    for promise in Promise.objects.filter(status=Promise.Status.PENDING).select_related("case__creditor"):
        grace = policy_for(promise.case.creditor).grace_days
        with transaction.atomic():
            fresh = Promise.objects.select_for_update().get(pk=promise.pk)
            if fresh.status == Promise.Status.PENDING:
                _promise_review(promise=fresh, today=today, grace=grace, actor=actor, now=now, report=report)
    for plan in PaymentPlan.objects.filter(status=PaymentPlan.Status.ACTIVE).select_related("case__creditor"):
        grace = policy_for(plan.case.creditor).grace_days
        with transaction.atomic():
            _plan_review(plan=plan, today=today, grace=grace, actor=actor, now=now, report=report)
    return report


# --- SEPA direct debit ------------------------------------------------------------------------------


MANDATE_LAPSE_MONTHS = 36


def mandate_lapsed(mandate: SepaMandate, today: date) -> bool:
    """No collection for 36 months (or none since the signature 36 months ago): the mandate lapsed."""
    last = mandate.last_collection_date or mandate.signature_date
    return today >= add_months(last, MANDATE_LAPSE_MONTHS)


def _aware(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@transaction.atomic
def sepa_batch_create(
    *, agency: Agency, actor: Actor, now: datetime | None = None, horizon_days: int = 5
) -> DirectDebitBatch | None:
    """A pain.008 file for the instalments due within ``horizon_days`` (None when there are none).

    One instalment per mandate and file; ``FRST`` for a mandate's first collection, then ``RCUR``.
    The collection date is the due date, never earlier than ``COLLECTION_LEAD_DAYS`` from today.
    """
    if not actor.is_staff or actor.role not in _SEPA_ROLES:
        raise PermissionDeniedError(_("Only agency administrators and supervisors make direct-debit files."))
    now = now or timezone.now()
    today = timezone.localdate(now)
    sepa = sepa_creditor_for(agency)
    if sepa is None:
        raise DirectDebitUnavailableError(_("Direct debit is not set up for this agency (ICS and trust IBAN)."))
    horizon = today + timedelta(days=horizon_days)
    due = (
        PlanInstalment.objects.select_for_update(of=("self",))
        .filter(
            Q(status=PlanInstalment.Status.SCHEDULED, due_date__lte=horizon)
            | Q(
                status=PlanInstalment.Status.FAILED,
                represent_on__lte=horizon,
                presentations__lt=MAX_PRESENTATIONS,
            ),
            plan__status=PaymentPlan.Status.ACTIVE,
            plan__method=PaymentPlan.Method.DIRECT_DEBIT,
            plan__case__creditor__agency=agency,
            plan__mandate__status=SepaMandate.Status.ACTIVE,
        )
        .select_related("plan__case", "plan__mandate")
        .order_by("plan_id", "number")
    )
    chosen: list[PlanInstalment] = []
    seen: set[int] = set()
    for instalment in due:
        if instalment.plan_id in seen:
            continue
        seen.add(instalment.plan_id)
        if instalment.amount_minor > case_outstanding_minor(case=instalment.plan.case):
            # Paid some other way meanwhile (e.g. the returned amount by transfer): never debit more
            # than is owed. The review job marks what the ledger shows covered.
            continue
        mandate = instalment.plan.mandate
        if mandate_lapsed(mandate, today):
            # PAY-09: a mandate unused for 36 months has lapsed; it is never presented again.
            SepaMandate.objects.filter(pk=mandate.pk).update(status=SepaMandate.Status.REVOKED)
            audit_record(actor=actor, verb="mandate.lapsed", subject=instalment.plan.case, data={"umr": mandate.umr})
            continue
        chosen.append(instalment)
    if not chosen:
        return None
    earliest = today + timedelta(days=COLLECTION_LEAD_DAYS)
    lines = []
    for instalment in chosen:
        plan, mandate = instalment.plan, instalment.plan.mandate
        case = plan.case
        instalment.sequence_type = "RCUR" if mandate.first_collected else "FRST"
        instalment.collection_date = max(instalment.represent_on or instalment.due_date, earliest)
        instalment.presentations = max(instalment.presentations, 1 if instalment.end_to_end_id else 0) + 1
        if instalment.end_to_end_id:
            instalment.previous_end_to_end_id = instalment.end_to_end_id
        instalment.end_to_end_id = end_to_end_id(
            case_reference=case.reference,
            plan_id=plan.pk,
            number=instalment.number,
            presentation=instalment.presentations,
        )
        lines.append(
            DebitLine(
                end_to_end_id=instalment.end_to_end_id,
                amount_minor=instalment.amount_minor,
                currency=plan.currency,
                sequence_type=instalment.sequence_type,
                collection_date=instalment.collection_date,
                umr=mandate.umr,
                signature_date=mandate.signature_date,
                debtor_name=mandate.debtor_name,
                debtor_iban=mandate.iban,
                description=f"{case.reference} {instalment.number}/{plan.months} {case.creditor.display_name}"[:140],
            )
        )
    trust = iban_parse(agency.trust_iban)
    assert trust is not None  # noqa: S101 - checked by sepa_creditor_for
    try:
        document = pain008(
            creditor=SepaCreditorLine(
                name=agency.legal_name,
                iban=trust.compact,
                bic=sepa.bic or trust.bic,
                identifier=sepa.creditor_identifier,
            ),
            lines=lines,
        )
    except SepaFileError as exc:
        raise ValidationError(str(exc), field="instalments") from None
    batch = DirectDebitBatch.objects.create(
        agency=agency,
        message_id=document.message_id,
        schema="pain.008.001.08",
        collection_date=min(line.collection_date for line in lines),
        count=len(lines),
        total_minor=sum(line.amount_minor for line in lines),
        xml=document.xml.decode(),
    )
    for instalment in chosen:
        instalment.status = PlanInstalment.Status.SUBMITTED
        instalment.batch = batch
        instalment.represent_on = None
        instalment.save(
            update_fields=[
                "status",
                "batch",
                "sequence_type",
                "collection_date",
                "end_to_end_id",
                "previous_end_to_end_id",
                "presentations",
                "represent_on",
                "updated_at",
            ]
        )
        mandate = instalment.plan.mandate
        mandate.first_collected = True
        mandate.last_collection_date = instalment.collection_date
        mandate.save(update_fields=["first_collected", "last_collection_date", "updated_at"])
        audit_record(
            actor=actor,
            verb="plan.instalment_submitted",
            subject=instalment.plan.case,
            data={
                "plan": instalment.plan_id,
                "instalment": instalment.number,
                "sequence": instalment.sequence_type,
                "collection_date": instalment.collection_date,
                "end_to_end_id": instalment.end_to_end_id,
                "batch": batch.message_id,
                "presentation": instalment.presentations,
            },
        )
    audit_record(
        actor=actor,
        verb="sepa.batch_created",
        subject=batch,
        data={"message_id": batch.message_id, "count": batch.count, "total": batch.total_minor},
    )
    return batch


def sepa_settle(*, actor: Actor, now: datetime | None = None) -> int:
    """Collections whose date has come are money received: one payment each, through the ledger.

    The payment is ``direct_debit`` with the EndToEndId as its external reference (idempotent); a
    later return reverses it (``sepa_rtransactions_import``).
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    count = 0
    ids = PlanInstalment.objects.filter(status=PlanInstalment.Status.SUBMITTED, collection_date__lte=today).values_list(
        "pk", flat=True
    )
    for pk in list(ids):
        with transaction.atomic():
            instalment = PlanInstalment.objects.select_for_update(of=("self",)).select_related("plan__case").get(pk=pk)
            if instalment.status != PlanInstalment.Status.SUBMITTED or instalment.collection_date is None:
                continue
            _instalment_settle(instalment, actor=actor, received_at=_aware(instalment.collection_date))
            count += 1
    return count


def _instalment_settle(instalment: PlanInstalment, *, actor: Actor, received_at: datetime) -> Payment:
    """A submitted collection is money received (the caller holds the instalment's row lock)."""
    case = instalment.plan.case
    payment = payment_record(
        case=case,
        amount=Money(instalment.amount_minor, instalment.plan.currency),
        method=Payment.Method.DIRECT_DEBIT,
        external_ref=str(instalment.end_to_end_id),
        actor=actor,
        received_at=received_at,
    )
    instalment.status = PlanInstalment.Status.PAID
    instalment.payment = payment
    instalment.save(update_fields=["status", "payment", "updated_at"])
    audit_record(
        actor=actor,
        verb="plan.instalment_paid",
        subject=case,
        data={
            "plan": instalment.plan_id,
            "instalment": instalment.number,
            "amount": instalment.amount_minor,
            "payment": payment.pk,
        },
    )
    return payment


@dataclass(frozen=True)
class DirectDebitCredit:
    """What a trust-account credit that settles our own direct debits was recognised as."""

    outcome: str  # "reconciled" | "mismatch" | "returned"
    detail: str  # "direct_debit_batch" | "direct_debit"
    batch: DirectDebitBatch
    instalment: PlanInstalment | None
    expected_minor: int
    settled: int  # collections settled now because the credit came before ``sepa_settle``


def sepa_credit_recognise(
    *, agency: Agency, batch_message_id: str, end_to_end_id: str, amount_minor: int, received_at: datetime, actor: Actor
) -> DirectDebitCredit | None:
    """A bank credit naming one of the agency's pain.008 files or one of its collections (PAY-06).

    The bank credits a direct-debit file either as one entry for the file (``Btch/MsgId``) or itemised,
    one transaction per collection (its ``EndToEndId``). The collections are payments already, or become
    payments now if the credit comes before ``sepa_settle`` ran: the credit itself is no new money. An
    amount that is neither the file's total nor its total less what the bank already returned
    (``mismatch``), or a credit for a collection marked returned (``returned``), is for a person.
    None when the entry names nothing of this agency's.
    """
    instalment = None
    if end_to_end_id and end_to_end_id != "NOTPROVIDED":
        instalment = (
            PlanInstalment.objects.select_for_update(of=("self",))
            .select_related("plan__case", "batch")
            .filter(end_to_end_id=end_to_end_id, batch__agency=agency)
            .first()
        )
    if instalment is not None:
        assert instalment.batch is not None  # noqa: S101 - filtered on its agency
        batch = instalment.batch
        if instalment.status in {PlanInstalment.Status.FAILED, PlanInstalment.Status.CANCELLED}:
            return DirectDebitCredit("returned", "direct_debit", batch, instalment, instalment.amount_minor, 0)
        if amount_minor != instalment.amount_minor:
            return DirectDebitCredit("mismatch", "direct_debit", batch, instalment, instalment.amount_minor, 0)
        settled = 0
        if instalment.status == PlanInstalment.Status.SUBMITTED:
            _instalment_settle(instalment, actor=actor, received_at=received_at)
            settled = 1
        return DirectDebitCredit("reconciled", "direct_debit", batch, instalment, instalment.amount_minor, settled)
    if not batch_message_id:
        return None
    found = DirectDebitBatch.objects.filter(agency=agency, message_id=batch_message_id).first()
    if found is None:
        return None
    collections = list(
        PlanInstalment.objects.select_for_update(of=("self",)).select_related("plan__case").filter(batch=found)
    )
    returned = sum(i.amount_minor for i in collections if i.status == PlanInstalment.Status.FAILED)
    if amount_minor not in {found.total_minor, found.total_minor - returned}:
        return DirectDebitCredit("mismatch", "direct_debit_batch", found, None, found.total_minor - returned, 0)
    settled = 0
    for collection in collections:
        if collection.status == PlanInstalment.Status.SUBMITTED:
            _instalment_settle(collection, actor=actor, received_at=received_at)
            settled += 1
    return DirectDebitCredit("reconciled", "direct_debit_batch", found, None, amount_minor, settled)


@dataclass
class RTransactionReport:
    """What became of each R-transaction of a file."""

    missed: list[str] = field(default_factory=list)  # EndToEndIds marked missed
    reversed: list[str] = field(default_factory=list)  # of which a settled payment was reversed
    represented: list[str] = field(default_factory=list)  # of which to be presented again (AM04)
    duplicates: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class RTransactionFileError(ValidationError):
    code = "sepa.rtransaction_file_invalid"
    title = "This file of rejects or returns cannot be read"


def _payment_reverse(*, payment: Payment, reason: str, actor: Actor) -> DirectDebitReturn | None:
    if DirectDebitReturn.objects.filter(payment=payment).exists() or payment.ledger_transaction is None:
        return None
    txn = ledger_reverse(txn=payment.ledger_transaction, code="payment.reversed", memo=f"R-transaction {reason}")
    reversal = DirectDebitReturn.objects.create(payment=payment, reason_code=reason[:10], ledger_transaction=txn)
    case = Case.objects.select_related("creditor").get(pk=payment.case_id)
    audit_record(
        actor=actor,
        verb="payment.reversed",
        subject=case,
        data={"payment": payment.pk, "amount": payment.amount_minor, "reason": reason},
    )
    # Whatever the debtor overpaid meanwhile settles the reopened debt first.
    overpayment_apply(case=case, key=f"dd-return:{reversal.pk}", actor=actor)
    if case.status == Status.PAID.value and case_outstanding_minor(case=case) > 0:
        case_transition(case=case, to=Status.ACTIVE, actor=actor, reason="payment reversed")
    return reversal


def _rtx_apply(
    rtx: RTransaction, instalment: PlanInstalment, actor: Actor, now: datetime, report: RTransactionReport
) -> None:
    instalment = (
        PlanInstalment.objects.select_for_update(of=("self",))
        .select_related("plan__case", "payment")
        .get(pk=instalment.pk)
    )
    name = rtx.end_to_end_id or instalment.end_to_end_id or f"{instalment.plan_id}#{instalment.number}"
    if instalment.status == PlanInstalment.Status.FAILED or (
        rtx.end_to_end_id and rtx.end_to_end_id == instalment.previous_end_to_end_id
    ):
        report.duplicates.append(name)  # this presentation's return is already applied
        return
    plan = PaymentPlan.objects.select_for_update().get(pk=instalment.plan_id)
    case = Case.objects.select_for_update().get(pk=plan.case_id)
    reason = rtx.reason_code or "UNKNOWN"
    if instalment.payment is not None and _payment_reverse(payment=instalment.payment, reason=reason, actor=actor):
        report.reversed.append(name)
        case.refresh_from_db()
    _instalment_missed(instalment=instalment, plan=plan, case=case, reason=reason, kind=rtx.kind, actor=actor, now=now)
    report.missed.append(name)
    mandate = SepaMandate.objects.select_for_update().filter(plan=plan).first()
    if mandate is not None:
        fields = []
        if rtx.kind == "reject" and instalment.sequence_type == "FRST":
            mandate.first_collected = False  # EPC: after a rejected first collection, the next one is FRST
            fields.append("first_collected")
        if reason in NO_REPRESENTATION and reason != "MD06":
            mandate.status = SepaMandate.Status.REVOKED  # no mandate, closed account …: never debit again
            fields.append("status")
        if fields:
            mandate.save(update_fields=[*fields, "updated_at"])
    if plan.status == PaymentPlan.Status.COMPLETED:
        plan.status = PaymentPlan.Status.ACTIVE
        plan.save(update_fields=["status", "updated_at"])
    if plan.status == PaymentPlan.Status.ACTIVE and case.status == Status.ACTIVE.value:
        case_transition(case=case, to=Status.IN_PLAN, actor=actor, reason="plan resumes after a return")
    broken = _plan_break_if_needed(plan, case, actor, now)
    if (
        not broken
        and reason in REPRESENTABLE
        and max(instalment.presentations, 1) < MAX_PRESENTATIONS
        and mandate is not None
        and mandate.status == SepaMandate.Status.ACTIVE
    ):
        instalment.represent_on = timezone.localdate(now) + timedelta(days=REPRESENT_AFTER_DAYS)
        instalment.save(update_fields=["represent_on", "updated_at"])
        report.represented.append(name)
        audit_record(
            actor=actor,
            verb="plan.instalment_represent",
            subject=case,
            data={"plan": plan.pk, "instalment": instalment.number, "on": instalment.represent_on, "reason": reason},
        )


@transaction.atomic
def sepa_rtransactions_import(
    *, file: bytes | IO[bytes], actor: Actor, now: datetime | None = None
) -> RTransactionReport:
    """Apply a pain.002 (rejects) or camt.054/053 (returns): each named instalment is missed.

    A settled collection that comes back is reversed in the ledger (the case's balance goes up again,
    a paid case reopens). Idempotent: an instalment already missed is reported as a duplicate.
    """
    if not actor.is_staff or actor.role not in _SEPA_ROLES:
        raise PermissionDeniedError(_("Only agency administrators and supervisors import bank files."))
    now = now or timezone.now()
    data = file if isinstance(file, bytes) else file.read()
    try:
        rtxs = rtransactions_parse(data)
    except RTransactionError as exc:
        raise RTransactionFileError(str(exc), reason=exc.code) from None
    report = RTransactionReport()
    for rtx in rtxs:
        if rtx.end_to_end_id:
            instalments = list(
                PlanInstalment.objects.filter(
                    Q(end_to_end_id=rtx.end_to_end_id) | Q(previous_end_to_end_id=rtx.end_to_end_id)
                )
            )
        else:
            instalments = list(PlanInstalment.objects.filter(batch__message_id=rtx.original_message_id))
        if not instalments:
            report.unknown.append(rtx.end_to_end_id or rtx.original_message_id)
            continue
        for instalment in instalments:
            _rtx_apply(rtx, instalment, actor, now, report)
    audit_record(
        actor=actor,
        verb="sepa.rtransactions_imported",
        subject_type="payments.rtransactions",
        subject_id=hashlib.sha256(data).hexdigest()[:16],
        data={
            "missed": len(report.missed),
            "reversed": len(report.reversed),
            "represented": len(report.represented),
            "duplicates": len(report.duplicates),
            "unknown": len(report.unknown),
        },
    )
    return report


@transaction.atomic
def hardship_review(*, statement: HardshipStatement, note: str, actor: Actor) -> HardshipStatement:
    """An adviser has looked at a flagged situation (called, agreed a solution, set a hold …)."""
    if not actor.is_staff or actor.role not in _DECIDE_ROLES:
        raise PermissionDeniedError(_("Only the agency's staff review hardship statements."))
    statement = HardshipStatement.objects.select_for_update().get(pk=statement.pk)
    if statement.status != HardshipStatement.Status.TO_REVIEW:
        raise ConflictError(_("This statement is not waiting for a review."), statement=statement.pk)
    statement.status = HardshipStatement.Status.REVIEWED
    statement.save(update_fields=["status", "updated_at"])
    work_item_close(actor=actor, kind=WorkItem.Kind.HARDSHIP, source=f"hardship:{statement.pk}", outcome=note[:300])
    audit_record(
        actor=actor, verb="hardship.reviewed", subject=statement.case, data={"statement": statement.pk, "note": note}
    )
    return statement


_POLICY_LIMITS = {
    "max_months": (1, 120),
    "min_instalment_minor": (1, 10**9),
    "first_due_within_days": (1, 366),
    "promise_within_days": (1, 366),
    "promise_min_percent": (1, 100),
    "grace_days": (0, 60),
    "allowance_per_dependant_minor": (0, 10**9),
    "hardship_share_percent": (1, 100),
}


@transaction.atomic
def arrangement_policy_set(*, creditor: Creditor, actor: Actor, **values: int) -> ArrangementPolicy:
    """Set some fields of a creditor's arrangement policy (agency administrators only); audited."""
    if not actor.is_staff or actor.role not in _SEPA_ROLES:
        raise PermissionDeniedError(_("Only agency administrators and supervisors change arrangement policies."))
    for name, value in values.items():
        if name not in _POLICY_LIMITS:
            raise ValidationError(_("Unknown policy field."), field=name)
        low, high = _POLICY_LIMITS[name]
        if not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(
                _("Enter a whole number between %(low)s and %(high)s.") % {"low": low, "high": high}, field=name
            )
    policy, _created = ArrangementPolicy.objects.select_for_update().get_or_create(creditor=creditor)
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    audit_record(actor=actor, verb="arrangement_policy.changed", subject=creditor, data=dict(values))
    return policy


@transaction.atomic
def sepa_creditor_set(*, agency: Agency, creditor_identifier: str, bic: str = "", actor: Actor) -> SepaCreditor:
    """Record the agency's SEPA creditor identifier (ICS, PAY-04); audited."""
    if not actor.is_staff or actor.role not in _SEPA_ROLES:
        raise PermissionDeniedError(_("Only agency administrators and supervisors change the SEPA set-up."))
    ics = "".join(creditor_identifier.split()).upper()
    if not ics_is_valid(ics):
        raise ValidationError(_("This is not a valid SEPA creditor identifier (ICS)."), field="creditor_identifier")
    bic = "".join(bic.split()).upper()
    if bic and not (len(bic) in {8, 11} and bic.isalnum()):
        raise ValidationError(_("A BIC has 8 or 11 letters and digits."), field="bic")
    row, _created = SepaCreditor.objects.update_or_create(
        agency=agency, defaults={"creditor_identifier": ics, "bic": bic}
    )
    audit_record(actor=actor, verb="sepa.creditor_set", subject=agency, data={"ics": ics, "bic": bic})
    return row
