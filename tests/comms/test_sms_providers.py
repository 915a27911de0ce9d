"""The exact HTTP requests each SMS provider adapter sends, through httpx.MockTransport (no network).

Wire formats: Twilio Message resource (POST .../2010-04-01/Accounts/{Sid}/Messages.json, form fields,
Basic auth, JSON errors {code, message}); OVHcloud API v1 signing ("$1$" + SHA-1 of AS+CK+METHOD+URL+
BODY+TS) and POST /sms/{serviceName}/jobs. See src/relance/comms/sms_providers.py for the sources.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from relance.comms.sms_providers import (
    FileProvider,
    OvhProvider,
    SmsProviderError,
    SmsRequest,
    TwilioProvider,
    ovh_signature,
    sms_provider_from_settings,
    twilio_signature,
    twilio_signature_valid,
)

SID = "AC" + "0" * 32
TOKEN = "twilio-test-token"
REQUEST = SmsRequest(to="+33612345678", body="Shop SAS : 120,50 € restent dus", reference="42", segments=1)


class Recorder:
    """A MockTransport handler that records every request and answers from a script."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self._answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answers.pop(0)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def _twilio(recorder: Recorder, **kwargs: str) -> TwilioProvider:
    options = {"from_number": "+33700000000", "status_callback_url": "https://relance.example/hooks/sms/twilio/status"}
    options.update(kwargs)
    return TwilioProvider(account_sid=SID, auth_token=TOKEN, transport=recorder.transport, **options)


def test_twilio_sends_one_form_encoded_post_with_basic_auth_and_the_action_in_the_callback():
    recorder = Recorder(httpx.Response(201, json={"sid": "SM" + "1" * 32, "status": "queued"}))

    accepted = _twilio(recorder).send(REQUEST)

    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode(), strict_parsing=True)
    assert form == {
        "To": ["+33612345678"],
        "From": ["+33700000000"],
        "Body": ["Shop SAS : 120,50 € restent dus"],
        "StatusCallback": ["https://relance.example/hooks/sms/twilio/status?action=42"],
    }
    assert (accepted.provider, accepted.message_id, accepted.status) == ("twilio", "SM" + "1" * 32, "queued")


def test_twilio_with_a_messaging_service_sends_no_from():
    recorder = Recorder(httpx.Response(201, json={"sid": "SMx", "status": "accepted"}))

    _twilio(recorder, from_number="", messaging_service_sid="MG123", status_callback_url="").send(REQUEST)

    form = parse_qs(recorder.requests[0].content.decode())
    assert form["MessagingServiceSid"] == ["MG123"]
    assert "From" not in form
    assert "StatusCallback" not in form


def test_twilio_errors_are_mapped_from_their_json_code_and_message():
    recorder = Recorder(
        httpx.Response(
            400,
            json={
                "code": 21211,
                "message": "The 'To' number +336 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        )
    )

    with pytest.raises(SmsProviderError) as caught:
        _twilio(recorder).send(REQUEST)

    assert caught.value.code == "twilio.21211"
    assert caught.value.status == 400
    assert not caught.value.retryable
    assert "not a valid phone number" in str(caught.value)


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (401, False)])
def test_twilio_retryable_errors(status, retryable):
    recorder = Recorder(httpx.Response(status, json={"code": 20003, "message": "x"}))
    with pytest.raises(SmsProviderError) as caught:
        _twilio(recorder).send(REQUEST)
    assert caught.value.retryable is retryable


