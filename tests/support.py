"""Plain helpers shared by the tests (importable as ``support``; conftest modules are not)."""

from __future__ import annotations

import os
import socket
from datetime import date, timedelta

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
    as ``(method, path, headers, body bytes)``. Used for PSP adapters (Stripe, Mollie) in tests that go
    through views, where no transport can be handed in.
    """

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[tuple[str, str], tuple[int, object]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
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
