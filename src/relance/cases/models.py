"""Cases (dossiers): one debtor × one creditor, holding one or more claims."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils.translation import gettext_lazy as _

from relance.cases.status import TERMINAL, Status
from relance.claims.models import Claim, Debtor
from relance.core.models import TimeStampedModel
from relance.tenancy.models import Creditor

if TYPE_CHECKING:
    from relance.tenancy.actors import Actor


STATUS_LABELS = {
    Status.NEW: _("New"),
    Status.ACTIVE: _("Active"),
    Status.PROMISED: _("Promised"),
    Status.IN_PLAN: _("In plan"),
    Status.DISPUTED: _("Disputed"),
    Status.ON_HOLD: _("On hold"),
    Status.PAID: _("Paid"),
    Status.SETTLED: _("Settled"),
    Status.RETURNED: _("Returned to creditor"),
    Status.WRITTEN_OFF: _("Written off"),
    Status.CLOSED: _("Closed"),
}


class CaseQuerySet(models.QuerySet["Case"]):
    def visible_to(self, actor: Actor) -> CaseQuerySet:
        """The one choke point for case reads (invariant 6)."""
        if actor.is_staff:
            return self
        if actor.kind in {"creditor", "api"} and actor.creditor_id is not None:
            return self.filter(creditor_id=actor.creditor_id)
        if actor.kind == "debtor":
            return self.filter(pk=int(actor.id.removeprefix("case-")))
        return self.none()


class Case(TimeStampedModel):
    """A collection file with its status machine and its place in a strategy."""

    # Not indexed: no query filters or orders cases by creation time (lists use placed_at), and every
    # engine tick rewrites each due case, so each index costs one entry per case and tick.
    created_at = models.DateTimeField(auto_now_add=True)
    creditor = models.ForeignKey(Creditor, on_delete=models.PROTECT, related_name="cases")
    debtor = models.ForeignKey(Debtor, on_delete=models.PROTECT, related_name="cases")
    reference = models.CharField(max_length=20, unique=True)
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(
        max_length=20,
        choices=[(s.value, STATUS_LABELS[s]) for s in Status],
        default=Status.NEW.value,
        # No index of its own: the (status, next_action_at) index below serves every query on status
        # (docs/decisions/0002-engine-one-event-per-case.md lists the queries and their plans).
    )
    # The strategy document this case follows, by key and version (a case keeps its version).
    strategy_key = models.CharField(max_length=60, blank=True)
    strategy_version = models.PositiveIntegerField(default=1)
    variant = models.CharField(max_length=20, blank=True)
    step = models.PositiveIntegerField(default=0, help_text="Index of the next strategy step")
    # When the case reached its current step (``previous + Nd`` delays); null until the engine first
    # looks at it, which is when it is routed to a strategy and given its A/B/n variant.
    step_at = models.DateTimeField(null=True, blank=True)
    # Audit sequence number up to which the engine has seen this case's events (strategy reactions).
    event_seq = models.BigIntegerField(default=0)
    placed_at = models.DateTimeField()
    next_action_at = models.DateTimeField(null=True, blank=True)  # indexed with status (Meta.indexes)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    promise_date = models.DateField(null=True, blank=True)
    promise_amount_minor = models.BigIntegerField(null=True, blank=True)
    hold_until = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Mostly empty: indexed only where set (``Meta.indexes``), so the engine's updates (never HOT) add no
    # entry for the NULLs; every read of it (``assignee = X``, ``IN``, deleting a user's SET NULL) implies
    # NOT NULL (docs/decisions/0005-engine5-lighter-indexes.md).
    assignee = models.ForeignKey(
        "tenancy.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="cases", db_index=False
    )
    segment = models.CharField(max_length=20, blank=True)
    score = models.IntegerField(null=True, blank=True)
    portal_failed_attempts = models.PositiveSmallIntegerField(default=0)
    claims: models.ManyToManyField[Claim, CaseClaim] = models.ManyToManyField(
        Claim, through="CaseClaim", related_name="cases"
    )

    objects = CaseQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_action_at"]),
            models.Index(fields=["assignee"], name="case_assignee_set", condition=models.Q(assignee__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_closed(self) -> bool:
        return Status(self.status) in TERMINAL


class CaseClaim(models.Model):
    """A claim belongs to exactly one case."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE)
    claim = models.OneToOneField(Claim, on_delete=models.PROTECT, related_name="case_link")

    def __str__(self) -> str:
        return f"{self.case_id}:{self.claim_id}"


class WorkItem(TimeStampedModel):
    """One thing a person must look at, in the agents' work queues (issue 6).

    Every source (a call task, a plan proposal outside policy, a dispute waiting for the creditor, an
    unmatched bank entry, a hardship review, a returned letter, a discount above an agent's authority)
    opens one item, idempotently on ``(kind, source)``. An item is claimed by one agent at a time; a claim
    lapses after ``CLAIM_LEASE`` so that work left behind goes back to the queue.
    """

    class Kind(models.TextChoices):
        CALL = "call", _("Call tasks")
        PLAN_PROPOSAL = "plan_proposal", _("Plan proposals outside policy")
        DISPUTE = "dispute", _("Disputes waiting for the creditor")
        UNMATCHED_PAYMENT = "unmatched_payment", _("Unmatched payments")
        HARDSHIP = "hardship", _("Hardship reviews")
        RETURNED_MAIL = "returned_mail", _("Returned mail")
        DISCOUNT_APPROVAL = "discount_approval", _("Discounts awaiting approval")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    agency = models.ForeignKey("tenancy.Agency", on_delete=models.PROTECT, related_name="work_items")
    creditor = models.ForeignKey(Creditor, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, null=True, blank=True, related_name="work_items")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=120, help_text="What opened it, e.g. calltask:42 or bank:ENTRY-REF")
    title = models.CharField(max_length=200)
    data = models.JSONField(default=dict, blank=True)
    amount_minor = models.BigIntegerField(default=0, help_text="Amount at stake, for the priority")
    score = models.IntegerField(null=True, blank=True, help_text="Filled by scoring (propensity to pay)")
    priority = models.IntegerField(default=0)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    claimed_by = models.ForeignKey(
        "tenancy.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="claimed_work"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.CharField(max_length=100, blank=True, help_text="Actor label, as in the audit trail")
    outcome = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "source"], name="work_item_unique_source")]
        indexes = [models.Index(fields=["agency", "kind", "status", "-priority", "due_at"])]

    def __str__(self) -> str:
        return f"{self.kind}:{self.source} ({self.status})"
