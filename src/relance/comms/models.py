"""The outbox: one Action per contact attempt (invariant 3).

An Action is written in the same transaction as the case change that decided it; dispatchers drain
``queued`` actions afterwards, using the action id as the idempotency key towards providers. The
exact content a debtor received is stored (subject, bodies, SHA-256).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from relance.cases.models import Case
from relance.claims.models import Debtor
from relance.core.models import TimeStampedModel


class Action(TimeStampedModel):
    """One contact attempt through one channel."""

    # Not indexed: no query filters or orders actions by creation time (the engine writes one per contact).
    created_at = models.DateTimeField(auto_now_add=True)

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", "SMS"
        LETTER = "letter", _("Letter")
        CALL = "call", _("Call task")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        # E-mail only: the whole message is with the SMTP server, its final "." not yet acknowledged
        # (see comms.mail): a dispatcher that dies now leaves a delivery nobody can confirm.
        HANDOVER = "handover", _("Handed to the mail server")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        BOUNCED = "bounced", _("Bounced")
        FAILED = "failed", _("Failed")
        BLOCKED = "blocked", _("Blocked by policy")

    # No index of its own: the unique (case, step_key) index below leads with the case and holds every
    # action (a step-less one with a NULL key), so it serves every query by case as well.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="actions", db_index=False)
    # Denormalised so contact pressure is counted per debtor across creditors in one index scan.
    # No index of its own: the (debtor, sent_at) index below serves every query by debtor.
    debtor = models.ForeignKey(Debtor, on_delete=models.PROTECT, related_name="actions", db_index=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    template = models.CharField(max_length=60)
    # The strategy step this contact carries out; NULL for a contact decided outside a strategy's
    # steps (NULLs never collide in the unique index, so such a case may have any number of them).
    step_key = models.CharField(max_length=120, null=True, blank=True, default=None)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    scheduled_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    to_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    status_reason = models.CharField(max_length=300, blank=True)
    # The dispatcher run that claimed this action (``sending``); only that run may hand it over.
    lease = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            # Never decide the same strategy step twice for a case, whatever runs concurrently.
            models.UniqueConstraint(fields=["case", "step_key"], name="action_unique_step")
        ]
        indexes = [
            models.Index(fields=["status", "scheduled_at"]),
            models.Index(fields=["debtor", "sent_at"]),
            # Held by a dispatcher (sending, handover, sent with its audit event to come): what
            # ``outbox_recover`` looks at, a handful of rows among millions.
            models.Index(fields=["updated_at"], condition=~Q(lease=""), name="action_leased"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.template} for {self.case_id} ({self.status})"


class ActionEvent(models.Model):
    """What a provider reported about a sent action afterwards (ESP webhooks: delivered, bounced…)."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20)  # anymail's event_type: delivered, bounced, opened, complained…
    provider = models.CharField(max_length=30)
    event_id = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    detail = models.CharField(max_length=300, blank=True)  # the provider's reason/description, never PII

    class Meta:
        constraints = [
            # Providers retry webhooks: the same event is recorded once.
            models.UniqueConstraint(
                fields=["provider", "event_id"], condition=~Q(event_id=""), name="actionevent_unique_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for action {self.action_id}"


class CallTask(TimeStampedModel):
    """A phone call an agent should make: one per ``call`` action, in the agents' queue (issue 4).

    Priority orders the queue (highest first): the amount at stake in euros, doubled when the case is
    in its last weeks; the back office claims a task for one agent at a time.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("To call")
        CLAIMED = "claimed", _("Being called")
        DONE = "done", _("Done")

    action = models.OneToOneField(Action, on_delete=models.CASCADE, related_name="call_task")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="call_tasks")
    priority = models.IntegerField(default=0, db_index=True)
    due_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    assignee = models.ForeignKey(
        "tenancy.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="call_tasks"
    )
    outcome = models.CharField(max_length=60, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "-priority", "due_at"])]

    def __str__(self) -> str:
        return f"call {self.case_id} ({self.status})"


class MessageTemplate(TimeStampedModel):
    """A message template edited in the back office: channel × name × language × creditor override.

    It takes precedence over the template shipped in ``comms/templates`` with the same channel, name
    and language; a creditor's row takes precedence over the agency-wide one (``creditor`` null).
    Saved only through ``comms.templates.template_save``, which lints it (FR-COL-15/17) and renders it
    against a sample case first.
    """

    class Language(models.TextChoices):
        FR = "fr", "Français"
        EN = "en", "English"

    channel = models.CharField(max_length=10, choices=Action.Channel.choices)
    name = models.CharField(max_length=40)
    language = models.CharField(max_length=2, choices=Language.choices)
    creditor = models.ForeignKey(
        "tenancy.Creditor", on_delete=models.CASCADE, null=True, blank=True, related_name="message_templates"
    )
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "name", "language", "creditor"],
                condition=Q(creditor__isnull=False),
                name="message_template_unique_creditor",
            ),
            models.UniqueConstraint(
                fields=["channel", "name", "language"],
                condition=Q(creditor__isnull=True),
                name="message_template_unique_agency",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}/{self.name}.{self.language}" + (f" ({self.creditor_id})" if self.creditor_id else "")
