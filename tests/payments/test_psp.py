"""Card payments through PSP adapters, against the providers' documented wire formats.

Stripe Checkout and Mollie requests are checked through ``httpx.MockTransport`` (the exact method,
URL, headers and body the provider receives); webhooks go through the real view over HTTP with the
provider's signature (Stripe) or a fetch from a provider API on loopback (Mollie). A webhook delivered
twice or out of order is applied once (issue 5); chargebacks reverse the payment through the ledger.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from relance.cases.selectors import case_outstanding_minor
from relance.core.errors import DomainError
from relance.core.money import Money
from relance.ledger.models import LedgerTransaction
from relance.ledger.services import account_balance
from relance.payments.card import card_checkout_start, psp_events_apply
from relance.payments.models import CreditorNotification, Payment, PaymentReversal, PspWebhookEvent, Receipt
from relance.payments.psp import PspError, WebhookSignatureError, psp_adapter
from relance.payments.psp.base import CheckoutRequest
from relance.payments.psp.mollie import MollieAdapter, mollie_value
from relance.payments.psp.stripe import StripeAdapter, stripe_signature_header, stripe_signature_valid
from relance.payments.reverse import reversal_split
from relance.tenancy.actors import Actor
from support import FakeProviderApi

SAMPLES = Path(__file__).parent / "samples"
WHSEC = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def request_for(case, amount="120.50") -> CheckoutRequest:
    return CheckoutRequest(
        case_id=case.pk,
        case_reference=case.reference,
        amount=Money.parse(amount, "EUR"),
        description=f"Shop SAS — {case.reference}",
        success_url="https://relance.example/p/t/pay/return/",
        cancel_url="https://relance.example/p/t/dossier/",
        webhook_url="https://relance.example/hooks/psp/mollie",
        idempotency_key="relance-checkout-1-abc",
        locale="fr",
        customer_email="jeanne.martin@example.fr",
    )


# --- Stripe: request format and signatures (no database) --------------------------------------------


class _Case:
    pk = 42
    reference = "RL-ABCDEFGH"


def test_stripe_checkout_session_request_is_stripe_form_encoding():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=sample("stripe_checkout_session.json"))

    adapter = StripeAdapter(secret_key="sk_test_123", webhook_secret=WHSEC, transport=httpx.MockTransport(handler))
    session = adapter.checkout_create(request_for(_Case))
    (req,) = seen
    assert req.method == "POST"
    assert str(req.url) == "https://api.stripe.com/v1/checkout/sessions"
    assert req.headers["Authorization"] == "Bearer sk_test_123"
    assert req.headers["Idempotency-Key"] == "relance-checkout-1-abc"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(req.content.decode()).items()}
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][unit_amount]"] == "12050"  # cents, never a float
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["line_items[0][quantity]"] == "1"
    assert form["metadata[case_id]"] == "42"
    assert form["metadata[case_reference]"] == "RL-ABCDEFGH"
    assert form["payment_intent_data[metadata][case_id]"] == "42"
    assert form["client_reference_id"] == "RL-ABCDEFGH"
    assert form["success_url"].endswith("/pay/return/")
    assert form["locale"] == "fr"
    assert session.session_id.startswith("cs_test_")
    assert session.redirect_url.startswith("https://checkout.stripe.com/")


def test_stripe_error_body_becomes_a_psp_error():
    error = {"error": {"type": "invalid_request_error", "code": "amount_too_small", "message": "Amount too small"}}
    adapter = StripeAdapter(
        secret_key="sk_test_123",
        webhook_secret=WHSEC,
        transport=httpx.MockTransport(lambda r: httpx.Response(400, json=error)),
    )
    with pytest.raises(PspError) as exc:
        adapter.checkout_create(request_for(_Case))
    assert "Amount too small" in str(exc.value)
    assert exc.value.fields["provider_code"] == "amount_too_small"


def test_stripe_signature_follows_the_documented_scheme():
    payload = b'{"id": "evt_1"}'
    now = datetime.now(UTC)
    header = stripe_signature_header(secret=WHSEC, payload=payload, timestamp=int(now.timestamp()))
    assert stripe_signature_valid(secret=WHSEC, payload=payload, header=header, now=now)
    # Another secret, another body, a stale timestamp (replay), or no v1: refused.
    assert not stripe_signature_valid(secret="whsec_other", payload=payload, header=header, now=now)
    assert not stripe_signature_valid(secret=WHSEC, payload=payload + b" ", header=header, now=now)
    assert not stripe_signature_valid(secret=WHSEC, payload=payload, header=header, now=now + timedelta(minutes=6))
    assert not stripe_signature_valid(secret=WHSEC, payload=payload, header=header.split(",")[0], now=now)
    # Several v1 signatures (secret rotation): one match is enough; v0 is ignored.
    rotated = header.replace("v1=", "v1=00ff,v0=abcd,v1=")
    assert stripe_signature_valid(secret=WHSEC, payload=payload, header=rotated, now=now)


def test_stripe_webhook_with_a_bad_signature_raises():
    adapter = StripeAdapter(secret_key="sk_test_123", webhook_secret=WHSEC)
    with pytest.raises(WebhookSignatureError):
        adapter.webhook_events(body=b"{}", headers={"stripe-signature": "t=1,v1=00"}, now=datetime.now(UTC))


# --- Mollie: request format ----------------------------------------------------------------------------


def test_mollie_payment_request_is_json_with_string_amount():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=sample("mollie_payment_created.json"))

    adapter = MollieAdapter(api_key="test_dHar4XY7LxsDOtmnkVtjNVWXLSlXsM", transport=httpx.MockTransport(handler))
    session = adapter.checkout_create(request_for(_Case))
    (req,) = seen
    assert (req.method, str(req.url)) == ("POST", "https://api.mollie.com/v2/payments")
    assert req.headers["Authorization"] == "Bearer test_dHar4XY7LxsDOtmnkVtjNVWXLSlXsM"
    assert req.headers["Idempotency-Key"] == "relance-checkout-1-abc"
    body = json.loads(req.content)
    assert body["amount"] == {"currency": "EUR", "value": "120.50"}
    assert body["redirectUrl"].endswith("/pay/return/")
    assert body["webhookUrl"] == "https://relance.example/hooks/psp/mollie"
    assert body["metadata"] == {"case_id": "42", "case_reference": "RL-ABCDEFGH"}
    assert body["method"] == "creditcard"
    assert body["locale"] == "fr_FR"
    assert session.session_id == session.payment_ref == "tr_5B8cwPMGnU"
    assert session.redirect_url == "https://www.mollie.com/checkout/select-method/5B8cwPMGnU"


@pytest.mark.parametrize(("minor", "text"), [(12050, "120.50"), (100, "1.00"), (5, "0.05"), (1000000, "10000.00")])
def test_mollie_values_have_exactly_two_decimals(minor, text):
    assert mollie_value(Money(minor, "EUR")) == text


def test_reversal_split_takes_overpayment_first_then_last_claim_first():
    split = reversal_split(700, overpayment=100, claims=[("claim:1", 500), ("claim:2", 400)])
    assert [(t.key, t.amount) for t in split] == [("overpayment", 100), ("claim:2", 400), ("claim:1", 200)]
    with pytest.raises(ValueError):
        reversal_split(1001, overpayment=100, claims=[("claim:1", 500), ("claim:2", 400)])


# --- Webhooks through the view, applied once ----------------------------------------------------------


def _stripe_settings(settings):
    settings.RELANCE_CARD_PSP = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.STRIPE_WEBHOOK_SECRET = WHSEC


def _event_for(case, name: str, **obj_changes) -> dict:
    event = copy.deepcopy(sample(name))
    obj = event["data"]["object"]
    if obj.get("metadata"):
        obj["metadata"] = {"case_id": str(case.pk), "case_reference": case.reference}
    obj.update(obj_changes)
    return event


def _post_stripe(event: dict, secret: str = WHSEC):
    body = json.dumps(event).encode()
    header = stripe_signature_header(secret=secret, payload=body, timestamp=int(time.time()))
    return Client().post(
        "/hooks/psp/stripe", data=body, content_type="application/json", headers={"stripe-signature": header}
    )


@pytest.mark.django_db
def test_a_signed_checkout_completed_records_one_card_payment_even_when_delivered_twice(place, settings):
    _stripe_settings(settings)
    case = place("INV-1", "120.50").case
    event = _event_for(case, "stripe_event_checkout_completed.json")

    first = _post_stripe(event)
    assert first.status_code == 200, first.content
    assert first.content == b"applied"
    second = _post_stripe(event)
    assert second.status_code == 200
    assert second.content == b"duplicate"

    (payment,) = Payment.objects.filter(case=case)
    assert payment.method == "card"
    assert payment.external_ref == "stripe:pi_3PqBj92eZvKYlo2C1lFqTj0m"
    assert payment.amount_minor == 12050
    case.refresh_from_db()
    assert case.status == "paid"
    assert PspWebhookEvent.objects.filter(provider="stripe").count() == 1
    # FR-COL-13: a receipt with its allocation and the remaining balance; FR-COL-12: the creditor is told.
    receipt = Receipt.objects.get(payment=payment)
    assert receipt.remaining_minor == 0
    assert receipt.allocation[0]["principal"] == 12050
    assert CreditorNotification.objects.filter(case=case, kind="payment.received").count() == 1


@pytest.mark.django_db
def test_a_forged_or_unsigned_stripe_webhook_is_refused_and_changes_nothing(place, settings):
    _stripe_settings(settings)
    case = place("INV-1", "120.50").case
    event = _event_for(case, "stripe_event_checkout_completed.json")
    assert _post_stripe(event, secret="whsec_attacker").status_code == 403
    assert (
        Client().post("/hooks/psp/stripe", data=json.dumps(event), content_type="application/json").status_code == 403
    )
    assert not Payment.objects.exists()
    assert not PspWebhookEvent.objects.exists()


@pytest.mark.django_db
def test_an_unconfigured_provider_answers_404(settings):
    settings.STRIPE_SECRET_KEY = ""
    assert Client().post("/hooks/psp/stripe", data="{}", content_type="application/json").status_code == 404


@pytest.mark.django_db
def test_a_refund_that_overtakes_its_payment_waits_then_is_applied_once(place, settings):
    _stripe_settings(settings)
    case = place("INV-1", "120.50").case
    refund = _event_for(case, "stripe_event_charge_refunded.json")
    assert _post_stripe(refund).content == b"pending"
    assert _post_stripe(_event_for(case, "stripe_event_checkout_completed.json")).content == b"applied"
    assert _post_stripe(refund).content == b"duplicate"

    payment = Payment.objects.get(case=case)
    (reversal,) = PaymentReversal.objects.filter(payment=payment)
    assert (reversal.kind, reversal.amount_minor) == ("refund", 2050)
    assert PspWebhookEvent.objects.get(event_id=refund["id"]).status == "applied"
    # 120.50 paid, 20.50 refunded: 20.50 owed again; the case reopens and chasing resumes.
    assert case_outstanding_minor(case=case) == 2050
    case.refresh_from_db()
    assert case.status == "active"
    assert case.next_action_at is not None


@pytest.mark.django_db
def test_a_chargeback_reverses_the_payment_through_the_ledger(place, settings):
    _stripe_settings(settings)
    case = place("INV-1", "120.50").case
    _post_stripe(_event_for(case, "stripe_event_checkout_completed.json"))
    trust = f"trust:{case.creditor.agency_id}:EUR"
    payable = f"creditor:{case.creditor_id}:payable:EUR"
    assert account_balance(key=trust) == 12050
    assert account_balance(key=payable) == -12050

    assert _post_stripe(_event_for(case, "stripe_event_dispute_created.json")).content == b"applied"
    reversal = PaymentReversal.objects.get(kind="chargeback")
    assert reversal.amount_minor == 12050
    txn = LedgerTransaction.objects.get(pk=reversal.ledger_transaction_id)
    assert txn.code == "payment.chargeback"
    assert account_balance(key=trust) == 0
    assert account_balance(key=payable) == 0
    assert case_outstanding_minor(case=case) == 12050
    case.refresh_from_db()
    assert case.status == "active"
    assert CreditorNotification.objects.filter(case=case, kind="payment.reversed").count() == 1


@pytest.mark.django_db
def test_a_partial_card_payment_is_recorded_as_partial(place, settings):
    _stripe_settings(settings)
    case = place("INV-1", "120.50").case
    event = _event_for(case, "stripe_event_checkout_completed.json", amount_total=5000, amount_subtotal=5000)
    assert _post_stripe(event).content == b"applied"
    assert case_outstanding_minor(case=case) == 7050
    case.refresh_from_db()
    assert case.status != "paid"
    assert CreditorNotification.objects.filter(case=case, kind="payment.partial").count() == 1
    assert Receipt.objects.get(payment__case=case).remaining_minor == 7050


@pytest.mark.django_db
def test_checkout_start_refuses_more_than_owed_and_records_the_page(place):
    case = place("INV-1", "120.50").case
    adapter = StripeAdapter(
        secret_key="sk_test_123",
        webhook_secret=WHSEC,
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=sample("stripe_checkout_session.json"))),
    )
    kwargs = {
        "case": case,
        "adapter": adapter,
        "success_url": "https://x/ok",
        "cancel_url": "https://x/no",
        "webhook_url": "https://x/hook",
        "locale": "fr",
        "actor": Actor.for_debtor(case_id=case.pk),
    }
    with pytest.raises(DomainError) as exc:
        card_checkout_start(amount=Money.parse("120.51", "EUR"), **kwargs)
    assert getattr(exc.value, "code", "") == "payment.amount"
    checkout = card_checkout_start(amount=Money.parse("50", "EUR"), **kwargs)
    assert checkout.amount_minor == 5000
    assert checkout.checkout_url.startswith("https://checkout.stripe.com/")


# --- Mollie: the webhook names an id; the payment is fetched from the API --------------------------


@pytest.fixture
def mollie_api(settings):
    fake = FakeProviderApi()
    settings.RELANCE_CARD_PSP = "mollie"
    settings.MOLLIE_API_KEY = "test_dHar4XY7LxsDOtmnkVtjNVWXLSlXsM"
    settings.MOLLIE_API_BASE = fake.url
    yield fake
    fake.close()


def _mollie_state(case, **changes) -> dict:
    payment = copy.deepcopy(sample("mollie_payment_paid.json"))
    payment["metadata"] = {"case_id": str(case.pk), "case_reference": case.reference}
    payment.update(changes)
    return payment


@pytest.mark.django_db
def test_mollie_webhook_fetches_the_payment_and_applies_each_state_once(place, mollie_api):
    case = place("INV-1", "120.50").case
    mollie_api.routes[("GET", "/v2/payments/tr_5B8cwPMGnU")] = (200, _mollie_state(case))
    hook = lambda: Client().post(  # noqa: E731
        "/hooks/psp/mollie", data="id=tr_5B8cwPMGnU", content_type="application/x-www-form-urlencoded"
    )
    assert hook().content == b"applied"
    assert hook().content == b"duplicate"
    method, path, headers, _ = mollie_api.requests[0]
    assert (method, path) == ("GET", "/v2/payments/tr_5B8cwPMGnU")
    assert headers["authorization"] == "Bearer test_dHar4XY7LxsDOtmnkVtjNVWXLSlXsM"
    payment = Payment.objects.get(case=case)
    assert (payment.external_ref, payment.amount_minor) == ("mollie:tr_5B8cwPMGnU", 12050)

    # Later, Mollie says 20.00 were charged back: only that is reversed, once.
    mollie_api.routes[("GET", "/v2/payments/tr_5B8cwPMGnU")] = (
        200,
        _mollie_state(case, amountChargedBack={"value": "20.00", "currency": "EUR"}),
    )
    assert hook().content == b"duplicate,applied"
    assert hook().content == b"duplicate,duplicate"
    assert PaymentReversal.objects.get(payment=payment).amount_minor == 2000
    assert case_outstanding_minor(case=case) == 2000


def _chargeback(reversed_at: str | None = None) -> dict:
    return {
        "resource": "chargeback",
        "id": "chb_n9z0tp",
        "amount": {"value": "20.00", "currency": "EUR"},
        "settlementAmount": {"value": "-20.00", "currency": "EUR"},
        "createdAt": "2026-11-28T09:00:00+00:00",
        "reversedAt": reversed_at,
        "paymentId": "tr_5B8cwPMGnU",
    }


@pytest.mark.django_db
def test_a_mollie_chargeback_the_merchant_won_brings_the_money_back_once(place, mollie_api):
    case = place("INV-1", "120.50").case
    route = ("GET", "/v2/payments/tr_5B8cwPMGnU")
    hook = lambda: Client().post(  # noqa: E731
        "/hooks/psp/mollie", data="id=tr_5B8cwPMGnU", content_type="application/x-www-form-urlencoded"
    )
    mollie_api.routes[route] = (200, _mollie_state(case))
    hook()
    charged = {"value": "20.00", "currency": "EUR"}
    mollie_api.routes[route] = (
        200,
        _mollie_state(case, amountChargedBack=charged, _embedded={"chargebacks": [_chargeback()]}),
    )
    assert hook().content == b"duplicate,applied"
    assert case_outstanding_minor(case=case) == 2000

    won = _chargeback(reversed_at="2026-12-20T10:00:00+00:00")
    mollie_api.routes[route] = (200, _mollie_state(case, amountChargedBack=charged, _embedded={"chargebacks": [won]}))

    assert hook().content == b"duplicate,duplicate,applied"
    assert hook().content == b"duplicate,duplicate,duplicate"
    assert mollie_api.queries[-1] == "embed=chargebacks"
    back = Payment.objects.get(case=case, external_ref="mollie:tr_5B8cwPMGnU:reinstated:chb_n9z0tp")
    assert back.amount_minor == 2000 and back.method == "card"
    assert case_outstanding_minor(case=case) == 0


@pytest.mark.django_db
def test_a_mollie_chargeback_first_seen_already_reversed_is_not_counted_twice(place, mollie_api):
    case = place("INV-1", "120.50").case
    won = _chargeback(reversed_at="2026-12-20T10:00:00+00:00")
    # Whatever Mollie's cumulative field says by then, the embedded chargeback is counted.
    state = _mollie_state(
        case, amountChargedBack={"value": "0.00", "currency": "EUR"}, _embedded={"chargebacks": [won]}
    )
    mollie_api.routes[("GET", "/v2/payments/tr_5B8cwPMGnU")] = (200, state)

    response = Client().post(
        "/hooks/psp/mollie", data="id=tr_5B8cwPMGnU", content_type="application/x-www-form-urlencoded"
    )

    assert response.content == b"applied,applied,applied"  # paid, charged back, won back
    assert case_outstanding_minor(case=case) == 0
    assert Payment.objects.filter(case=case).count() == 2
    assert PaymentReversal.objects.get().amount_minor == 2000


@pytest.mark.django_db
def test_mollie_webhook_with_an_unknown_id_changes_nothing(mollie_api):
    response = Client().post(
        "/hooks/psp/mollie", data="id=tr_unknown", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert not PspWebhookEvent.objects.exists()
    bad = Client().post("/hooks/psp/mollie", data="id=evil", content_type="application/x-www-form-urlencoded")
    assert bad.status_code == 403


@pytest.mark.django_db
def test_events_for_a_case_in_another_currency_are_kept_not_applied(place):
    case = place("INV-1", "120.50").case
    adapter_events = StripeAdapter(secret_key="sk", webhook_secret=WHSEC)
    assert adapter_events.name == "stripe"
    from relance.payments.psp.stripe import stripe_event

    event = stripe_event(_event_for(case, "stripe_event_checkout_completed.json", currency="usd"))
    assert psp_events_apply(events=[event], actor=Actor.system("t")) == ["failed"]
    assert PspWebhookEvent.objects.get().status == "ignored"
    assert not Payment.objects.exists()


def test_psp_adapter_needs_its_keys(settings):
    settings.RELANCE_CARD_PSP = "stripe"
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(DomainError) as exc:
        psp_adapter()
    assert getattr(exc.value, "code", "") == "psp.not_configured"


# --- Properties ------------------------------------------------------------------------------------------


@given(
    overpayment=st.integers(min_value=0, max_value=10**9),
    claims=st.lists(st.integers(min_value=0, max_value=10**9), max_size=6),
    data=st.data(),
)
def test_reversal_split_takes_exactly_the_amount_and_never_more_than_held(overpayment, claims, data):
    held = overpayment + sum(claims)
    keyed = [(f"claim:{i}", amount) for i, amount in enumerate(claims)]
    if held == 0:
        return
    amount = data.draw(st.integers(min_value=1, max_value=held))
    split = reversal_split(amount, overpayment=overpayment, claims=keyed)
    assert sum(t.amount for t in split) == amount
    limits = {"overpayment": overpayment, **dict(keyed)}
    assert all(0 < t.amount <= limits[t.key] for t in split)


@given(header=st.text(max_size=200), payload=st.binary(max_size=200))
def test_any_stripe_signature_header_is_answered_without_crashing(header, payload):
    assert stripe_signature_valid(secret=WHSEC, payload=payload, header=header, now=datetime.now(UTC)) is False


@pytest.mark.django_db
def test_an_expired_checkout_is_closed_and_books_nothing(place, settings):
    _stripe_settings(settings)
    case = place("INV-1", "120.50").case
    from relance.payments.models import PspCheckout

    PspCheckout.objects.create(
        case=case,
        provider="stripe",
        session_id="cs_test_x",
        amount_minor=12050,
        currency="EUR",
        checkout_url="https://x",
    )
    event = {
        "id": "evt_expired",
        "type": "checkout.session.expired",
        "created": int(time.time()),
        "data": {"object": {"id": "cs_test_x", "object": "checkout.session", "payment_status": "unpaid"}},
    }
    assert _post_stripe(event).content == b"applied"
    assert PspCheckout.objects.get().status == "failed"
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_won_chargeback_brings_the_money_back_as_a_new_payment(place, settings):
    _stripe_settings(settings)
    case = place("INV-1", "120.50").case
    _post_stripe(_event_for(case, "stripe_event_checkout_completed.json"))
    _post_stripe(_event_for(case, "stripe_event_dispute_created.json"))
    assert case_outstanding_minor(case=case) == 12050
    won = _event_for(case, "stripe_event_dispute_created.json", status="won")
    won["id"], won["type"] = "evt_reinstated_1", "charge.dispute.funds_reinstated"
    assert _post_stripe(won).content == b"applied"
    assert _post_stripe(won).content == b"duplicate"
    assert case_outstanding_minor(case=case) == 0
    assert Payment.objects.filter(case=case, method="card").count() == 2
    case.refresh_from_db()
    assert case.status == "paid"
