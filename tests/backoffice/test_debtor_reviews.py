"""The duplicate-debtor review list: agency staff only, reading it is audited; deciding (merge or keep
apart) is audited, tenant-safe and CSRF-protected."""

from __future__ import annotations

import pytest
from django.test import Client

from relance.audit.models import AuditEvent
from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.claims.models import Claim, Debtor, DebtorMatchReview
from relance.tenancy.models import Agency, User


@pytest.mark.django_db
def test_staff_see_possible_duplicates_creditors_do_not(world, place) -> None:
    place("R-1", email="jeanne@example.fr", first_name="Jeanne", last_name="Martin", postcode="33000")
    place("R-2", email="jm@other.fr", first_name="Jeanne", last_name="Martin", postcode="33000")
    agent = Client()
    agent.force_login(world.agent)
    page = agent.get("/bo/debtors/review/")
    assert page.status_code == 200
    assert page.content.decode().count("jm@other.fr") == 1
    assert AuditEvent.objects.filter(verb="debtor_reviews.viewed").count() == 1
    creditor = Client()
    creditor.force_login(world.creditor_user)
    assert creditor.get("/bo/debtors/review/").status_code in {403, 404}  # the permission matrix says no


# --- deciding: same person (merge) or different people (keep apart) --------------------------------------


def two_martins(place):
    first = place("R-1", email="jeanne@example.fr", first_name="Jeanne", last_name="Martin", postcode="33000", phone="")
    second = place("R-2", email="jm@other.fr", first_name="Jeanne", last_name="Martin", postcode="33000")
    review = DebtorMatchReview.objects.get()
    assert (review.debtor_id, review.candidate_id) == (second.claim.debtor_id, first.claim.debtor_id)
    return first, second, review


def staff_client(user) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_same_person_merges_the_new_debtor_into_the_known_one(world, place) -> None:
    first, second, review = two_martins(place)
    response = staff_client(world.agent).post(f"/bo/debtors/review/{review.pk}/", {"decision": "same"})
    assert response.status_code == 302
    survivor = Debtor.objects.get()
    assert survivor.pk == first.claim.debtor_id
    assert set(Claim.objects.values_list("debtor_id", flat=True)) == {survivor.pk}
    assert set(Case.objects.values_list("debtor_id", flat=True)) == {survivor.pk}
    assert survivor.email == "jeanne@example.fr"  # the known debtor's data wins
    assert survivor.phone == "+33612345678"  # a blank filled from the duplicate
    assert not DebtorMatchReview.objects.exists()
    event = AuditEvent.objects.get(verb="debtor.merged")
    assert event.data["merged"] == second.claim.debtor_id
    assert event.data["filled"] == ["phone"]
    assert event.data["moved"]["claims.claim"] == 1
    assert audit_verify()[1] is None
    page = staff_client(world.agent).get("/bo/debtors/review/").content.decode()
    assert "jm@other.fr" not in page


@pytest.mark.django_db
def test_different_people_are_kept_apart_and_not_proposed_again(world, place) -> None:
    _, second, review = two_martins(place)
    response = staff_client(world.agent).post(f"/bo/debtors/review/{review.pk}/", {"decision": "distinct"})
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.status == DebtorMatchReview.Status.DISTINCT
    assert Debtor.objects.count() == 2
    assert AuditEvent.objects.filter(verb="debtor_review.kept_apart").count() == 1
    place("R-3", email="jm@other.fr", first_name="Jeanne", last_name="Martin", postcode="33000")
    assert Claim.objects.get(external_ref="R-3").debtor_id == second.claim.debtor_id  # the e-mail matches
    assert list(DebtorMatchReview.objects.values_list("status", flat=True)) == ["distinct"]
    # A decided review cannot be decided again.
    assert staff_client(world.agent).post(f"/bo/debtors/review/{review.pk}/", {"decision": "same"}).status_code == 404


@pytest.mark.django_db
def test_only_deciding_staff_of_the_same_agency_may_decide(world, place) -> None:
    _, _, review = two_martins(place)
    other_agency = Agency.objects.create(legal_name="Autre agence")
    outsider = User.objects.create_user(username="outsider", password="x", role=User.Role.AGENT, agency=other_agency)
    auditor = User.objects.create_user(username="auditor", password="x", role=User.Role.AUDITOR, agency=world.agency)
    for user in (outsider, auditor, world.creditor_user):
        response = staff_client(user).post(f"/bo/debtors/review/{review.pk}/", {"decision": "same"})
        assert response.status_code in {403, 404}, user.username
    assert staff_client(world.agent).get(f"/bo/debtors/review/{review.pk}/").status_code == 405
    assert staff_client(world.agent).post(f"/bo/debtors/review/{review.pk}/", {"decision": "?"}).status_code == 404
    auditor_page = staff_client(auditor).get("/bo/debtors/review/").content.decode()
    assert 'name="decision"' not in auditor_page  # auditors read, they do not decide
    review.refresh_from_db()
    assert review.status == DebtorMatchReview.Status.OPEN
    assert Debtor.objects.count() == 2


@pytest.mark.django_db
def test_deciding_needs_the_csrf_token(world, place) -> None:
    _, _, review = two_martins(place)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.agent)
    assert client.post(f"/bo/debtors/review/{review.pk}/", {"decision": "same"}).status_code == 403
    page = client.get("/bo/debtors/review/").content.decode()
    assert "csrfmiddlewaretoken" in page and 'value="same"' in page
