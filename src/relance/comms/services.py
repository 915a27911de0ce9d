"""Outbox writes and the channel dispatchers.

``action_queue`` is called by the engine inside its transaction (invariant 3). ``outbox_dispatch``
claims queued actions, checks the contact policy again (invariant 4), renders, sends through Django's
e-mail backend and records the result. A crash after claiming leaves the action in ``sending``;
``outbox_recover`` puts such actions back after a timeout, and the Message-ID carries the action id
so a provider or the debtor's mailbox can de-duplicate a resend.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from relance.audit.services import PendingEvent, audit_record, audit_record_many
from relance.cases.models import Case
from relance.cases.status import CHASEABLE, Status
from relance.claims.models import Debtor
from relance.comms.batch_sql import among
from relance.comms.channels import SendContext, Sent, sender_for
from relance.comms.channels.email import EMAIL_BATCH_FIELDS
from relance.comms.mail import HandoverAborted
from relance.comms.models import Action
from relance.comms.policy import ContactPolicy, check_contact
from relance.comms.render import render_prefetch
from relance.core.sql import int_array
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

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


def debtors_recent_contacts(*, debtor_ids: Sequence[int], now: datetime) -> dict[int, list[datetime]]:
    """``debtor_recent_contacts`` for many debtors in one query (the engine's batches)."""
    since = now - timedelta(days=7)
    pending = [Action.Status.QUEUED, Action.Status.SENDING]
    result: dict[int, list[datetime]] = {pk: [] for pk in debtor_ids}
    if not debtor_ids:
        return result
    rows: Any
    if connection.vendor == "postgresql":
        # One index lookup per debtor on (debtor_id, sent_at), the debtor ids as one array parameter
        # (server-side binding; prepared: parsed and planned once per connection, like the engine's other
        # batch reads). The ids go as one text literal (``{1,2,3}``, one ``join`` in C) rather than a list
        # psycopg dumps element by element in Python. The ORM's one filter over the whole batch let the
        # planner OR in the (status, scheduled_at) index: every queued action of every debtor read and
        # thrown away per batch, a cost growing with the outbox (a tick's own actions).
        ids = int_array(sorted(set(debtor_ids)))
        with psycopg.Cursor(connection.connection) as cursor:
            params = {"ids": ids, "since": since, "now": now, "pending": [p.value for p in pending]}
            cursor.execute(_RECENT_SQL, params, prepare=True)
            rows = cursor.fetchall()
    else:
        rows = (
            Action.objects.filter(debtor_id__in=debtor_ids)
            .filter(Q(sent_at__gt=since, sent_at__lte=now) | Q(status__in=pending))
            .values_list("debtor_id", "status", "sent_at", "scheduled_at")
        )
    for debtor_id, status, sent_at, scheduled_at in rows:
        if sent_at is not None and since < sent_at <= now:
            result[debtor_id].append(sent_at)
        if status in pending and scheduled_at is not None:
            result[debtor_id].append(scheduled_at)
    return result


# The ORM's filter, applied to each debtor's own actions: the only index condition is the debtor
# (``OFFSET 0`` keeps the per-debtor lookup, not flattened into a join that stale statistics could turn
# into a scan; the ``CASE`` is the ORM's ``OR`` — same rows, NULL ``sent_at`` included — in a form the
# planner cannot split into a bitmap ``OR`` with the status index).
_RECENT_SQL = f"""
SELECT d.id, a.status, a.sent_at, a.scheduled_at
FROM unnest(%(ids)s::bigint[]) AS d(id)
CROSS JOIN LATERAL (
    SELECT status, sent_at, scheduled_at FROM {Action._meta.db_table}
    WHERE debtor_id = d.id
      AND CASE WHEN sent_at > %(since)s AND sent_at <= %(now)s THEN true ELSE status = ANY(%(pending)s::text[]) END
    OFFSET 0
) AS a
"""  # noqa: S608 - our own table name


def action_queue(
    *, case: Case, channel: str, template: str, step_key: str | None, scheduled_at: datetime, actor: Actor
) -> Action:
    """Write one outbox row; must run inside the transaction of the decision (invariant 3).

    ``step_key`` names the strategy step the contact carries out (unique per case); ``None`` or ``""``
    for none (stored as NULL).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("action_queue must run inside the deciding transaction")
    action = Action.objects.create(
        case=case,
        debtor_id=case.debtor_id,
        channel=channel,
        template=template,
        step_key=step_key or None,
        scheduled_at=scheduled_at,
    )
    audit_record(
        actor=actor,
        verb="action.queued",
        subject=case,
        data={"action": action.pk, "channel": channel, "template": template, "step": step_key or ""},
    )
    return action


@dataclass
class DispatchReport:
    sent: Counter[str] = field(default_factory=Counter)
    blocked: int = 0
    deferred: int = 0
    failed: int = 0


def _claim_batch(now: datetime, limit: int, lease: str) -> list[int]:
    with transaction.atomic():
        qs = Action.objects.filter(status=Action.Status.QUEUED, scheduled_at__lte=now).order_by("scheduled_at", "pk")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("pk", flat=True)[:limit])
        claimed = Action.objects.filter(among(Action, "id", ids))
        claimed.update(status=Action.Status.SENDING, lease=lease, updated_at=now)
    return ids


def _block_reason(action: Action, debtor: Debtor, case: Case) -> str:
    if Status(case.status) not in CHASEABLE:
        return f"case is {case.status}"
    sender = sender_for(action.channel)
    if sender is None:
        return f"no dispatcher for channel {action.channel}"
    return sender.blocked(action, debtor)


def _sent_fields(action: Action, sent: Sent, now: datetime) -> dict[str, object]:
    return {
        "sent_at": now,
        "attempts": action.attempts + 1,
        "to_address": sent.to_address,
        "subject": sent.subject,
        "body_text": sent.body_text,
        "body_html": sent.body_html,
        "content_hash": sent.content_hash,
        "provider_message_id": sent.provider_message_id,
    }


def _sent_event(action: Action, sent: Sent) -> PendingEvent:
    return PendingEvent(
        verb="action.sent",
        subject_type=Case._meta.label_lower,
        subject_id=action.case_id,
        data={"action": action.pk, "channel": action.channel, "hash": sent.content_hash, **sent.meta},
    )


def _audit_sent(action: Action, sent: Sent, actor: Actor) -> None:
    audit_record(
        actor=actor,
        verb="action.sent",
        subject=action.case,
        data={"action": action.pk, "channel": action.channel, "hash": sent.content_hash, **sent.meta},
    )


# ``_sent_fields``' names, which are also their columns (plain fields of comms_action), in the order
# of ``_HANDOVER_SQL``'s SET list.
_SENT_COLUMNS = (
    "sent_at",
    "attempts",
    "to_address",
    "subject",
    "body_text",
    "body_html",
    "content_hash",
    "provider_message_id",
)
_HANDOVER_SQL = (
    "WITH confirmed AS ("
    "UPDATE comms_action SET status = %s WHERE id = ANY(%s::bigint[]) AND status = %s AND lease = %s) "
    "UPDATE comms_action SET status = %s, sent_at = %s, attempts = %s, to_address = %s, subject = %s,"
    " body_text = %s, body_html = %s, content_hash = %s, provider_message_id = %s "
    "WHERE id = %s AND status = %s AND lease = %s RETURNING id"
)


class _Handover:
    """The dispatcher run's side of ``comms.mail``: record the hand-over, confirm what the server took.

    Per message, **one** statement committed before the final ".": the action becomes ``handover``
    (conditional on the lease) with what is being sent — and the previous message's ``250`` rides on
    it (``handover`` → ``sent``). So a crash leaves at most one message whose fate is unknown (recovery
    marks it failed with that reason: delivered once or not at all, never twice).

    The rest of what a send writes — the ``action.sent`` audit event with the content's hash, the
    case's ``last_contact_at`` — is written for ``FLUSH_EVERY`` messages at once, in one transaction
    that also clears their lease: a sent e-mail whose lease is still set has its audit event to come.
    ``outbox_recover`` writes it for a dispatcher that died before (so every e-mail that left is
    audited, at the latest by the next dispatcher).
    """

    FLUSH_EVERY = 500  # the dispatch batch (``limit``): one audit append (COPY on PostgreSQL) per batch

    def __init__(self, *, lease: str, now: datetime, actor: Actor) -> None:
        self.lease, self.now, self.actor = lease, now, actor
        self.confirmed: list[int] = []  # the server said 250; still ``handover`` until the next statement
        self.unaudited: list[tuple[Action, Sent]] = []  # sent, audit event and lease clearing to come

    def __call__(self, action: Action, sent: Sent) -> None:
        fields = _sent_fields(action, sent, self.now)
        if connection.vendor == "postgresql":
            taken = self._handover_pg(action, fields)
        else:
            with transaction.atomic():
                self._confirm()
                taken = bool(
                    Action.objects.filter(pk=action.pk, status=Action.Status.SENDING, lease=self.lease).update(
                        status=Action.Status.HANDOVER, **fields
                    )
                )
        if not taken:  # recovered and claimed by another run meanwhile: that run sends it
            raise HandoverAborted(f"action {action.pk} is no longer leased to this dispatcher")

    def _handover_pg(self, action: Action, fields: dict[str, object]) -> bool:
        """The hand-over and the previous confirmations in one autocommitted statement (one round trip)."""
        params: list[Any] = [Action.Status.SENT, self.confirmed, Action.Status.HANDOVER, self.lease]
        params += [Action.Status.HANDOVER, *(fields[name] for name in _SENT_COLUMNS)]
        params += [action.pk, Action.Status.SENDING, self.lease]
        # Outside the caller's atomic block this is autocommitted: durable before the final ".".
        # A server-side-binding cursor and a prepared statement: parsed and planned once per connection,
        # the contents travel as parameters (Django's cursors bind on the client and quote every body).
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_HANDOVER_SQL, params, prepare=True)
            taken = cursor.fetchone() is not None
        self.confirmed = []
        return taken

    def confirm(self, action: Action, sent: Sent) -> None:
        self.confirmed.append(action.pk)
        self.unaudited.append((action, sent))
        if len(self.unaudited) >= self.FLUSH_EVERY:
            self.flush()

    def _confirm(self) -> None:
        if self.confirmed:
            confirmed = Action.objects.filter(among(Action, "id", self.confirmed))
            confirmed.filter(status=Action.Status.HANDOVER, lease=self.lease).update(status=Action.Status.SENT)
            self.confirmed = []

    def flush(self) -> None:
        """Confirm the last ``250`` and write the audit events of the messages sent since the last flush."""
        if not self.confirmed and not self.unaudited:
            return
        with transaction.atomic():
            self._confirm()
            ids = [action.pk for action, _ in self.unaudited]
            # Still ours: a recovery that took over (lease expired) has written them itself.
            mine = set(
                Action.objects.select_for_update()
                .filter(among(Action, "id", ids), lease=self.lease)
                .values_list("pk", flat=True)
            )
            if mine:
                Action.objects.filter(among(Action, "id", mine)).update(lease="")
                cases = {a.case_id for a, _ in self.unaudited if a.pk in mine}
                Case.objects.filter(among(Case, "id", cases)).update(last_contact_at=self.now)
                audit_record_many(
                    actor=self.actor,
                    events=[_sent_event(action, sent) for action, sent in self.unaudited if action.pk in mine],
                )
            self.unaudited = []


class _ContactPressure:
    """The batch's debtors' recent and pending contacts (``debtor_recent_contacts``), read in one query
    and kept current as the batch's own actions are sent, deferred or blocked."""

    def __init__(self, *, debtor_ids: set[int], now: datetime) -> None:
        since = now - timedelta(days=7)
        pending = (Action.Status.QUEUED, Action.Status.SENDING)
        self.now = now
        self.times: dict[int, dict[int, list[datetime]]] = {pk: {} for pk in debtor_ids}
        rows = Action.objects.filter(among(Action, "debtor", debtor_ids)).filter(
            Q(sent_at__gt=since, sent_at__lte=now) | Q(status__in=pending)
        )
        for pk, debtor_id, status, sent_at, scheduled_at in rows.values_list(
            "pk", "debtor_id", "status", "sent_at", "scheduled_at"
        ):
            mine = self.times[debtor_id].setdefault(pk, [])
            if sent_at is not None and since < sent_at <= now:
                mine.append(sent_at)
            if status in pending and scheduled_at is not None:
                mine.append(scheduled_at)

    def others(self, action_id: int, debtor_id: int) -> list[datetime]:
        return [t for pk, times in self.times[debtor_id].items() if pk != action_id for t in times]

    def settled(self, action_id: int, debtor_id: int, *, contacted: bool) -> None:
        """What one action of the batch counts for now: its send, or nothing (blocked, deferred to a later
        slot — which the policy's rolling week does not count before it comes — or failed)."""
        self.times[debtor_id][action_id] = [self.now] if contacted else []


def outbox_dispatch(
    *,
    now: datetime | None = None,
    limit: int = 500,
    policy: ContactPolicy | None = None,
    email_connection: BaseEmailBackend | None = None,
    actor: Actor | None = None,
) -> DispatchReport:
    """Send every queued action due at ``now`` (one batch of at most ``limit``).

    E-mail goes through one SMTP connection for the whole batch; with a backend that has a hand-over
    point (``comms.mail``) each message reaches the server at most once, whatever kills this process.
    """
    now = now or timezone.now()
    policy = policy or ContactPolicy()
    actor = actor or Actor.system("dispatcher")
    report = DispatchReport()
    lease = uuid.uuid4().hex
    ids = _claim_batch(now, limit, lease)
    if not ids:
        return report
    handover = _Handover(lease=lease, now=now, actor=actor)
    resources: dict[str, object] = {"handover": handover}
    if email_connection is not None:
        resources["email_connection"] = email_connection
    context = SendContext(now=now, resources=resources)
    actions = _claimed_actions(ids)
    pressure = context.resources["pressure"] = _ContactPressure(debtor_ids={a.debtor_id for a in actions}, now=now)
    emails = [a for a in actions if a.channel == Action.Channel.EMAIL]
    prefetch = render_prefetch(cases=[a.case for a in emails], templates={("email", a.template) for a in emails})
    context.resources["render_prefetch"] = prefetch
    try:
        for action in actions:
            contacted = _dispatch_one(action, now=now, policy=policy, context=context, actor=actor, report=report)
            pressure.settled(action.pk, action.debtor_id, contacted=contacted)
            if action.channel == Action.Channel.LETTER:
                prefetch.forget(action.case_id)  # its first letter may have just left (FR-COL-06)
    finally:
        handover.flush()
        opened = resources.get("email_connection_opened")
        if opened is not None:
            opened.close()  # type: ignore[attr-defined]
    return report


def _claimed_actions(ids: list[int]) -> list[Action]:
    """The claimed actions with their cases, debtors, creditors and agencies, in id order.

    E-mails (most of the outbox) are read with the columns the dispatcher and the e-mail path use
    (``EMAIL_BATCH_FIELDS``; any other field still loads when read) and share one instance per
    creditor; the other channels' senders get whole rows, as they always did.
    """
    claimed = Action.objects.filter(among(Action, "id", ids))
    emails = list(claimed.filter(channel=Action.Channel.EMAIL).select_related("case__debtor").only(*EMAIL_BATCH_FIELDS))
    creditors = Creditor.objects.select_related("agency").in_bulk({a.case.creditor_id for a in emails})
    cache_creditor = Case.creditor.field.set_cached_value
    for action in emails:
        cache_creditor(action.case, creditors[action.case.creditor_id])
    others = claimed.exclude(channel=Action.Channel.EMAIL).select_related("case__creditor__agency", "case__debtor")
    return sorted([*emails, *others], key=lambda a: a.pk)


def _dispatch_one(
    action: Action, *, now: datetime, policy: ContactPolicy, context: SendContext, actor: Actor, report: DispatchReport
) -> bool:
    """One claimed action; whether the debtor was (or may have been) contacted by it."""
    case, debtor = action.case, action.case.debtor
    reason = _block_reason(action, debtor, case)
    if reason:
        _finish(action, Action.Status.BLOCKED, reason=reason, actor=actor)
        report.blocked += 1
        return False
    others = context.resources["pressure"].others(action.pk, debtor.pk)
    verdict = check_contact(
        policy=policy, channel=action.channel, now=now, debtor_timezone=debtor.timezone, recent_contacts=others
    )
    if not verdict.allowed:
        if verdict.retry_at is None:
            _finish(action, Action.Status.BLOCKED, reason=verdict.reason, actor=actor)
            report.blocked += 1
        else:
            Action.objects.filter(pk=action.pk).update(
                status=Action.Status.QUEUED, scheduled_at=verdict.retry_at, status_reason=verdict.reason, lease=""
            )
            report.deferred += 1
        return False
    sender = sender_for(action.channel)
    if sender is None:  # checked by _block_reason; kept for type narrowing
        return False
    try:
        sent = sender.send(action, context)
    except HandoverAborted:
        return False  # another dispatcher owns it now
    except Exception as exc:
        log.warning("action %s failed: %s", action.pk, exc)
        handed = Action.objects.filter(pk=action.pk, status=Action.Status.HANDOVER).exists()
        why = str(exc)[:200]
        extra = {}
        if handed:  # the whole message was with the server when the reply went wrong
            why = f"mail server reply lost or refused after hand-over ({why}); delivered at most once"
            extra = {"hash": Action.objects.filter(pk=action.pk).values_list("content_hash", flat=True).get()}
        _finish(action, Action.Status.FAILED, reason=why, actor=actor, extra=extra)
        report.failed += 1
        return handed
    if sent.handed_over:
        context.resources["handover"].confirm(action, sent)
        report.sent[action.channel] += 1
        return True
    with transaction.atomic():
        what_left = _sent_fields(action, sent, now)
        mine = Action.objects.filter(pk=action.pk)
        # A provider's delivery receipt can beat this write (SMS webhooks): keep its verdict then.
        if not mine.exclude(status__in=RECEIPT_STATUSES).update(status=Action.Status.SENT, lease="", **what_left):
            mine.update(lease="", **what_left)
        Case.objects.filter(pk=case.pk).update(last_contact_at=now)
        _audit_sent(action, sent, actor)
    report.sent[action.channel] += 1
    return True


def _finish(action: Action, status: str, *, reason: str, actor: Actor, extra: dict[str, str] | None = None) -> None:
    with transaction.atomic():
        Action.objects.filter(pk=action.pk).update(status=status, status_reason=reason, lease="")
        audit_record(
            actor=actor,
            verb=f"action.{status}",
            subject=action.case,
            data={"action": action.pk, "channel": action.channel, "reason": reason, **(extra or {})},
        )


HANDOVER_UNKNOWN = (
    "the dispatcher stopped while the mail server was taking the message: delivered once or not at all"
    " (see the server log for Message-ID {mid}); not resent"
)


def outbox_recover(*, now: datetime | None = None, stale_after: timedelta | None = None) -> int:
    """Settle actions a crashed dispatcher left behind; how many.

    ``sending`` never reached a provider's hands in full: back to the queue (a live dispatcher that
    still holds it loses its lease and drops it). ``handover`` may have been delivered: marked failed
    with the reason, never sent a second time (see ``comms.mail``). An e-mail the server accepted whose
    dispatcher died before writing its audit event (lease still set) gets that ``action.sent`` event.
    """
    now = now or timezone.now()
    if stale_after is None:
        stale_after = timedelta(seconds=settings.RELANCE_OUTBOX_LEASE_SECONDS)
    stale = Action.objects.filter(updated_at__lte=now - stale_after)
    requeued = stale.filter(status=Action.Status.SENDING).update(
        status=Action.Status.QUEUED, lease="", status_reason="recovered after dispatcher crash"
    )
    unknown = 0
    dispatcher = Actor.system("dispatcher")
    for pk, mid, case_id, digest in stale.filter(status=Action.Status.HANDOVER).values_list(
        "pk", "provider_message_id", "case_id", "content_hash"
    ):
        with transaction.atomic():
            reason = HANDOVER_UNKNOWN.format(mid=mid)[:300]
            if Action.objects.filter(pk=pk, status=Action.Status.HANDOVER).update(
                status=Action.Status.FAILED, status_reason=reason, lease=""
            ):
                unknown += 1
                Case.objects.filter(pk=case_id).update(last_contact_at=now)  # it may have arrived
                audit_record(
                    actor=dispatcher,
                    verb="action.failed",
                    subject=Case.objects.get(pk=case_id),
                    data={"action": pk, "channel": "email", "reason": reason, "hash": digest},
                )
    unaudited = (
        stale.filter(channel=Action.Channel.EMAIL, sent_at__isnull=False)
        .exclude(lease="")
        .exclude(status__in=(Action.Status.QUEUED, Action.Status.SENDING, Action.Status.HANDOVER))
    )
    audited = 0
    for pk, lease, case_id, digest, sent_at in unaudited.values_list(
        "pk", "lease", "case_id", "content_hash", "sent_at"
    ):
        with transaction.atomic():
            if Action.objects.filter(pk=pk, lease=lease).update(lease=""):  # not written meanwhile
                audited += 1
                Case.objects.filter(pk=case_id).update(last_contact_at=sent_at)
                audit_record(
                    actor=dispatcher,
                    verb="action.sent",
                    subject=Case.objects.get(pk=case_id),
                    data={"action": pk, "channel": "email", "hash": digest},
                )
    return requeued + unknown + audited


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


def email_opt_out_record(*, debtor_id: int, source: str, actor: Actor) -> bool:
    """The debtor asked for no more e-mail (one-click unsubscribe, complaint): recorded once, audited.

    FR-COL-16: further e-mails would be unwanted solicitations; queued ones are blocked by the
    dispatcher's last check and the engine skips e-mail steps for this debtor.
    """
    with transaction.atomic():
        debtor = Debtor.objects.select_for_update().filter(pk=debtor_id).first()
        if debtor is None or debtor.email_opt_out:
            return False
        Debtor.objects.filter(pk=debtor.pk).update(email_opt_out=True, updated_at=timezone.now())
        audit_record(actor=actor, verb="debtor.email_opt_out", subject=debtor, data={"source": source})
    return True


# anymail's normalised event types -> what they do to the action (other types are recorded only).
EMAIL_EVENT_STATUSES = {
    "delivered": Action.Status.DELIVERED,
    "bounced": Action.Status.BOUNCED,
    "rejected": Action.Status.FAILED,
    "failed": Action.Status.FAILED,
}


def email_event_record(
    *,
    action_id: int | None,
    message_id: str,
    provider: str,
    kind: str,
    event_id: str,
    occurred_at: datetime,
    detail: str,
    actor: Actor,
) -> bool:
    """One ESP event (anymail-normalised) about an e-mail we sent; ``False`` when unknown or a replay.

    delivered/bounced/rejected settle the action (a ``failed`` hand-over that the ESP saw delivered
    becomes ``delivered``); a bounce marks the debtor's address bounced, a complaint or an ESP-side
    unsubscribe opts them out
    (contact quality); opens and clicks are kept as events.
    """
    from relance.comms.models import ActionEvent  # noqa: PLC0415 - kept next to its only writer

    with transaction.atomic():
        actions = Action.objects.select_for_update().filter(channel=Action.Channel.EMAIL)
        if action_id is not None:
            action = actions.filter(pk=action_id).first()
        elif message_id:
            action = actions.filter(provider_message_id=message_id).first()
        else:
            action = None
        if action is None:
            return False
        if event_id and ActionEvent.objects.filter(provider=provider, event_id=event_id).exists():
            return False
        ActionEvent.objects.create(
            action=action, kind=kind, provider=provider, event_id=event_id, occurred_at=occurred_at, detail=detail[:300]
        )
        target = EMAIL_EVENT_STATUSES.get(kind)
        settled = (Action.Status.DELIVERED, Action.Status.BOUNCED)
        if target is not None and action.status not in settled and action.status != target:
            reason = "" if target == Action.Status.DELIVERED else f"{provider}: {kind} {detail}".strip()[:300]
            Action.objects.filter(pk=action.pk).update(status=target, status_reason=reason)
        if kind == "bounced":
            Debtor.objects.filter(pk=action.debtor_id).update(email_bounced=True, updated_at=timezone.now())
        audit_record(
            actor=actor,
            verb=f"email.{kind}",
            subject=action.case,
            data={"action": action.pk, "provider": provider, "detail": detail[:120]},
        )
    if kind in ("complained", "unsubscribed"):
        email_opt_out_record(debtor_id=action.debtor_id, source=f"{provider} {kind}", actor=actor)
    return True
