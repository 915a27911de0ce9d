"""SMS providers behind one adapter: Twilio, OVHcloud, and a file for the embedded default.

Each provider turns an ``SmsRequest`` into exactly one HTTP request (plus, for OVHcloud, one clock
read) through an ``httpx`` transport given at construction, so tests swap in ``httpx.MockTransport``
and check the real wire format. The action id is the idempotency key towards every provider.

Wire formats, as checked against public sources:

* Twilio Programmable Messaging, "Message resource" (twilio.com/docs/messaging/api/message-resource;
  twilio-go ``rest/api/v2010/docs/AccountsMessagesApi.md``): ``POST
  https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``,
  ``From`` or ``MessagingServiceSid``, ``Body``, ``StatusCallback``; HTTP Basic auth AccountSid:AuthToken;
  201 with JSON ``sid``/``status``; errors as JSON ``{"code", "message", "more_info", "status"}``.
  Webhook signature (twilio.com/docs/usage/security, twilio-python ``request_validator.py``):
  base64(HMAC-SHA1(auth token, full URL + each POST parameter sorted by name as name+value)).
* OVHcloud API (help.ovhcloud.com "first steps with the API", python-ovh ``ovh/client.py``
  ``Client.call``): headers X-Ovh-Application, X-Ovh-Consumer, X-Ovh-Timestamp (server time, from the
  unauthenticated ``GET /auth/time``) and X-Ovh-Signature = "$1$" + sha1_hex(AS+CK+METHOD+URL+BODY+TS
  joined by "+"), body ``json.dumps``. SMS job (OVHcloud guide "send SMS with the API";
  eu.api.ovh.com/1.0/sms.json as typed in ``@ovh-api/sms``): ``POST /sms/{serviceName}/jobs`` with
  ``message``, ``receivers``, ``sender`` or ``senderForResponse``, ``noStopClause``, ``priority``
  (high|medium|low|veryLow), ``coding`` (7bit|8bit), ``charset``, ``tag``; answer
  ``{"ids", "validReceivers", "invalidReceivers", "totalCreditsRemoved"}``; errors as JSON
  ``{"message", "errorCode"?}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from django.conf import settings
from django.urls import reverse

from relance.comms.sms import Encoding

TWILIO_API = "https://api.twilio.com"
OVH_EU_API = "https://eu.api.ovh.com/1.0"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class SmsProviderError(Exception):
    """A provider refused or could not take a message; ``code`` is stable (``<provider>.<what>``)."""

    def __init__(self, message: str, *, provider: str, code: str, status: int | None = None, retryable: bool) -> None:
        super().__init__(f"{provider}: {message} ({code})")
        self.provider = provider
        self.code = code
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class SmsRequest:
    """One SMS to one number; ``reference`` (the action id) is the idempotency key."""

    to: str  # E.164
    body: str
    reference: str
    encoding: Encoding = "GSM-7"
    segments: int = 1


@dataclass(frozen=True, slots=True)
class SmsAccepted:
    provider: str
    message_id: str
    status: str


class SmsProvider(Protocol):
    name: str

    def send(self, request: SmsRequest) -> SmsAccepted:
        """Hand the message over; raise ``SmsProviderError`` when it was not taken."""
        ...


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _network_error(provider: str, exc: httpx.TransportError) -> SmsProviderError:
    return SmsProviderError(
        f"{type(exc).__name__}: {exc}", provider=provider, code=f"{provider}.network", retryable=True
    )


# --- Twilio ------------------------------------------------------------------------------------


def twilio_signature(*, auth_token: str, url: str, params: Mapping[str, str | Sequence[str]]) -> str:
    """X-Twilio-Signature for a POST to ``url`` with form ``params`` (repeated names: every value)."""
    payload = url
    for name in sorted(params):
        values = params[name]
        for value in [values] if isinstance(values, str) else values:
            payload += name + value
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    *, auth_token: str, url: str, params: Mapping[str, str | Sequence[str]], signature: str
) -> bool:
    if not auth_token or not signature:
        return False
    expected = twilio_signature(auth_token=auth_token, url=url, params=params)
    return hmac.compare_digest(expected, signature)


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str = "",
        messaging_service_sid: str = "",
        status_callback_url: str = "",
        base_url: str = TWILIO_API,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        if not from_number and not messaging_service_sid:
            raise ValueError("Twilio needs a From number or a Messaging Service SID")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback_url = status_callback_url
        self.base_url = base_url.rstrip("/")
        self._transport = transport

    def send(self, request: SmsRequest) -> SmsAccepted:
        url = f"{self.base_url}/2010-04-01/Accounts/{quote(self.account_sid, safe='')}/Messages.json"
        form = {"To": request.to, "Body": request.body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number
        if self.status_callback_url:
            # Twilio has no idempotency header: the action id rides in the callback URL, which the
            # webhook signature covers, so a receipt names its action without trusting the sender.
            form["StatusCallback"] = f"{self.status_callback_url}?action={quote(request.reference)}"
        try:
            with httpx.Client(transport=self._transport, timeout=TIMEOUT) as client:
                response = client.post(url, data=form, auth=(self.account_sid, self._auth_token))
        except httpx.TransportError as exc:
            raise _network_error(self.name, exc) from exc
        data = _json(response)
        if response.is_success and data.get("sid"):
            return SmsAccepted(provider=self.name, message_id=str(data["sid"]), status=str(data.get("status", "")))
        code = data.get("code")
        raise SmsProviderError(
            str(data.get("message") or response.reason_phrase or "unexpected answer"),
            provider=self.name,
            code=f"twilio.{code if code is not None else response.status_code}",
            status=response.status_code,
            retryable=response.status_code == 429 or response.status_code >= 500,
        )


# --- OVHcloud ----------------------------------------------------------------------------------


def ovh_signature(
    *, application_secret: str, consumer_key: str, method: str, url: str, body: str, timestamp: str
) -> str:
    """X-Ovh-Signature: "$1$" + SHA-1 hex of the six fields joined by "+" (OVHcloud API v1 signing)."""
    raw = "+".join((application_secret, consumer_key, method.upper(), url, body, timestamp))
    # OVHcloud's protocol mandates SHA-1 (not our choice of hash).
    return "$1$" + hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


class OvhProvider:
    name = "ovh"

    def __init__(
        self,
        *,
        application_key: str,
        application_secret: str,
        consumer_key: str,
        service_name: str,
        sender: str = "",
        no_stop_clause: bool = True,
        endpoint: str = OVH_EU_API,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not (application_key and application_secret and consumer_key and service_name):
            raise ValueError("OVHcloud needs an application key and secret, a consumer key and an SMS service")
        self.application_key = application_key
        self._application_secret = application_secret
        self._consumer_key = consumer_key
        self.service_name = service_name
        self.sender = sender
        self.no_stop_clause = no_stop_clause
        self.endpoint = endpoint.rstrip("/")
        self._clock = clock
        self._transport = transport
        self._time_delta: int | None = None

    def _server_time(self, client: httpx.Client) -> str:
        """Signatures carry OVHcloud's clock, not ours: read it once (as python-ovh does) and keep the delta."""
        if self._time_delta is None:
            response = client.get(f"{self.endpoint}/auth/time")
            if not response.is_success:
                raise SmsProviderError("cannot read the API time", provider=self.name, code="ovh.time", retryable=True)
            self._time_delta = int(response.text.strip()) - int(self._clock())
        return str(int(self._clock()) + self._time_delta)

    def send(self, request: SmsRequest) -> SmsAccepted:
        url = f"{self.endpoint}/sms/{quote(self.service_name, safe='')}/jobs"
        payload: dict[str, Any] = {
            "charset": "UTF-8",
            "coding": "7bit" if request.encoding == "GSM-7" else "8bit",
            "message": request.body,
            "noStopClause": self.no_stop_clause,
            "priority": "high",
            "receivers": [request.to],
            "tag": f"action-{request.reference}",
        }
        if self.sender:
            payload["sender"] = self.sender
        else:
            # No declared sender: a French short number that lets the debtor answer (STOP included).
            payload["senderForResponse"] = True
        body = json.dumps(payload)
        try:
            with httpx.Client(transport=self._transport, timeout=TIMEOUT) as client:
                timestamp = self._server_time(client)
                headers = {
                    "Content-Type": "application/json",
                    "X-Ovh-Application": self.application_key,
                    "X-Ovh-Consumer": self._consumer_key,
                    "X-Ovh-Timestamp": timestamp,
                    "X-Ovh-Signature": ovh_signature(
                        application_secret=self._application_secret,
                        consumer_key=self._consumer_key,
                        method="POST",
                        url=url,
                        body=body,
                        timestamp=timestamp,
                    ),
                }
                response = client.post(url, content=body.encode(), headers=headers)
        except httpx.TransportError as exc:
            raise _network_error(self.name, exc) from exc
        data = _json(response)
        if not response.is_success:
            what = data.get("errorCode") or response.status_code
            raise SmsProviderError(
                str(data.get("message") or response.reason_phrase or "unexpected answer"),
                provider=self.name,
                code=f"ovh.{what}",
                status=response.status_code,
                retryable=response.status_code == 429 or response.status_code >= 500,
            )
        ids = data.get("ids") or []
        if data.get("invalidReceivers") or not ids:
            raise SmsProviderError(
                f"receiver refused: {', '.join(map(str, data.get('invalidReceivers') or [request.to]))}",
                provider=self.name,
                code="ovh.invalid_receiver",
                status=response.status_code,
                retryable=False,
            )
        return SmsAccepted(provider=self.name, message_id=str(ids[0]), status="sent")


