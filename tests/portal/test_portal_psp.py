"""The portal pages of issue 5 through HTTP: card payment, receipts, disputes, returns, contact details.

Every page needs the verification of its own case (the signed cookie; invariant 6); payments are recorded
only from the PSP's webhook, never from the page the debtor comes back to.
"""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from relance.cases.links import portal_token, portal_token_read
from relance.claims.models import Debtor
from relance.core.money import Money
from relance.payments.models import Dispute, Payment, PspCheckout, Receipt, ReturnPolicy
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor
from support import FakeProviderApi

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SESSION = {"id": "cs_test_abc", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_abc"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def url(case, page: str, **kwargs) -> str:
    return reverse(
        f"portal:{page}", kwargs={"token": portal_token(case_id=case.pk, reference=case.reference), **kwargs}
    )


def verified(case, postcode: str = "33000") -> Client:
    client = Client()
    assert client.post(url(case, "entry"), {"postcode": postcode}).status_code == 302
    return client


@pytest.mark.parametrize("page", ["card_pay", "dispute", "contact", "return"])
def test_pages_need_the_verified_session_of_their_own_case(place, page):
    mine = place("INV-1", "120.50").case
    other = place("INV-2", "80.00", email="paul.durand@example.fr", last_name="Durand", postcode="69001").case
    assert Client().get(url(mine, page)).status_code == 302
    # Verified for another case: still sent to verification for this one.
    assert verified(other, "69001").get(url(mine, page)).status_code == 302


def test_card_payment_opens_a_stripe_page_for_the_chosen_amount(place, settings):
    fake = FakeProviderApi()
    try:
        fake.routes[("POST", "/v1/checkout/sessions")] = (200, SESSION)
        settings.RELANCE_CARD_PSP = "stripe"
        settings.STRIPE_SECRET_KEY = "sk_test_123"
        settings.STRIPE_API_BASE = fake.url
        case = place("INV-1", "120.50").case
        client = verified(case)
        page = client.get(url(case, "case"))
        assert b'id="pay-card-link"' in page.content
        form = client.get(url(case, "card_pay"))
        assert b'value="120.50"' in form.content or b'value="120,50"' in form.content

        too_much = client.post(url(case, "card_pay"), {"amount": "120.51"})
        assert too_much.status_code == 422
        assert b'id="amount-error"' in too_much.content
        assert not fake.requests

        response = client.post(url(case, "card_pay"), {"amount": "50,00"})
        checkout = PspCheckout.objects.get(case=case)
        assert response.status_code == 302
        # The same link (a token signed a second later differs only in its timestamp).
        token = response["Location"].split("/")[2]
        assert portal_token_read(token) == (case.pk, case.reference)
        assert response["Location"] == reverse("portal:card_go", kwargs={"token": token, "checkout_id": checkout.pk})
        assert checkout.amount_minor == 5000
        go = client.get(response["Location"])
        assert SESSION["url"].encode() in go.content
        (_, path, headers, body) = fake.requests[0]
        assert path == "/v1/checkout/sessions"
        assert headers["authorization"] == "Bearer sk_test_123"
        assert b"line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=5000" in body
        # Coming back from the provider records nothing: only the signed webhook does.
        back = client.get(url(case, "card_return"))
        assert back.status_code == 302
        assert not Payment.objects.exists()
    finally:
        fake.close()


def test_card_payment_is_absent_when_no_psp_is_configured(place, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.MOLLIE_API_KEY = ""
    case = place("INV-1", "120.50").case
    client = verified(case)
    assert b"pay-card-link" not in client.get(url(case, "case")).content
    assert client.get(url(case, "card_pay")).status_code == 404


def test_a_receipt_pdf_shows_the_allocation_and_the_remaining_balance(place):
    case = place("INV-1", "120.50").case
    payment = payment_record(
        case=case,
        amount=Money.parse("20.50", "EUR"),
        method=Payment.Method.SANDBOX,
        external_ref="sandbox-1",
        actor=Actor.system("tests"),
    )
    receipt = Receipt.objects.get(payment=payment)
    client = verified(case)
    page = client.get(url(case, "case"))
    assert receipt.number.encode() in page.content
    response = client.get(url(case, "receipt", receipt_id=receipt.pk))
    assert response["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    for expected in (receipt.number, "20,50", "100,00", "F-INV-1", case.reference, "Recouvrement Test SAS"):
        assert expected in text, expected
    receipt.refresh_from_db()
    assert len(receipt.pdf_sha256) == 64
    # Another case's session cannot read it.
    other = place("INV-2", "80.00", email="paul.durand@example.fr", last_name="Durand").case
    assert verified(other).get(url(other, "receipt", receipt_id=receipt.pk)).status_code == 404


def test_the_debtor_disputes_with_a_file_and_reminders_stop(place):
    case = place("INV-1", "120.50").case
    client = verified(case)
    proof = io.BytesIO(PDF)
    proof.name = "proof.pdf"
    empty = client.post(url(case, "dispute"), {"reason": "not_received", "statement": ""})
    assert empty.status_code == 422
    assert b'id="statement-error"' in empty.content
    response = client.post(
        url(case, "dispute"),
        {
            "reason": "not_received",
            "statement": "The parcel never came.",
            "files": [proof],
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    dispute = Dispute.objects.get(case=case)
    case.refresh_from_db()
    assert case.status == "disputed"
    page = client.get(url(case, "case"))
    assert b'id="disputes"' in page.content
    assert b'id="dispute-link"' not in page.content  # one open dispute at a time
    f = dispute.files.get()
    download = client.get(url(case, "dispute_file", file_id=f.pk))
    assert b"".join(download.streaming_content) == PDF


def test_a_bad_file_gives_a_message_and_no_dispute(place):
    case = place("INV-1", "120.50").case
    client = verified(case)
    bad = io.BytesIO(b"not a pdf")
    bad.name = "proof.pdf"
    response = client.post(url(case, "dispute"), {"reason": "other", "statement": "x", "files": [bad]})
    assert response.status_code == 422
    assert b"PDF" in response.content
    assert not Dispute.objects.exists()


def test_the_debtor_announces_a_return_where_the_creditor_allows_it(place, world):
    case = place("INV-1", "120.50").case
    client = verified(case)
    assert client.get(url(case, "return")).status_code == 404
    ReturnPolicy.objects.create(creditor=world.creditor, returns_allowed=True, instructions="Colissimo label inside")
    form = client.get(url(case, "return"))
    assert b"Colissimo label inside" in form.content
    claim_id = case.claims.get().pk
    assert client.post(url(case, "return"), {"claim": claim_id, "note": "Wrong size"}).status_code == 302
    case.refresh_from_db()
    assert case.status == "on_hold"


def test_contact_details_and_opt_outs_are_saved_and_audited(place):
    case = place("INV-1", "120.50").case
    client = verified(case)
    base = {
        "email": "jeanne@example.org",
        "phone": "06 98 76 54 32",
        "address_line1": "5 rue Neuve",
        "address_line2": "",
        "postcode": "33000",
        "city": "Bordeaux",
        "sms_opt_out": "on",
    }
    bad = client.post(url(case, "contact"), {**base, "phone": "12"})
    assert bad.status_code == 422
    assert b'id="phone-error"' in bad.content
    assert client.post(url(case, "contact"), base).status_code == 302
    debtor = Debtor.objects.get(pk=case.debtor_id)
    assert (debtor.email, debtor.phone, debtor.sms_opt_out, debtor.email_opt_out) == (
        "jeanne@example.org",
        "+33698765432",
        True,
        False,
    )
    from relance.audit.models import AuditEvent

    event = AuditEvent.objects.filter(verb="debtor.contact_updated").get()
    assert "phone" in json.dumps(event.data)
    assert "+33698765432" not in json.dumps(event.data)  # names of fields, not the values


def test_receipts_not_yet_e_mailed_are_sent_by_the_sweep_once(place):
    from datetime import timedelta

    from django.core import mail
    from django.utils import timezone

    from relance.payments.receipts import receipts_deliver_pending

    case = place("INV-1", "120.50").case
    payment_record(
        case=case,
        amount=Money.parse("120.50", "EUR"),
        method=Payment.Method.TRANSFER,
        external_ref="bank-1",
        actor=Actor.system("tests"),
    )
    assert receipts_deliver_pending() == 0  # too recent: the after-commit e-mail has its chance first
    Receipt.objects.update(issued_at=timezone.now() - timedelta(hours=1))
    assert receipts_deliver_pending() == 1
    assert receipts_deliver_pending() == 0
    (message,) = mail.outbox
    assert message.attachments[0][0].startswith("Q-")
    assert message.attachments[0][2] == "application/pdf"


def test_with_card_payment_on_the_page_does_not_say_online_payment_is_closed(place, settings):
    settings.RELANCE_SANDBOX_PAYMENTS = False
    settings.RELANCE_CARD_PSP = "mollie"
    settings.MOLLIE_API_KEY = "test_key"
    case = place("INV-1", "120.50").case  # the test agency has no trust IBAN: no transfer card either
    page = verified(case).get(url(case, "case")).content
    assert b'id="pay-card-link"' in page
    assert b'id="pay"' not in page  # the "online payment is not open yet" card
    settings.MOLLIE_API_KEY = ""
    assert b'id="pay"' in verified(case).get(url(case, "case")).content
