"""claim_place against the database: debtor matching, case consolidation, ledger placement.

Invariant 2: intake is idempotent per (creditor, external reference). Invariant 8: bad input gets a
field-level error and nothing is half-written. Invariant 1: the claim's balance is its ledger account.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from django.db import connection

from relance.audit.models import AuditEvent
from relance.cases.models import Case, CaseClaim
from relance.cases.selectors import case_claim_balances, case_outstanding_minor
from relance.claims.models import Claim, Debtor
from relance.intake.services import ClaimValidationError, claim_place
from relance.intake.validate import DebtorData
from relance.ledger.models import LedgerTransaction, Posting
from relance.ledger.services import account_balance
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Debtor, Claim, Case, CaseClaim, LedgerTransaction, Posting, AuditEvent)
    }


def test_placing_creates_debtor_claim_case_and_ledger_placement(world, place):
    before = _counts()

    placed = place("INV-1", "120.50")

    assert placed.created
    after = _counts()
    assert {k: after[k] - before[k] for k in after} == {
        "Debtor": 1,
        "Claim": 1,
        "Case": 1,
        "CaseClaim": 1,
        "LedgerTransaction": 1,
        "Posting": 2,
        "AuditEvent": 4,  # debtor.created, claim.created, case.opened, case.claim_attached
    }
    claim, case = placed.claim, placed.case
    assert claim.original_amount_minor == 12050
    assert claim.currency == "EUR"
    assert claim.creditor == world.creditor
    assert account_balance(key=claim.ledger_key) == 12050
    assert account_balance(key=f"creditor:{world.creditor.pk}:claims:EUR") == -12050
    assert LedgerTransaction.objects.get(code="claim.placed").postings.count() == 2
    assert case.status == "new"
    assert case.creditor == world.creditor
    assert case_outstanding_minor(case=case) == 12050
    debtor = claim.debtor
    assert (debtor.first_name, debtor.last_name, debtor.postcode) == ("Jeanne", "Martin", "33000")
    assert debtor.phone == "+33612345678"  # normalised to E.164
    verbs = set(AuditEvent.objects.values_list("verb", flat=True))
    assert {"debtor.created", "claim.created", "case.opened", "case.claim_attached"} <= verbs


def test_placing_the_same_reference_twice_changes_nothing(place):
    first = place("INV-1", "120.50")
    before = _counts()

    again = place("INV-1", "120.50")

    assert not again.created
    assert again.claim.pk == first.claim.pk
    assert again.case.pk == first.case.pk
    assert _counts() == before
    assert case_outstanding_minor(case=first.case) == 12050


def test_the_same_reference_at_another_creditor_is_another_claim(world, place):
    mine = place("INV-1", "120.50")
    theirs = place("INV-1", "120.50", creditor=world.other_creditor)
    assert theirs.created
    assert theirs.claim.pk != mine.claim.pk
    assert theirs.case.pk != mine.case.pk


def test_two_claims_of_one_debtor_for_one_creditor_share_a_case(place):
    first = place("INV-1", "120.50")
    second = place("INV-2", "30.00", email="JEANNE.MARTIN@example.fr")

    assert second.created
    assert second.case.pk == first.case.pk
    assert second.claim.debtor_id == first.claim.debtor_id
    assert Case.objects.count() == 1
    assert [b.outstanding_minor for b in case_claim_balances(case=first.case)] == [12050, 3000]
    assert case_outstanding_minor(case=first.case) == 15050


def test_one_debtor_across_two_creditors_has_two_cases(world, place):
    mine = place("INV-1", "120.50")
    theirs = place("OTHER-9", "45.00", creditor=world.other_creditor)

    assert Debtor.objects.count() == 1
    assert theirs.claim.debtor_id == mine.claim.debtor_id
    assert theirs.case.pk != mine.case.pk
    assert {mine.case.creditor_id, theirs.case.creditor_id} == {world.creditor.pk, world.other_creditor.pk}


def _with(data, **changes):
    debtor_changes = {k.removeprefix("debtor_"): v for k, v in changes.items() if k.startswith("debtor_")}
    claim_changes = {k: v for k, v in changes.items() if not k.startswith("debtor_")}
    return replace(data, debtor=replace(data.debtor, **debtor_changes), **claim_changes)


TODAY = date.today()
INVALID = [
    pytest.param({"amount": "0"}, "amount", id="amount-zero"),
    pytest.param({"amount": "-12.00"}, "amount", id="amount-negative"),
    pytest.param({"amount": "12,345"}, "amount", id="amount-too-many-decimals"),
    pytest.param({"amount": "douze"}, "amount", id="amount-not-a-number"),
    pytest.param({"amount": "1e30"}, "amount", id="amount-too-large"),
    pytest.param({"currency": "XYZ"}, "currency", id="currency-unknown"),
    pytest.param({"due_date": TODAY - timedelta(days=50)}, "due_date", id="due-before-invoice"),
    pytest.param(
        {"invoice_date": TODAY + timedelta(days=1), "due_date": TODAY + timedelta(days=30)},
        "invoice_date",
        id="invoice-in-the-future",
    ),
    pytest.param({"external_ref": "  "}, "external_ref", id="external-ref-blank"),
    pytest.param({"debtor_email": "jeanne@@example"}, "debtor.email", id="email-bad"),
    pytest.param({"debtor_phone": "12"}, "debtor.phone", id="phone-bad"),
    pytest.param({"debtor_postcode": "3300"}, "debtor.postcode", id="postcode-4-digits"),
    pytest.param({"debtor_postcode": "33O00"}, "debtor.postcode", id="postcode-letter"),
    pytest.param({"debtor_postcode": ""}, "debtor.postcode", id="postcode-missing"),
    pytest.param({"debtor_last_name": " "}, "debtor.last_name", id="person-without-last-name"),
    pytest.param({"debtor_kind": "company"}, "debtor.company_name", id="company-without-name"),
    pytest.param({"external_ref": "R" * 101}, "external_ref", id="external-ref-too-long"),
    pytest.param({"debtor_city": "B" * 101}, "debtor.city", id="city-too-long"),
    pytest.param({"debtor_siren": "1234567890"}, "debtor.siren", id="siren-too-long"),
]


@pytest.mark.parametrize(("changes", "field"), INVALID)
def test_invalid_claims_name_the_field_and_write_nothing(world, claim_data, changes, field):
    data = _with(claim_data("INV-1", "120.50"), **changes)
    before = _counts()

    with pytest.raises(ClaimValidationError) as exc:
        claim_place(creditor=world.creditor, data=data, actor=ACTOR)

    fields = [e["field"] for e in exc.value.fields["errors"]]
    assert field in fields, exc.value.message
    assert exc.value.status == 422
    assert _counts() == before


def test_all_problems_of_a_claim_are_reported_at_once(world, claim_data):
    data = _with(claim_data(), amount="0", debtor_email="nope", debtor_postcode="1")
    with pytest.raises(ClaimValidationError) as exc:
        claim_place(creditor=world.creditor, data=data, actor=ACTOR)
    errors = exc.value.fields["errors"]
    assert {e["field"] for e in errors} == {"amount", "debtor.email", "debtor.postcode"}
    assert all(e["code"] and e["message"] for e in errors)
    assert "debtor.postcode" in exc.value.message


def test_an_invalid_claim_after_valid_ones_leaves_the_valid_ones_alone(world, claim_data, place):
    place("INV-1", "120.50")
    before = _counts()
    with pytest.raises(ClaimValidationError):
        claim_place(creditor=world.creditor, data=_with(claim_data("INV-2"), amount="-1"), actor=ACTOR)
    assert _counts() == before
    assert Claim.objects.get().external_ref == "INV-1"


INJECTIONS = {
    "external_ref": "'; DROP TABLE claims_claim; --",
    "invoice_number": 'F-1" OR 1=1 --',
    "description": "<script>alert('x')</script>",
    "first_name": "<img src=x onerror=alert(1)>",
    "last_name": "O'Brien; DELETE FROM cases_case",
    "city": "{{ settings.SECRET_KEY }}",
}


def test_injection_strings_are_stored_verbatim_and_harmless(world, claim_data):
    data = replace(
        claim_data(INJECTIONS["external_ref"]),
        invoice_number=INJECTIONS["invoice_number"],
        description=INJECTIONS["description"],
        debtor=DebtorData(
            first_name=INJECTIONS["first_name"],
            last_name=INJECTIONS["last_name"],
            email="jeanne.martin@example.fr",
            address_line1="3 rue des Lilas",
            postcode="33000",
            city=INJECTIONS["city"],
        ),
    )
    placed = claim_place(creditor=world.creditor, data=data, actor=ACTOR)

    claim = Claim.objects.get(pk=placed.claim.pk)
    assert claim.external_ref == INJECTIONS["external_ref"]
    assert claim.invoice_number == INJECTIONS["invoice_number"]
    assert claim.description == INJECTIONS["description"]
    debtor = claim.debtor
    assert (debtor.first_name, debtor.last_name, debtor.city) == (
        INJECTIONS["first_name"],
        INJECTIONS["last_name"],
        INJECTIONS["city"],
    )
    # The tables are all still there and whole.
    tables = connection.introspection.table_names()
    assert {"claims_claim", "cases_case"} <= set(tables)
    assert Case.objects.count() == 1
    # And the reference still finds the claim (idempotency with a hostile reference).
    again = claim_place(creditor=world.creditor, data=data, actor=ACTOR)
    assert again.claim.pk == claim.pk
    assert not again.created
