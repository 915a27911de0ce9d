"""Outbox writes and the channel dispatchers.

``action_queue`` is called by the engine inside its transaction (invariant 3). ``outbox_dispatch``
claims queued actions, checks the contact policy again (invariant 4), renders, sends through Django's
e-mail backend and records the result. A crash after claiming leaves the action in ``sending``;
``outbox_recover`` puts such actions back after a timeout, and the Message-ID carries the action id
so a provider or the debtor's mailbox can de-duplicate a resend.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.utils import timezone

from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.cases.status import CHASEABLE, Status
from relance.claims.models import Debtor
from relance.comms.channels import SendContext, sender_for
from relance.comms.models import Action
from relance.comms.policy import ContactPolicy, check_contact
from relance.tenancy.actors import Actor

log = logging.getLogger("relance.comms")

# Statuses only a provider's receipt sets after a send (delivered, or failed/bounced downstream).
RECEIPT_STATUSES = (Action.Status.DELIVERED, Action.Status.FAILED, Action.Status.BOUNCED)


def debtor_recent_contacts(*, debtor_id: int, now: datetime, exclude_action_id: int | None = None) -> list[datetime]:
    """Times of the debtor's contacts in the last 7 days, across creditors (sent or still queued)."""
    since = now - timedelta(days=7)
    mine = Action.objects.filter(debtor_id=debtor_id)
    if exclude_action_id is not None:
        mine = mine.exclude(pk=exclude_action_id)
    sent = mine.filter(sent_at__gt=since, sent_at__lte=now).values_list("sent_at", flat=True)
    pending = mine.filter(status__in=[Action.Status.QUEUED, Action.Status.SENDING]).values_list(
        "scheduled_at", flat=True
    )
    return [t for t in [*sent, *pending] if t is not None]


