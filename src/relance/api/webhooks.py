"""Webhooks out (issue 6): events derived from the audit chain, signed deliveries, retries, replay.

Every state change already leaves an audit event in the same transaction (invariant 7), so the audit
chain is the source of webhook events: ``webhook_events_collect`` reads it past a cursor and turns the
verbs of ``EVENT_RULES`` into events for the creditor concerned, with one pending delivery per
subscribed endpoint. ``webhook_deliver_due`` posts them (httpx), signed with HMAC-SHA256 over
``"<timestamp>.<body>"``; a failure is retried with exponential backoff and, after
``RELANCE_WEBHOOK_MAX_ATTEMPTS``, marked failed; any delivery can be replayed with the same event id.
Delivery is at least once: receivers de-duplicate on ``Relance-Event-Id``.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from relance.api.models import WebhookAttempt, WebhookCursor, WebhookDelivery, WebhookEndpoint, WebhookEvent
from relance.api.signing import HEADER, sign
from relance.audit.models import AuditEvent
from relance.audit.services import audit_record
from relance.cases.models import Case
from relance.core.errors import ValidationError
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

log = logging.getLogger("relance.webhooks")

# The event types a creditor can subscribe to, with the case statuses that raise them.
STATUS_EVENTS: dict[str, str] = {
    "paid": "case.paid",
    "settled": "case.settled",
    "disputed": "case.disputed",
    "promised": "case.promise",
    "in_plan": "case.plan",
    "closed": "case.closed",
}

Rule = Callable[[dict[str, Any]], str | None]

# audit verb -> the event type it raises (or None for this event's data). One table, easy to extend:
# a new audit verb becomes a webhook event by adding a line here and its type to EVENT_TYPES.
EVENT_RULES: dict[str, Rule] = {
    "case.opened": lambda data: "case.created",
    "case.status_changed": lambda data: STATUS_EVENTS.get(str(data.get("to"))),
    "payment.received": lambda data: "payment.received",
    "remittance.created": lambda data: "remittance.created",
    "remittance.paid": lambda data: "remittance.paid",
}

EVENT_TYPES: tuple[str, ...] = (
    "case.created",
    "case.paid",
    "case.settled",
    "case.disputed",
    "case.promise",
    "case.plan",
    "case.closed",
    "payment.received",
    "remittance.created",
    "remittance.paid",
)

CURSOR = "webhooks"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the visible prefix of generated secrets
BACKOFF_BASE = timedelta(minutes=1)
LEASE = timedelta(minutes=2)  # a claimed delivery is not claimed again before this (worker crash)


class WebhookUrlError(ValidationError):
    code = "webhook.url_invalid"
    title = "This URL cannot receive webhooks"


# ---------------------------------------------------------------- endpoints (writes from the UI)


@transaction.atomic
def webhook_endpoint_create(
    *, creditor: Creditor, url: str, event_types: Iterable[str], actor: Actor, description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint; returns it with its signing secret (shown once in the UI)."""
    types = sorted(set(event_types))
    unknown = set(types) - set(EVENT_TYPES)
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(sorted(unknown))}.", field="event_types")
    if not types:
        raise ValidationError("Choose at least one event type.", field="event_types")
    if settings.PRODUCTION and not url.startswith("https://"):
        raise WebhookUrlError("Webhook URLs must use https.", field="url")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        creditor=creditor, url=url, event_types=types, secret=secret, description=description
    )
    audit_record(
        actor=actor, verb="webhook.endpoint_created", subject=endpoint, data={"url": url, "event_types": types}
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_set_active(*, endpoint: WebhookEndpoint, active: bool, actor: Actor) -> WebhookEndpoint:
    if endpoint.active != active:
        endpoint.active = active
        endpoint.save(update_fields=["active", "updated_at"])
        audit_record(actor=actor, verb="webhook.endpoint_active_set", subject=endpoint, data={"active": active})
    return endpoint


@transaction.atomic
def webhook_delivery_replay(*, delivery: WebhookDelivery, actor: Actor, now: datetime | None = None) -> WebhookDelivery:
    """Send the same event (same ``event_id``) to the same endpoint again, as a new delivery."""
    replay = WebhookDelivery.objects.create(
        event=delivery.event,
        endpoint=delivery.endpoint,
        next_attempt_at=now or timezone.now(),
        replay_of=delivery,
    )
    audit_record(
        actor=actor,
        verb="webhook.delivery_replayed",
        subject=replay,
        data={"of": delivery.pk, "event": str(delivery.event.event_id)},
    )
    return replay


# ---------------------------------------------------------------- reads for the UI


def webhook_endpoints_for(*, creditors: QuerySet[Creditor]) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(creditor__in=creditors).select_related("creditor").order_by("-pk")


def webhook_deliveries_for(*, creditors: QuerySet[Creditor]) -> QuerySet[WebhookDelivery]:
    return (
        WebhookDelivery.objects.filter(endpoint__creditor__in=creditors)
        .select_related("event", "endpoint", "endpoint__creditor")
        .order_by("-pk")
    )


# ---------------------------------------------------------------- audit chain -> events


def _creditor_id(event: AuditEvent) -> int | None:
    """The creditor an audit event concerns: the case's, the subject's ``creditor_id``, or ``data.creditor``."""
    if event.subject_type == "cases.case":
        return Case.objects.filter(pk=event.subject_id).values_list("creditor_id", flat=True).first()
    if event.subject_type == "tenancy.creditor" and event.subject_id.isdigit():
        return int(event.subject_id)  # remittances: the creditor is the subject
    try:
        model = apps.get_model(event.subject_type)
    except (LookupError, ValueError):
        model = None
    if model is not None and any(f.name == "creditor" for f in model._meta.get_fields()):
        return model.objects.filter(pk=event.subject_id).values_list("creditor_id", flat=True).first()
    creditor = (event.data or {}).get("creditor")
    return int(creditor) if isinstance(creditor, int) else None


def _payload(event: AuditEvent, *, event_id: str, type_: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "created": event.occurred_at.isoformat(),
        "data": {"object": event.subject_type.split(".")[-1], "id": event.subject_id, "details": event.data},
    }
    if event.subject_type == "cases.case":
        case = Case.objects.filter(pk=event.subject_id).only("reference", "status").first()
        if case is not None:
            body["data"]["reference"] = case.reference
            body["data"]["status"] = case.status
    return body


@dataclass
class CollectReport:
    scanned: int = 0
    events: int = 0
    deliveries: int = 0


def webhook_events_collect(*, batch: int = 2000, now: datetime | None = None) -> CollectReport:
    """Turn audit events past the cursor into webhook events and pending deliveries (one transaction).

    Audit rows get their ``seq`` under the chain's lock and commit in that order, so a cursor on
    ``seq`` misses none. Several workers may run this: the cursor row is locked.
    """
    now = now or timezone.now()
    report = CollectReport()
    with transaction.atomic():
        cursor, _ = WebhookCursor.objects.get_or_create(name=CURSOR)
        cursor = WebhookCursor.objects.select_for_update().get(pk=cursor.pk)
        rows = list(AuditEvent.objects.filter(seq__gt=cursor.last_seq).order_by("seq")[:batch])
        if not rows:
            return report
        endpoints: dict[int, list[WebhookEndpoint]] = {}
        for row in rows:
            report.scanned += 1
            rule = EVENT_RULES.get(row.verb)
            type_ = rule(row.data or {}) if rule else None
            if type_ is None:
                continue
            creditor_id = _creditor_id(row)
            if creditor_id is None:
                continue
            if creditor_id not in endpoints:
                endpoints[creditor_id] = list(WebhookEndpoint.objects.filter(creditor_id=creditor_id, active=True))
            # An endpoint gets the events that happened after it was created, never older history.
            subscribed = [
                e for e in endpoints[creditor_id] if type_ in e.event_types and e.created_at <= row.occurred_at
            ]
            if not subscribed:
                continue
            event = WebhookEvent(creditor_id=creditor_id, type=type_, audit_seq=row.seq, occurred_at=row.occurred_at)
            event.payload = _payload(row, event_id=str(event.event_id), type_=type_)
            event.save()
            WebhookDelivery.objects.bulk_create(
                [WebhookDelivery(event=event, endpoint=e, next_attempt_at=now) for e in subscribed]
            )
            report.events += 1
            report.deliveries += len(subscribed)
        cursor.last_seq = rows[-1].seq
        cursor.save(update_fields=["last_seq"])
    return report


# ---------------------------------------------------------------- deliveries


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 1, 2, 4, 8, 16… minutes, at most a day."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), timedelta(days=1))


def body_of(event: WebhookEvent) -> bytes:
    return json.dumps(event.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class DeliverReport:
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    ids: list[int] = field(default_factory=list)


def _claim(*, now: datetime, limit: int) -> list[WebhookDelivery]:
    with transaction.atomic():
        qs = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now).order_by(
            "next_attempt_at", "pk"
        )
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        claimed = list(qs.select_related("event", "endpoint")[:limit])
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(next_attempt_at=now + LEASE)
    return claimed


def webhook_deliver_due(
    *, now: datetime | None = None, client: httpx.Client | None = None, limit: int = 100
) -> DeliverReport:
    """Post every due delivery once; record the attempt; schedule a retry or mark it failed."""
    now = now or timezone.now()
    report = DeliverReport()
    own = client is None
    http = client or httpx.Client(timeout=settings.RELANCE_WEBHOOK_TIMEOUT, follow_redirects=False)
    try:
        for delivery in _claim(now=now, limit=limit):
            _send(delivery, http=http, now=now, report=report)
    finally:
        if own:
            http.close()
    return report


def _send(delivery: WebhookDelivery, *, http: httpx.Client, now: datetime, report: DeliverReport) -> None:
    body = body_of(delivery.event)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Relance-Webhooks/1",
        "Relance-Event-Id": str(delivery.event.event_id),
        "Relance-Event-Type": delivery.event.type,
        "Relance-Delivery-Attempt": str(delivery.attempts + 1),
        HEADER: sign(secret=delivery.endpoint.secret, timestamp=timestamp, body=body),
    }
    status_code: int | None = None
    error = ""
    excerpt = ""
    try:
        response = http.post(delivery.endpoint.url, content=body, headers=headers)
        status_code = response.status_code
        excerpt = response.text[:500]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    ok = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, at=now, status_code=status_code, error=error, response_excerpt=excerpt
        )
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.last_error = error or ("" if ok else f"HTTP {status_code}")
        if ok:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            report.succeeded += 1
        elif delivery.attempts >= settings.RELANCE_WEBHOOK_MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
            report.failed += 1
            log.warning("webhook delivery %s failed after %s attempts", delivery.pk, delivery.attempts)
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            report.retrying += 1
        delivery.save()
    report.ids.append(delivery.pk)


def webhooks_run(*, now: datetime | None = None, client: httpx.Client | None = None) -> DeliverReport:
    """One worker pass: collect new events, then deliver what is due."""
    webhook_events_collect(now=now)
    return webhook_deliver_due(now=now, client=client)
