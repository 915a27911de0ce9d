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
