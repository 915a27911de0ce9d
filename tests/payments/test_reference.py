"""RF creditor references (ISO 11649) and EPC QR payloads: pure rules, no database.

Test vectors from DOMAIN-RULES §6.1 PAY-02 (the first is python-stdnum's doctest).
"""

from __future__ import annotations

import pytest
import segno
from hypothesis import given
from hypothesis import strategies as st
from stdnum import iso11649

from relance.core.money import Money
from relance.payments.reference import (
    case_rf_reference,
    rf_body,
    rf_candidates,
    rf_find,
    rf_format,
    rf_from_body,
    rf_is_valid,
)
from relance.payments.transfer import epc_payload, epc_qr, iban_parse, transfer_details

TRUST_IBAN = "FR7630006000011234567890189"


@pytest.mark.parametrize(
    ("body", "rf"),
    [
        ("539007547034", "RF18539007547034"),
        ("DOS2026000123", "RF75DOS2026000123"),
        ("ABC", "RF45ABC"),
        ("1", "RF741"),
    ],
)
def test_check_digits_match_the_worked_examples(body, rf):
    assert rf_from_body(body) == rf
    assert iso11649.is_valid(rf)


def test_a_case_reference_gives_its_rf_without_the_dash():
    assert rf_body("RL-7KQ2M9XA") == "RL7KQ2M9XA"
    assert case_rf_reference("RL-7KQ2M9XA") == "RF41RL7KQ2M9XA"
    assert case_rf_reference("rl-7kq2m9xa") == "RF41RL7KQ2M9XA"
    assert rf_format("RF41RL7KQ2M9XA") == "RF41 RL7K Q2M9 XA"
    assert rf_format("RF18539007547034") == "RF18 5390 0754 7034"


@pytest.mark.parametrize("reference", ["---", "", "X" * 22])
def test_a_reference_without_a_usable_body_is_refused(reference):
    with pytest.raises(ValueError):
        case_rf_reference(reference)


@pytest.mark.parametrize(
    "text",
    [
        "RF18 5390 0754 7034",
        "rf18 5390 0754 7034",
        "Virement RF18-5390-0754-7034 facture F-12",
        "Paiement dossier RF18 5390 0754 7034 FACTURE 12",
        "REF: RF 18 5390 0754 7034.",
        "RF1853900754\n7034 merci",
        "RF18539007547034FACTURE",
        "RF18539007547034",
    ],
)
def test_the_reference_is_found_however_it_was_typed(text):
    assert rf_find(text) == "RF18539007547034"


@pytest.mark.parametrize(
    "text",
    ["", "Virement facture 12", "RF17 5390 0754 7034", "RF18 5390 0754 7043", "RFAB 1234", "perf 12"],
)
def test_no_reference_or_a_wrong_check_digit_finds_nothing(text):
    assert rf_find(text) is None


def test_every_valid_reference_in_the_text_is_a_candidate_in_order():
    text = "RF45 ABC et RF18 5390 0754 7034"
    assert rf_candidates(text)[:2] == ["RF45ABC", "RF18539007547034"]


case_references = st.one_of(
    st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=8).map(lambda s: f"RL-{s}"),
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789- ./_", min_size=1, max_size=20
    ).filter(lambda s: any(c.isascii() and c.isalnum() for c in s)),
)


@given(reference=case_references)
def test_any_case_reference_gives_a_valid_rf_that_round_trips(reference):
    rf = case_rf_reference(reference)
    assert rf == case_rf_reference(reference)  # deterministic
    assert len(rf) <= 25
    assert rf.isascii() and rf.isalnum() and rf == rf.upper()
    assert iso11649.is_valid(rf)
    assert rf_is_valid(rf_format(rf))
    printed = rf_format(rf)
    for text in (printed, rf, printed.lower(), printed.replace(" ", "-"), f"Virement {printed} merci beaucoup"):
        assert rf_find(text) == rf, text
    # Cut by a line break, or next to other references: among the candidates the matcher checks.
    for text in (f"{rf[:9]}\n{rf[9:]}", f"Dossier {reference}; {printed.lower()}; facture"):
        assert rf in rf_candidates(text), text


@given(body=st.text(alphabet="0123456789", min_size=1, max_size=21), pos=st.integers(0, 24), digit=st.integers(0, 9))
def test_a_mistyped_digit_never_validates(body, pos, digit):
    # ISO 7064 MOD 97-10 detects every single-digit substitution in a numeric reference.
    rf = rf_from_body(body)
    pos = 2 + pos % (len(rf) - 2)
    if str(digit) != rf[pos]:
        assert not iso11649.is_valid(rf[:pos] + str(digit) + rf[pos + 1 :])


def test_the_epc_payload_carries_the_structured_reference_and_nothing_free():
    payload = epc_payload(
        holder="Recouvrement Test SAS", iban=TRUST_IBAN, amount=Money(12050, "EUR"), reference="RF41RL7KQ2M9XA"
    )
    assert payload.decode().split("\n") == [
        "BCD",
        "002",
        "1",
        "SCT",
        "",
        "Recouvrement Test SAS",
        TRUST_IBAN,
        "EUR120.5",
        "",
        "RF41RL7KQ2M9XA",
    ]


def test_the_qr_code_encodes_exactly_that_payload():
    amount = Money(10000, "EUR")
    qr = epc_qr(holder="Agence", iban=TRUST_IBAN, amount=amount, reference="RF41RL7KQ2M9XA")
    payload = epc_payload(holder="Agence", iban=TRUST_IBAN, amount=amount, reference="RF41RL7KQ2M9XA")
    assert b"\nEUR100\n" in payload
    assert qr.error == "M" and qr.version <= 13
    assert qr.matrix == segno.make_qr(payload, error="m", boost_error=False).matrix


def test_transfer_details_need_a_valid_iban_and_an_amount_in_euros():
    ok = transfer_details(
        holder="Agence",
        iban="FR76 3000 6000 0112 3456 7890 189",
        amount=Money(5000, "EUR"),
        case_reference="RL-7KQ2M9XA",
    )
    assert ok is not None
    assert ok.iban.compact == TRUST_IBAN
    assert ok.iban.formatted == "FR76 3000 6000 0112 3456 7890 189"
    assert ok.reference_display == "RF41 RL7K Q2M9 XA"
    assert ok.qr_svg_data_uri().startswith("data:image/svg+xml")
    for iban, amount in [
        ("", Money(5000, "EUR")),
        ("FR7630006000011234567890188", Money(5000, "EUR")),  # wrong check digits
        ("NOT AN IBAN", Money(5000, "EUR")),
        (TRUST_IBAN, Money(0, "EUR")),
        (TRUST_IBAN, Money(5000, "GBP")),
    ]:
        assert transfer_details(holder="Agence", iban=iban, amount=amount, case_reference="RL-7KQ2M9XA") is None
    assert iban_parse("FR7630006000011234567890188") is None
