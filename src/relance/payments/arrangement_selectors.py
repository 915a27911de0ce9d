"""Reads of a case's arrangements (plans, promises, mandates), scoped through the case's choke point."""

from __future__ import annotations

from dataclasses import dataclass

from relance.cases.models import Case
from relance.cases.selectors import case_get_for_actor
from relance.payments.arrangement_models import HardshipStatement, PaymentPlan, PlanInstalment, Promise, SepaMandate
from relance.tenancy.actors import Actor


@dataclass(frozen=True, slots=True)
class CaseArrangements:
    plan: PaymentPlan | None  # the open (proposed or active) plan, else the latest one
    instalments: list[PlanInstalment]
    mandate: SepaMandate | None
    promise: Promise | None  # the pending promise


def case_arrangements(*, actor: Actor, case_id: int) -> CaseArrangements:
    """The case's current plan with its instalments and mandate, and its pending promise."""
    case: Case = case_get_for_actor(actor=actor, case_id=case_id)
    plans = PaymentPlan.objects.filter(case=case)
    plan = plans.filter(status__in=["proposed", "active"]).first() or plans.order_by("-created_at", "-pk").first()
    return CaseArrangements(
        plan=plan,
        instalments=list(plan.instalments.order_by("number")) if plan else [],
        mandate=SepaMandate.objects.filter(plan=plan).first() if plan else None,
        promise=Promise.objects.filter(case=case, status=Promise.Status.PENDING).first(),
    )


def proposals_for_agency(*, actor: Actor) -> tuple[list[PaymentPlan], list[HardshipStatement]]:
    """Plans awaiting an adviser and hardship statements to review, for the actor's agency (staff only)."""
    if not actor.is_staff or actor.agency_id is None:
        return [], []
    plans = (
        PaymentPlan.objects.filter(status=PaymentPlan.Status.PROPOSED, case__creditor__agency_id=actor.agency_id)
        .select_related("case__creditor", "case__debtor")
        .order_by("created_at", "pk")
    )
    statements = (
        HardshipStatement.objects.filter(
            status=HardshipStatement.Status.TO_REVIEW, case__creditor__agency_id=actor.agency_id
        )
        .select_related("case__creditor", "case__debtor")
        .order_by("created_at", "pk")
    )
    return list(plans[:200]), list(statements[:200])
