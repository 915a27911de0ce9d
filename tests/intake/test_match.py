"""Debtor matching (issue 3 item 5): strong identifiers match, weak ones only when unambiguous."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relance.claims.keys import fold
from relance.claims.models import Debtor, DebtorMatchReview
from relance.intake.match import DebtorIndex, Match, Person


def index_of(*people: Person) -> DebtorIndex:
    index = DebtorIndex()
    for person in people:
        index.add(person)
    return index


JEANNE = Person(
    1, email="jeanne@example.fr", phone="+33612345678", last_name="Martin", first_name="Jeanne", postcode="33000"
)
COMPANY = Person(2, siren="732829320", last_name="Bureau Plus", postcode="31200")


def test_the_same_email_is_the_same_person_whatever_the_name() -> None:
    incoming = Person(0, email="JEANNE@example.fr", last_name="Dupont-Martin")
    assert index_of(JEANNE).match(incoming) == Match(1, "email")


def test_the_same_siren_is_the_same_company() -> None:
    assert index_of(COMPANY).match(Person(0, siren="732829320", last_name="BP Distribution")) == Match(2, "siren")


def test_phone_and_last_name_match_when_nothing_contradicts() -> None:
    incoming = Person(0, phone="+33612345678", last_name="MARTIN")
    assert index_of(JEANNE).match(incoming) == Match(1, "phone+name")


def test_name_and_postcode_ignore_case_accents_and_spaces() -> None:
    known = Person(3, last_name="Lefèvre", first_name="Émilie", postcode="75011")
    incoming = Person(0, last_name="LEFEVRE", first_name="emilie", postcode="75 011")
    assert index_of(known).match(incoming) == Match(3, "name+postcode")


def test_a_different_email_makes_a_weak_match_ambiguous() -> None:
    # Same name and postcode but another e-mail: maybe a namesake (a father and son): a person decides.
    incoming = Person(0, email="j.martin@other.fr", last_name="Martin", first_name="Jeanne", postcode="33000")
    assert index_of(JEANNE).match(incoming) == Match(None, "ambiguous", (1,))


def test_two_candidates_are_ambiguous() -> None:
    twin = Person(4, last_name="Martin", first_name="Jeanne", postcode="33000")
    incoming = Person(0, last_name="Martin", first_name="Jeanne", postcode="33000")
    assert index_of(JEANNE, twin).match(incoming) == Match(None, "ambiguous", (1, 4))


def test_nobody_known_is_new() -> None:
    assert index_of(JEANNE).match(Person(0, last_name="Durand", postcode="69007")) == Match(None, "new")


@given(st.text(max_size=30))
def test_fold_is_idempotent_and_case_insensitive(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    assert fold(text.upper()) == fold(text.lower()) or not text.isascii()


@pytest.mark.django_db
def test_placement_records_the_match_rule_and_sends_ambiguous_ones_to_review(world, place) -> None:
    first = place("A-1", email="jeanne@example.fr", first_name="Jeanne", last_name="Martin", postcode="33000")
    same = place("A-2", email="", first_name="jeanne", last_name="MARTIN", phone="", postcode="33000")
    assert same.claim.debtor_id == first.claim.debtor_id  # name + postcode, nothing contradicts
    other = place("A-3", email="autre@example.fr", first_name="Jeanne", last_name="Martin", postcode="33000")
    assert other.claim.debtor_id != first.claim.debtor_id  # a different e-mail: not merged...
    review = DebtorMatchReview.objects.get()
    assert (review.debtor_id, review.candidate_id, review.status) == (
        other.claim.debtor_id,
        first.claim.debtor_id,
        "open",
    )
    assert Debtor.objects.count() == 2


@pytest.mark.django_db
def test_one_new_person_twice_in_one_batch_is_one_debtor(world, claim_data) -> None:
    from relance.intake.services import claims_place_batch
    from relance.tenancy.actors import Actor

    items = [claim_data("B-1", email="new@example.fr"), claim_data("B-2", email="new@example.fr")]
    results = claims_place_batch(creditor=world.creditor, items=items, actor=Actor.system("tests"))
    assert [r.status for r in results] == ["created", "created"]
    assert Debtor.objects.filter(email="new@example.fr").count() == 1
    assert results[0].case_id == results[1].case_id  # consolidated into one case
