"""Paying by bank transfer on the portal: trust IBAN, RF reference and EPC QR code, after verification.

FR-COL-02: the only account shown is the agency's trust account. The QR code is checked by building
the EPC069-12 payload expected here, line by line, and comparing the QR code segno makes of it with
the image the page links (its own URL on the portal, same access as the page, cached by the browser
until what it encodes changes).
"""

from __future__ import annotations

import io
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
from relance.tenancy.models import Agency, Creditor

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


def _svg(payload: str) -> bytes:
    """The SVG segno draws of an EPC payload, as the portal serves it."""
    out = io.BytesIO()
    segno.make_qr(payload.encode(), error="m", boost_error=False).save(
        out, kind="svg", scale=4, border=4, dark="#000", light="#fff"
    )
    return out.getvalue()


def _paid_by_transfer(case, cents: int, ref: str) -> None:
    payment_record(
        case=case,
        amount=Money(cents, "EUR"),
        method=Payment.Method.TRANSFER,
        external_ref=ref,
        actor=Actor.system("tests"),
    )


def _qr_image(client: Client, html: str) -> bytes:
    response = client.get(_qr_src(html))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    return response.content


@pytest.fixture
def trust(world):
    world.agency.trust_iban = "FR76 3000 6000 0112 3456 7890 189"
    world.agency.save()
    return world


def test_the_verified_page_shows_the_transfer_details_and_the_epc_qr_code(trust, place):
    case = place("INV-1", "120.50").case
    rf = case_rf_reference(case.reference)

    client = _verified_client(case)
    response = client.get(_path(case, "case"))

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
    # Our own origin (CSP img-src 'self'), under this case's link.
    assert re.fullmatch(r"/p/[^/]+/dossier/transfer-qr\.svg\?v=[0-9a-f]{16}", _qr_src(html))
    assert _qr_image(client, html) == _svg(expected.decode())
    assert b"BCD" in expected and TRUST_IBAN.encode() in expected and rf.encode() in expected


def test_after_a_partial_payment_the_qr_code_asks_for_what_is_left(trust, place):
    case = place("INV-1", "120.50").case
    _paid_by_transfer(case, 2050, "t-1")
    client = _verified_client(case)
    html = client.get(_path(case, "case")).content.decode()
    expected = f"BCD\n002\n1\nSCT\n\nRecouvrement Test SAS\n{TRUST_IBAN}\nEUR100\n\n{case_rf_reference(case.reference)}"
    assert _qr_image(client, html) == _svg(expected)


def test_the_qr_image_is_cached_until_what_it_encodes_changes(trust, place):
    case = place("INV-1", "120.50").case
    client = _verified_client(case)
    html = client.get(_path(case, "case")).content.decode()
    first = client.get(_qr_src(html))
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, max-age=1800"  # never in a shared cache: personal data
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert _qr_src(html).endswith("?v=" + etag.strip('"')[:16])  # the page links this very image

    # The browser asks again with its ETag: nothing to draw or send.
    again = client.get(_qr_src(html), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    # The same details give the same image and the same ETag, from another browser too.
    assert _verified_client(case).get(_path(case, "transfer_qr"))["ETag"] == etag

    _paid_by_transfer(case, 2050, "t-3")
    html_after = client.get(_path(case, "case")).content.decode()
    assert _qr_src(html_after) != _qr_src(html)  # a new URL: the browser's copy is not used
    stale = client.get(_qr_src(html), HTTP_IF_NONE_MATCH=etag)  # the old ETag no longer matches
    assert stale.status_code == 200
    assert stale["ETag"] != etag
    assert stale.content == _qr_image(client, html_after)
    assert b"EUR100" not in stale.content  # (the payload is drawn, not written)
    rf = case_rf_reference(case.reference)
    assert stale.content == _svg(f"BCD\n002\n1\nSCT\n\nRecouvrement Test SAS\n{TRUST_IBAN}\nEUR100\n\n{rf}")

    world = trust
    world.agency.legal_name = "Recouvrement Renommé SAS"
    world.agency.save()
    renamed = client.get(_path(case, "transfer_qr"))
    assert renamed["ETag"] != stale["ETag"]
    assert renamed.content == _svg(f"BCD\n002\n1\nSCT\n\nRecouvrement Renommé SAS\n{TRUST_IBAN}\nEUR100\n\n{rf}")


def test_the_qr_image_needs_the_verification_of_that_very_case(trust, place):
    mine = place("INV-1", "120.50").case
    same_creditor = place("INV-2", "80.00", email="paul@example.fr", last_name="Durand").case
    other_creditor = place(
        "OTHER-1", "60.00", creditor=trust.other_creditor, email="lea@example.fr", last_name="Martin"
    ).case
    agency = Agency.objects.create(
        legal_name="Autre Agence SAS", address="3 rue Autre, 69001 Lyon", trust_iban=TRUST_IBAN
    )
    foreign = Creditor.objects.create(agency=agency, slug="foreign", legal_name="Foreign SAS", mode="B")
    other_tenant = place("FOREIGN-1", "70.00", creditor=foreign, email="tom@example.fr", last_name="Petit").case

    assert Client().get(_path(mine, "transfer_qr")).status_code == 403  # not verified at all
    client = _verified_client(mine)
    assert client.get(_path(mine, "transfer_qr")).status_code == 200
    for case in (same_creditor, other_creditor, other_tenant):
        response = client.get(_path(case, "transfer_qr"))
        assert response.status_code == 403, case.reference
        assert response.get("ETag") is None
        assert b"<svg" not in response.content
    bad = _path(mine, "transfer_qr").replace(portal_token(case_id=mine.pk, reference=mine.reference), "nope")
    assert client.get(bad).status_code == 404


def test_no_qr_image_when_no_transfer_is_offered(world, place):
    world.agency.trust_iban = "FR7630006000011234567890188"  # invalid: never printed
    world.agency.save()
    case = place("INV-1", "120.50").case
    assert _verified_client(case).get(_path(case, "transfer_qr")).status_code == 404


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
    _paid_by_transfer(case, 12050, "t-2")
    client = _verified_client(case)
    html = client.get(_path(case, "case")).content.decode()
    assert "transfer-qr" not in html
    assert 'id="paid-message"' in html
    assert client.get(_path(case, "transfer_qr")).status_code == 404


def test_the_agency_refuses_an_invalid_trust_iban(world):
    world.agency.trust_iban = "FR7630006000011234567890188"
    with pytest.raises(ValidationError) as caught:
        world.agency.full_clean()
    assert "trust_iban" in caught.value.message_dict
    world.agency.trust_iban = TRUST_IBAN
    world.agency.full_clean()
