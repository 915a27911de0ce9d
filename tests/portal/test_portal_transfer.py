"""Paying by bank transfer on the portal: trust IBAN, RF reference and EPC QR code, after verification.

FR-COL-02: the only account shown is the agency's trust account. The QR code is checked by building
the EPC069-12 payload expected here, line by line, and comparing the QR code segno makes of it with
the image on the page (the portal's CSP allows ``img-src data:``).
"""

from __future__ import annotations

import re
from html import unescape

import pytest
import segno
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from relance.cases.links import portal_token
from relance.core.money import Money
from relance.payments.models import Payment
from relance.payments.reference import case_rf_reference, rf_format
from relance.payments.services import payment_record
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

TRUST_IBAN = "FR7630006000011234567890189"


def _path(case, page: str = "entry") -> str:
    return reverse(f"portal:{page}", kwargs={"token": portal_token(case_id=case.pk, reference=case.reference)})


def _verified_client(case) -> Client:
    client = Client()
    assert client.post(_path(case), {"postcode": "33000"}).status_code == 302
    return client


def _qr_src(html: str) -> str:
    match = re.search(r'<img id="transfer-qr" src="([^"]+)"', html)
    assert match, "no QR code image on the page"
    return unescape(match.group(1))


@pytest.fixture
def trust(world):
    world.agency.trust_iban = "FR76 3000 6000 0112 3456 7890 189"
    world.agency.save()
    return world


def test_the_verified_page_shows_the_transfer_details_and_the_epc_qr_code(trust, place):
    case = place("INV-1", "120.50").case
    rf = case_rf_reference(case.reference)

    response = _verified_client(case).get(_path(case, "case"))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="transfer"' in html
    assert "FR76 3000 6000 0112 3456 7890 189" in html  # the trust account, in groups of 4
    assert "AGRIFRPPXXX" in html  # the BIC the IBAN's bank code gives
    assert "Recouvrement Test SAS" in html  # the account holder: the agency (FR-COL-02)
    assert rf_format(rf) in html
    assert "120,50" in html
    assert "Indiquez exactement cette référence" in html  # French by default
    expected = "\n".join(
        ["BCD", "002", "1", "SCT", "", "Recouvrement Test SAS", TRUST_IBAN, "EUR120.5", "", rf]
    ).encode()
    qr = segno.make_qr(expected, error="m", boost_error=False)
    assert qr.version <= 13
    assert _qr_src(html) == qr.svg_data_uri(scale=4, border=4, dark="#000", light="#fff")
    assert _qr_src(html).startswith("data:image/svg+xml")  # CSP: img-src 'self' data:
    assert b"BCD" in expected and TRUST_IBAN.encode() in expected and rf.encode() in expected


def test_after_a_partial_payment_the_qr_code_asks_for_what_is_left(trust, place):
    case = place("INV-1", "120.50").case
    payment_record(
        case=case,
        amount=Money(2050, "EUR"),
        method=Payment.Method.TRANSFER,
        external_ref="t-1",
        actor=Actor.system("tests"),
    )
    html = _verified_client(case).get(_path(case, "case")).content.decode()
    expected = f"BCD\n002\n1\nSCT\n\nRecouvrement Test SAS\n{TRUST_IBAN}\nEUR100\n\n{case_rf_reference(case.reference)}"
    assert _qr_src(html) == segno.make_qr(expected.encode(), error="m", boost_error=False).svg_data_uri(
        scale=4, border=4, dark="#000", light="#fff"
    )


def test_the_page_reads_in_english_too(trust, place):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)
    client.cookies["django_language"] = "en"
    html = client.get(_path(case, "case")).content.decode()
    assert "Pay by bank transfer" in html
    assert "Enter exactly this reference" in html
    assert "€120.50" in html


def test_no_transfer_details_before_verification(trust, place):
    case = place("INV-1", "120.50").case
    client = Client()
    entry = client.get(_path(case))
    assert b"transfer-qr" not in entry.content
    assert b"FR76" not in entry.content
    assert case_rf_reference(case.reference).encode() not in entry.content
    # The case page itself sends an unverified visitor back to the verification step.
    page = client.get(_path(case, "case"))
    assert page.status_code == 302
    assert b"transfer-qr" not in page.content


@pytest.mark.parametrize("iban", ["", "FR7630006000011234567890188", "NOT-AN-IBAN"])
def test_no_qr_code_without_a_valid_trust_iban(world, place, iban):
    world.agency.trust_iban = iban
    world.agency.save()
    case = place("INV-1", "120.50").case
    html = _verified_client(case).get(_path(case, "case")).content.decode()
    assert 'id="transfer"' not in html
    assert "transfer-qr" not in html
    if iban:
        assert iban not in html


def test_no_transfer_once_nothing_is_left_to_pay(trust, place):
    case = place("INV-1", "120.50").case
    payment_record(
        case=case,
        amount=Money(12050, "EUR"),
        method=Payment.Method.TRANSFER,
        external_ref="t-2",
        actor=Actor.system("t"),
    )
    html = _verified_client(case).get(_path(case, "case")).content.decode()
    assert "transfer-qr" not in html
    assert 'id="paid-message"' in html


def test_the_agency_refuses_an_invalid_trust_iban(world):
    world.agency.trust_iban = "FR7630006000011234567890188"
    with pytest.raises(ValidationError) as caught:
        world.agency.full_clean()
    assert "trust_iban" in caught.value.message_dict
    world.agency.trust_iban = TRUST_IBAN
    world.agency.full_clean()
