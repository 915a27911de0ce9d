"""Plain helpers shared by the tests (importable as ``support``; conftest modules are not)."""

from __future__ import annotations

import os
import socket
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

from relance.intake.validate import ClaimData, DebtorData

PASSWORD = "correct-horse-battery-staple"


def claim_data(
    ref: str = "INV-1", amount: str = "120.50", email: str = "jeanne.martin@example.fr", **debtor: str
) -> ClaimData:
    today = date.today()
    fields = {
        "first_name": "Jeanne",
        "last_name": "Martin",
        "email": email,
        "phone": "06 12 34 56 78",
        "address_line1": "3 rue des Lilas",
        "postcode": "33000",
        "city": "Bordeaux",
        **debtor,
    }
    return ClaimData(
        external_ref=ref,
        invoice_number=f"F-{ref}",
        invoice_date=today - timedelta(days=40),
        due_date=today - timedelta(days=10),
        amount=amount,
        currency="EUR",
        debtor=DebtorData(**fields),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium_path() -> str | None:
    path = os.environ.get("RELANCE_CHROMIUM") or "/usr/bin/chromium"
    return path if os.path.exists(path) else None


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def api_claim_payload(ref: str = "ORDER-1001", amount: str = "89.90") -> dict[str, object]:
    """A valid ``POST /api/v1/claims`` body (invoice 40 days old, due 10 days ago)."""
    today = date.today()
    return {
        "external_ref": ref,
        "invoice_number": f"F-{ref}",
        "invoice_date": str(today - timedelta(days=40)),
        "due_date": str(today - timedelta(days=10)),
        "amount": amount,
        "currency": "EUR",
        "debtor": {
            "first_name": "Jeanne",
            "last_name": "Martin",
            "email": "jeanne.martin@example.fr",
            "postcode": "33000",
            "address_line1": "3 rue des Lilas",
            "city": "Bordeaux",
        },
    }


class FakeProviderApi:
    """A provider's HTTP API on loopback (a real server, real HTTP), answering recorded payloads.

    ``routes`` maps ``(METHOD, path)`` to ``(status, JSON body)``; every request is kept in ``requests``
    as ``(method, path, headers, body bytes)`` and its query string in ``queries``. Used for PSP adapters
    (Stripe, Mollie) in tests that go through views, where no transport can be handed in.
    """

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[tuple[str, str], tuple[int, object]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                fake.queries.append(query)
                fake.requests.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, payload = fake.routes.get((self.command, path), (404, {"error": {"message": "no route"}}))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def totp_device(user):  # -> TOTPDevice
    """``user``'s confirmed authenticator, made if missing (the same secret for the whole test)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)


def totp_code(device) -> str:
    """The current code of ``device``, computed as a phone app would (pyotp, RFC 6238).

    django-otp refuses a code twice; a test that logs the same user in twice within 30 seconds
    gets the same code, so the device forgets the last code it accepted first.
    """
    import base64

    import pyotp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0)
    return pyotp.TOTP(base64.b32encode(device.bin_key).decode(), digits=device.digits, interval=device.step).now()


def second_factor_pass(client, user) -> None:
    """Mark ``client``'s session as having passed the second factor (after ``force_login``)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    session = client.session
    session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
    session.save()


def browser_log_in(page, base_url: str, user, password: str = PASSWORD) -> None:
    """Log ``user`` in through the real pages: password, then the TOTP code when one is asked."""
    import re

    from relance.tenancy.permissions import STAFF

    if user.role in STAFF:
        totp_device(user)  # staff cannot log in without an authenticator: give them the test phone
    page.goto(f"{base_url}/bo/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("#login")
    page.wait_for_load_state()
    if "/bo/login/verify/" in page.url:
        page.fill("#id_code", totp_code(totp_device(user)))
        page.click("#verify-code")
    elif "/bo/security/" in page.url:
        raise AssertionError("this user must set 2FA up first: call support.totp_device(user)")
    page.wait_for_url(re.compile(r"/bo/(\?.*)?$"))


class WebhookReceiver:
    """A real HTTP server on loopback that records what it receives and answers ``statuses`` in turn."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        import http.server
        import threading

        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver error")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/relance"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# A strategy whose first step is a call task, for the tests of call tasks and the agents' queues.
CALL_FIRST_STRATEGY = """
key: calls
version: 1
name: "Call first"
steps:
  - id: call
    at: placement + 0d
    action: call
    template: call_script
  - id: return
    at: placement + 30d
    action: return_to_creditor
"""


def next_working_day_at(hour: int) -> datetime:
    """``hour`` o'clock (Paris) on the next day after today that is neither a weekend day nor a French
    public holiday: after any case a test places now, and inside every channel's contact window (no SMS
    or call on Sundays and public holidays)."""
    day = datetime.now(ZoneInfo("Europe/Paris")).date() + timedelta(days=1)
    closed = holidays.France(years=range(day.year, day.year + 2))
    while day.weekday() >= 5 or day in closed:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo("Europe/Paris"))