def test_network_failures_are_provider_errors():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = TwilioProvider(
        account_sid=SID, auth_token=TOKEN, from_number="+33700000000", transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(SmsProviderError) as caught:
        provider.send(REQUEST)
    assert caught.value.code == "twilio.network"
    assert caught.value.retryable


def test_twilio_signature_matches_the_documented_example():
    # The worked example of twilio.com/docs/usage/security (auth token "12345").
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(auth_token="12345", url=url, params=params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature_valid(auth_token="12345", url=url, params=params, signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not twilio_signature_valid(auth_token="12345", url=url + "&x=1", params=params, signature="0/KCTR6DLpKm")
    assert not twilio_signature_valid(auth_token="", url=url, params=params, signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def _ovh(recorder: Recorder, **kwargs: object) -> OvhProvider:
    options: dict[str, object] = {"sender": "", "no_stop_clause": True, "clock": lambda: 1_700_000_000.4}
    options.update(kwargs)
    return OvhProvider(
        application_key="ak",
        application_secret="as",
        consumer_key="ck",
        service_name="sms-ab12345-1",
        transport=recorder.transport,
        **options,  # type: ignore[arg-type]
    )


def test_ovh_reads_the_api_time_then_posts_a_signed_json_job():
    recorder = Recorder(
        httpx.Response(200, text="1700000003"),
        httpx.Response(
            200,
            json={
                "ids": [27814656],
                "validReceivers": ["+33612345678"],
                "invalidReceivers": [],
                "totalCreditsRemoved": 1,
            },
        ),
    )

    accepted = _ovh(recorder).send(REQUEST)

    time_request, job = recorder.requests
    assert (time_request.method, str(time_request.url)) == ("GET", "https://eu.api.ovh.com/1.0/auth/time")
    assert "X-Ovh-Signature" not in time_request.headers
    assert job.method == "POST"
    url = "https://eu.api.ovh.com/1.0/sms/sms-ab12345-1/jobs"
    assert str(job.url) == url
    body = job.content.decode()
    assert json.loads(body) == {
        "charset": "UTF-8",
        "coding": "7bit",
        "message": "Shop SAS : 120,50 € restent dus",
        "noStopClause": True,
        "priority": "high",
        "receivers": ["+33612345678"],
        "tag": "action-42",
        "senderForResponse": True,
    }
    assert job.headers["Content-Type"] == "application/json"
    assert job.headers["X-Ovh-Application"] == "ak"
    assert job.headers["X-Ovh-Consumer"] == "ck"
    # The server's clock (3 s ahead of ours), not ours.
    assert job.headers["X-Ovh-Timestamp"] == "1700000003"
    expected = "$1$" + hashlib.sha1(f"as+ck+POST+{url}+{body}+1700000003".encode(), usedforsecurity=False).hexdigest()
    assert job.headers["X-Ovh-Signature"] == expected
    assert (accepted.provider, accepted.message_id) == ("ovh", "27814656")


def test_ovh_time_is_read_once_per_provider():
    ok = {"ids": [1], "validReceivers": ["+33612345678"], "invalidReceivers": []}
    recorder = Recorder(
        httpx.Response(200, text="1700000000"), httpx.Response(200, json=ok), httpx.Response(200, json=ok)
    )
    provider = _ovh(recorder)
    provider.send(REQUEST)
    provider.send(REQUEST)
    jobs = "/1.0/sms/sms-ab12345-1/jobs"
    assert [r.url.path for r in recorder.requests] == ["/1.0/auth/time", jobs, jobs]


def test_ovh_with_a_sender_and_a_unicode_text():
    recorder = Recorder(
        httpx.Response(200, text="1700000000"),
        httpx.Response(200, json={"ids": [7], "validReceivers": ["+33612345678"], "invalidReceivers": []}),
    )
    _ovh(recorder, sender="SHOP", no_stop_clause=False).send(
        SmsRequest(to="+33612345678", body="Reçu 🙂", reference="9", encoding="UCS-2")
    )
    payload = json.loads(recorder.requests[1].content)
    assert payload["sender"] == "SHOP"
    assert "senderForResponse" not in payload
    assert payload["coding"] == "8bit"
    assert payload["noStopClause"] is False
    assert payload["message"] == "Reçu 🙂"
    assert recorder.requests[1].content.isascii()  # json.dumps escapes, as python-ovh signs it


def test_ovh_signature_helper():
    assert (
        ovh_signature(
            application_secret="as", consumer_key="ck", method="get", url="https://x/1.0/me", body="", timestamp="1"
        )
        == "$1$" + hashlib.sha1(b"as+ck+GET+https://x/1.0/me++1", usedforsecurity=False).hexdigest()
    )


def test_ovh_errors_are_mapped():
    recorder = Recorder(
        httpx.Response(200, text="1700000000"),
        httpx.Response(
            403,
            json={
                "errorCode": "INVALID_CREDENTIAL",
                "httpCode": "403 Forbidden",
                "message": "This credential is not valid",
            },
        ),
    )
    with pytest.raises(SmsProviderError) as caught:
        _ovh(recorder).send(REQUEST)
    assert caught.value.code == "ovh.INVALID_CREDENTIAL"
    assert caught.value.status == 403
    assert not caught.value.retryable


def test_ovh_invalid_receiver_is_an_error_even_with_200():
    recorder = Recorder(
        httpx.Response(200, text="1700000000"),
        httpx.Response(
            200, json={"ids": [], "validReceivers": [], "invalidReceivers": ["+33612345678"], "totalCreditsRemoved": 0}
        ),
    )
    with pytest.raises(SmsProviderError) as caught:
        _ovh(recorder).send(REQUEST)
    assert caught.value.code == "ovh.invalid_receiver"


def test_file_provider_writes_one_json_line_per_sms(tmp_path):
    provider = FileProvider(directory=tmp_path / "sms", clock=lambda: datetime(2026, 3, 2, 10, tzinfo=UTC))
    accepted = provider.send(REQUEST)
    provider.send(SmsRequest(to="+33600000001", body="Deux", reference="43"))
    lines = (tmp_path / "sms" / "2026-03-02.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["to"] == "+33612345678"
    assert first["body"] == "Shop SAS : 120,50 € restent dus"
    assert first["reference"] == "42"
    assert first["id"] == accepted.message_id == "file-action-42"


def test_settings_pick_the_provider_and_pass_the_transport(settings):
    recorder = Recorder(httpx.Response(201, json={"sid": "SM1", "status": "queued"}))
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = "+33700000000"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.PUBLIC_BASE_URL = "https://relance.example"
    provider = sms_provider_from_settings(transport=recorder.transport)
    provider.send(REQUEST)
    form = parse_qs(recorder.requests[0].content.decode())
    assert form["StatusCallback"] == ["https://relance.example/hooks/sms/twilio/status?action=42"]


def test_providers_refuse_to_start_without_credentials():
    with pytest.raises(ValueError):
        TwilioProvider(account_sid=SID, auth_token="", from_number="+33700000000")
    with pytest.raises(ValueError):
        TwilioProvider(account_sid=SID, auth_token=TOKEN)
    with pytest.raises(ValueError):
        OvhProvider(application_key="ak", application_secret="", consumer_key="ck", service_name="s")