def action_queue(
    *, case: Case, channel: str, template: str, step_key: str, scheduled_at: datetime, actor: Actor
) -> Action:
    """Write one outbox row; must run inside the transaction of the decision (invariant 3)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("action_queue must run inside the deciding transaction")
    action = Action.objects.create(
        case=case,
        debtor_id=case.debtor_id,
        channel=channel,
        template=template,
        step_key=step_key,
        scheduled_at=scheduled_at,
    )
    audit_record(
        actor=actor,
        verb="action.queued",
        subject=case,
        data={"action": action.pk, "channel": channel, "template": template, "step": step_key},
    )
    return action


@dataclass
class DispatchReport:
    sent: Counter[str] = field(default_factory=Counter)
    blocked: int = 0
    deferred: int = 0
    failed: int = 0


def _claim_batch(now: datetime, limit: int) -> list[int]:
    with transaction.atomic():
        qs = Action.objects.filter(status=Action.Status.QUEUED, scheduled_at__lte=now).order_by("scheduled_at", "pk")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("pk", flat=True)[:limit])
        Action.objects.filter(pk__in=ids).update(status=Action.Status.SENDING, updated_at=now)
    return ids


def _block_reason(action: Action, debtor: Debtor, case: Case) -> str:
    if Status(case.status) not in CHASEABLE:
        return f"case is {case.status}"
    sender = sender_for(action.channel)
    if sender is None:
        return f"no dispatcher for channel {action.channel}"
    return sender.blocked(action, debtor)


def outbox_dispatch(
    *,
    now: datetime | None = None,
    limit: int = 500,
    policy: ContactPolicy | None = None,
    email_connection: BaseEmailBackend | None = None,
    actor: Actor | None = None,
) -> DispatchReport:
    """Send every queued action due at ``now`` (one batch of at most ``limit``)."""
    now = now or timezone.now()
    policy = policy or ContactPolicy()
    actor = actor or Actor.system("dispatcher")
    report = DispatchReport()
    ids = _claim_batch(now, limit)
    if not ids:
        return report
    context = SendContext(now=now, resources={"email_connection": email_connection} if email_connection else {})
    for action in (
        Action.objects.filter(pk__in=ids).select_related("case__creditor__agency", "case__debtor").order_by("pk")
    ):
        case, debtor = action.case, action.case.debtor
        reason = _block_reason(action, debtor, case)
        if reason:
            _finish(action, Action.Status.BLOCKED, reason=reason, actor=actor)
            report.blocked += 1
            continue
        others = debtor_recent_contacts(debtor_id=debtor.pk, now=now, exclude_action_id=action.pk)
        verdict = check_contact(
            policy=policy, channel=action.channel, now=now, debtor_timezone=debtor.timezone, recent_contacts=others
        )
        if not verdict.allowed:
            if verdict.retry_at is None:
                _finish(action, Action.Status.BLOCKED, reason=verdict.reason, actor=actor)
                report.blocked += 1
            else:
                Action.objects.filter(pk=action.pk).update(
                    status=Action.Status.QUEUED, scheduled_at=verdict.retry_at, status_reason=verdict.reason
                )
                report.deferred += 1
            continue
        sender = sender_for(action.channel)
        if sender is None:  # checked by _block_reason; kept for type narrowing
            continue
        try:
            sent = sender.send(action, context)
        except Exception as exc:
            log.warning("action %s failed: %s", action.pk, exc)
            _finish(action, Action.Status.FAILED, reason=str(exc)[:300], actor=actor)
            report.failed += 1
            continue
        with transaction.atomic():
            what_left = {
                "sent_at": now,
                "attempts": action.attempts + 1,
                "to_address": sent.to_address,
                "subject": sent.subject,
                "body_text": sent.body_text,
                "body_html": sent.body_html,
                "content_hash": sent.content_hash,
                "provider_message_id": sent.provider_message_id,
            }
            mine = Action.objects.filter(pk=action.pk)
            # A provider's delivery receipt can beat this write (SMS webhooks): keep its verdict then.
            if not mine.exclude(status__in=RECEIPT_STATUSES).update(status=Action.Status.SENT, **what_left):
                mine.update(**what_left)
            Case.objects.filter(pk=case.pk).update(last_contact_at=now)
            audit_record(
                actor=actor,
                verb="action.sent",
                subject=case,
                data={"action": action.pk, "channel": action.channel, "hash": sent.content_hash, **sent.meta},
            )
        report.sent[action.channel] += 1
    return report


def _finish(action: Action, status: str, *, reason: str, actor: Actor) -> None:
    with transaction.atomic():
        Action.objects.filter(pk=action.pk).update(status=status, status_reason=reason)
        audit_record(
            actor=actor,
            verb=f"action.{status}",
            subject=action.case,
            data={"action": action.pk, "channel": action.channel, "reason": reason},
        )


def outbox_recover(*, now: datetime | None = None, stale_after: timedelta = timedelta(minutes=15)) -> int:
    """Return actions stuck in ``sending`` (a crashed dispatcher) to the queue."""
    now = now or timezone.now()
    return Action.objects.filter(status=Action.Status.SENDING, updated_at__lt=now - stale_after).update(
        status=Action.Status.QUEUED, status_reason="recovered after dispatcher crash"
    )


# Provider delivery statuses that settle an SMS action; anything else (queued, sent…) changes nothing.
SMS_RECEIPT_STATUSES = {
    "delivered": Action.Status.DELIVERED,
    "undelivered": Action.Status.FAILED,
    "failed": Action.Status.FAILED,
}


def sms_opt_out_record(*, phone: str, provider: str, message: str, actor: Actor) -> int:
    """An inbound STOP: every debtor with this number gets no more SMS (audited); how many changed.

    L121-7 3° C. conso (FR-COL-16): contacting someone who asked us to stop is an unwanted
    solicitation. Queued SMS actions are then blocked by the dispatcher's last check.
    """
    if not phone:
        return 0
    with transaction.atomic():
        debtors = list(Debtor.objects.select_for_update().filter(phone=phone, sms_opt_out=False).order_by("pk"))
        for debtor in debtors:
            Debtor.objects.filter(pk=debtor.pk).update(sms_opt_out=True, updated_at=timezone.now())
            audit_record(
                actor=actor,
                verb="debtor.sms_opt_out",
                subject=debtor,
                data={"provider": provider, "message": message[:40]},
            )
    return len(debtors)


def sms_receipt_record(
    *, action_id: int, provider: str, provider_message_id: str, status: str, error_code: str, actor: Actor
) -> bool:
    """A delivery receipt: the SMS action becomes delivered or failed, once (a replay changes nothing)."""
    target = SMS_RECEIPT_STATUSES.get(status)
    if target is None:
        return False
    with transaction.atomic():
        action = (
            Action.objects.select_for_update()
            .select_related("case")
            .filter(pk=action_id, channel=Action.Channel.SMS)
            .first()
        )
        if action is None:
            return False
        if provider_message_id and action.provider_message_id not in ("", provider_message_id):
            return False  # a receipt for another message than the one this action sent
        if action.status not in (Action.Status.SENDING, Action.Status.SENT):
            return False  # already settled (or never sent): receipts are idempotent
        reason = "" if target == Action.Status.DELIVERED else f"{provider}: {status}"
        if reason and error_code:
            reason += f" (error {error_code})"
        Action.objects.filter(pk=action.pk).update(status=target, status_reason=reason)
        audit_record(
            actor=actor,
            verb=f"action.{target}",
            subject=action.case,
            data={
                "action": action.pk,
                "channel": action.channel,
                "provider": provider,
                "status": status,
                "error_code": error_code,
            },
        )
    return True