# --- File (embedded default) -------------------------------------------------------------------


class FileProvider:
    """Each SMS as one JSON line in ``<directory>/<date>.jsonl`` (the outbox page shows the body)."""

    name = "file"

    def __init__(self, *, directory: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.directory = Path(directory)
        self._clock = clock or (lambda: datetime.now(UTC))

    def send(self, request: SmsRequest) -> SmsAccepted:
        at = self._clock()
        message_id = f"file-action-{request.reference}"
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "id": message_id,
                "at": at.isoformat(),
                "to": request.to,
                "body": request.body,
                "encoding": request.encoding,
                "segments": request.segments,
                "reference": request.reference,
            },
            ensure_ascii=False,
        )
        with (self.directory / f"{at:%Y-%m-%d}.jsonl").open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        return SmsAccepted(provider=self.name, message_id=message_id, status="sent")


def sms_provider_from_settings(*, transport: httpx.BaseTransport | None = None) -> SmsProvider:
    """The provider ``SMS_PROVIDER`` names, built from the settings (credentials from the environment)."""
    name = settings.SMS_PROVIDER
    if name == "twilio":
        return TwilioProvider(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_FROM_NUMBER,
            messaging_service_sid=settings.TWILIO_MESSAGING_SERVICE_SID,
            status_callback_url=settings.PUBLIC_BASE_URL + reverse("hooks:sms_twilio_status"),
            transport=transport,
        )
    if name == "ovh":
        return OvhProvider(
            application_key=settings.OVH_APPLICATION_KEY,
            application_secret=settings.OVH_APPLICATION_SECRET,
            consumer_key=settings.OVH_CONSUMER_KEY,
            service_name=settings.OVH_SMS_SERVICE_NAME,
            sender=settings.OVH_SMS_SENDER,
            no_stop_clause=settings.OVH_SMS_NO_STOP_CLAUSE,
            endpoint=settings.OVH_ENDPOINT,
            transport=transport,
        )
    if name == "file":
        return FileProvider(directory=settings.SMS_FILE_PATH)
    raise ValueError(f"unknown SMS provider {name!r}")
