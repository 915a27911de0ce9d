"""The duplicate-debtor review list: agency staff only, and reading it is audited."""

from __future__ import annotations

import pytest
from django.test import Client

from relance.audit.models import AuditEvent


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
