"""Rendering per dispatch batch (issue 4, e-mail speed): the same messages as rendering one case alone.

- templates folded for a batch (``comms.template_fold``: what reads only the creditor, the agency and
  the FR-COL-05/07 mentions rendered once) give Django's own output, for every shipped e-mail template
  in both languages and both modes, and for edited templates that shadow, branch, include and escape;
  templates with tags the folder does not know are rendered as usual;
- the portal link with its path reversed once per batch is ``portal_url``'s, and the batch's unsubscribe signer
  (one derived HMAC key) makes ``unsubscribe_token``'s tokens;
- the dispatcher's narrow read of claimed e-mails gives the same objects' values, and any other field
  still loads when read.
"""

from __future__ import annotations

import django.core.signing
import pytest
from django.template import Context, engines
from django.template.base import VariableNode
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.cases.links import portal_url
from relance.cases.models import Case
from relance.comms.models import Action, MessageTemplate
from relance.comms.render import (
    BATCH_WIDE_VARIABLES,
    TokenPath,
    message_context,
    render_message,
    render_prefetch,
)
from relance.comms.services import _claimed_actions
from relance.comms.template_fold import fold
from relance.comms.unsubscribe import unsubscribe_debtor_id, unsubscribe_token, unsubscribe_tokens
from relance.tenancy.models import Creditor

pytestmark = pytest.mark.django_db

EMAIL_TEMPLATES = ("pre_due", "first_notice", "reminder", "final_notice")


@pytest.fixture(autouse=True)
def _fixed_signing_clock(monkeypatch):
    """Portal tokens carry the second they were signed in: one second for the whole test."""
    monkeypatch.setattr(django.core.signing.time, "time", lambda: 1_790_000_000.0)


def _cases(place, world) -> list[Case]:
    """French and English debtors, Mode B and Mode A creditors, one case with two claims and a first letter."""
    world.other_creditor.address = "9 rue de l'Autre, 69001 Lyon"
    world.other_creditor.save()
    cases = [
        place("F-1", "80.00", email="f1@example.fr", last_name="Un").case,
        place("F-2", "45.10", email="f2@example.fr", last_name="Deux", language="en").case,
        place("F-3", "19.99", email="f3@example.fr", last_name="<Trois & fils>", creditor=world.other_creditor).case,
        place("F-4", "1234.56", email="f4@example.fr", kind="company", company_name="Éts O'Brien").case,
    ]
    place("F-5", "10.00", email="f1@example.fr", last_name="Un")  # a second claim for the first debtor
    letter_day = timezone.now() - timezone.timedelta(days=3)
    Action.objects.create(
        case=cases[0],
        debtor_id=cases[0].debtor_id,
        channel=Action.Channel.LETTER,
        template="first_notice",
        status=Action.Status.SENT,
        scheduled_at=letter_day,
        sent_at=letter_day,
    )
    cases_again = Case.objects.filter(pk__in=[c.pk for c in cases]).select_related("creditor__agency", "debtor")
    return list(cases_again.order_by("pk"))  # placing order: the tests read cases[0] as F-1


@pytest.mark.parametrize("template", EMAIL_TEMPLATES)
def test_every_shipped_email_renders_the_same_folded_for_the_batch(place, world, template):
    cases = _cases(place, world)
    prefetch = render_prefetch(cases=cases, templates={("email", template)})
    for case in cases:
        alone = render_message(case=case, channel="email", template=template)
        batched = render_message(case=case, channel="email", template=template, prefetch=prefetch)
        assert batched == alone
    assert prefetch.folded  # the batch did fold them
    # FR-COL-06/07: the recall and the L111-8 paragraphs are still there
    first = render_message(case=cases[0], channel="email", template=template, prefetch=prefetch)
    assert cases[0].reference in first.text and "L111-8" in first.text


def test_folding_renders_the_batch_wide_parts_once(place, world):
    case = _cases(place, world)[0]
    context = message_context(case=case, lang="fr")
    template = get_template("comms/email/first_notice.fr.html").template
    with translation.override("fr"):
        folded = fold(template, {name: context[name] for name in BATCH_WIDE_VARIABLES})
    assert folded is not None

    def variables(nodes) -> list[str]:
        found = []
        for node in nodes:
            if isinstance(node, VariableNode):
                found.append(node.filter_expression.token)
            for attr in node.child_nodelists:
                found += variables(getattr(node, attr, None) or [])
            for _, nodelist in getattr(node, "conditions_nodelists", []):
                found += variables(nodelist)
        return found

    left = variables(folded.nodelist)
    assert "debtor.display_name" in left and "case.reference" in left and "portal_url" in left
    assert not any(v.split(".")[0].split("|")[0] in BATCH_WIDE_VARIABLES for v in left)
    assert "creditor.display_name" in variables(template.nodelist)  # before folding


EDITED = [
    # a loop variable shadowing a batch-wide name; forloop; empty branch
    "{% for creditor in claims %}{{ forloop.counter }}. {{ creditor.invoice_number }}{% empty %}none{% endfor %}"
    " {{ creditor.display_name }}",
    # static and dynamic conditions, elif/else, operators and filters
    "{% if agency_mode and creditor.legal_name|length > 3 %}B {{ agency.legal_name|upper }}"
    "{% elif debtor.first_name %}{{ debtor.first_name }}{% else %}x{% endif %}"
    "{% if not agency_mode %}A{% elif claims|length > 1 %}many{% else %}{{ outstanding }}{% endif %}"
    "{% if debtor.last_name == creditor.legal_name %}same{% endif %}",
    # escaping on and off, nested; a batch-wide value with characters to escape
    "<b>{{ creditor.address }}</b>{% autoescape off %}{{ debtor.display_name }} {{ creditor.address }}"
    "{% autoescape on %}{{ debtor.display_name }}{% endautoescape %}{% endautoescape %}{{ debtor.display_name }}",
    # the shipped partials, included; the L111-8 loop; the first-letter recall (FR-COL-06)
    "{% autoescape off %}"
    'Réf. {{ case.reference }}{% if first_letter_on %} — courrier du {{ first_letter_on|date:"d/m/Y" }}{% endif %}'
    '{% include "comms/email/_claims.fr.txt" %}{% include "comms/email/_mentions.fr.txt" %}'
    "{% for p in l111_8 %}[{{ p|length }}{{ p|wordcount }}]{% endfor %}{# a comment #}{% endautoescape %}",
    # a loop over a batch-wide list whose body reads a per-message value
    "{% for p in l111_8 %}{{ forloop.counter }}{{ case.reference }}{{ p|length }}{% endfor %}{{ missing.thing }}",
    # tags the folder does not know: rendered as usual (not folded)
    "{% with name=creditor.legal_name %}{{ name }}{% endwith %}{% for c in claims %}{% cycle 'a' 'b' %}{% endfor %}",
    '{% load i18n %}{% translate "Total" %} {{ creditor.legal_name }} {% now "Y" as year %}{{ year|yesno:"y,n" }}',
    "{% regroup claims by due_date as creditor %}{% for g in creditor %}{{ g.grouper }}{% endfor %}",
]


@pytest.mark.parametrize("source", EDITED)
def test_edited_templates_render_the_same_folded_or_not(place, world, source):
    cases = _cases(place, world)
    for creditor_id in {c.creditor_id for c in cases}:
        MessageTemplate.objects.create(
            channel="email",
            name="reminder",
            language="fr",
            creditor_id=creditor_id,
            subject="Relance {{ creditor.display_name }} {{ case.reference }}",
            body_text=source,
            body_html=source,
        )
    prefetch = render_prefetch(cases=cases, templates={("email", "reminder")})
    for case in cases:
        alone = render_message(case=case, channel="email", template="reminder")
        assert render_message(case=case, channel="email", template="reminder", prefetch=prefetch) == alone


@pytest.mark.parametrize(
    "source",
    [
        "{% with x=1 %}{{ x }}{% endwith %}",
        "{% for c in claims %}{% cycle 'a' 'b' %}{% endfor %}",
        '{% now "Y" %}',
        "{{ claims|random }}",
        "{% regroup claims by due_date as creditor %}{{ creditor }}",
        '{% extends "comms/email/first_notice.fr.txt" %}',
    ],
)
def test_templates_with_other_tags_or_impure_filters_are_not_folded(world, source):
    static = {"creditor": world.creditor, "agency": world.agency}
    assert fold(engines["django"].from_string(source).template, static) is None


def test_a_creditor_edited_between_batches_is_rendered_with_its_new_name(place, world):
    case = _cases(place, world)[0]
    before = render_message(
        case=case,
        channel="email",
        template="reminder",
        prefetch=render_prefetch(cases=[case], templates={("email", "reminder")}),
    )
    Creditor.objects.filter(pk=case.creditor_id).update(legal_name="Nouveau Nom SAS")
    case = Case.objects.select_related("creditor__agency", "debtor").get(pk=case.pk)
    after = render_message(
        case=case,
        channel="email",
        template="reminder",
        prefetch=render_prefetch(cases=[case], templates={("email", "reminder")}),
    )
    assert "Nouveau Nom SAS" in after.text and "Nouveau Nom SAS" not in before.text


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_path_reversed_once_is_reverses_for_any_token(token):
    if "/" in token:  # <str:token> never matches a slash: reverse refuses it either way
        return
    assert TokenPath("portal:entry")(token) == reverse("portal:entry", kwargs={"token": token})
    assert TokenPath("hooks:email_unsubscribe")(token) == reverse("hooks:email_unsubscribe", kwargs={"token": token})


def test_the_batch_portal_link_is_portal_url(place, world):
    cases = _cases(place, world)
    prefetch = render_prefetch(cases=cases, templates=set())
    for case in cases:
        assert prefetch.portal_url(case) == portal_url(case_id=case.pk, reference=case.reference)


def test_the_narrow_read_of_claimed_emails_gives_the_same_values_and_loads_the_rest(place, world):
    cases = _cases(place, world)
    now = timezone.now()
    ids = [
        Action.objects.create(
            case=case, debtor_id=case.debtor_id, channel="email", template="reminder", scheduled_at=now
        ).pk
        for case in cases
    ]
    claimed = _claimed_actions(ids)
    assert [a.pk for a in claimed] == sorted(ids)
    assert len({id(a.case.creditor) for a in claimed if a.case.creditor_id == world.creditor.pk}) == 1
    for action in claimed:
        full = Action.objects.select_related("case__creditor__agency", "case__debtor").get(pk=action.pk)
        assert (action.case.reference, action.case.debtor.display_name, action.case.creditor.agency.legal_name) == (
            full.case.reference,
            full.case.debtor.display_name,
            full.case.creditor.agency.legal_name,
        )
        assert action.case.debtor.city == full.case.debtor.city  # not read with the batch: loaded when read
        assert action.case.placed_at == full.case.placed_at
        assert render_message(case=action.case, channel="email", template="reminder") == render_message(
            case=full.case, channel="email", template="reminder"
        )


def test_the_batch_context_is_left_empty_after_each_message(place, world):
    cases = _cases(place, world)
    prefetch = render_prefetch(cases=cases, templates={("email", "reminder")})
    for case in cases:
        render_message(case=case, channel="email", template="reminder", prefetch=prefetch)
    assert isinstance(prefetch.context, Context) and len(prefetch.context.dicts) == 1


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=2**62))
def test_the_batch_unsubscribe_signer_makes_unsubscribe_token_s_tokens(debtor_id):
    """One signer and one derived HMAC key per batch (FR-COL-16 links): the very tokens, still verified."""
    token = unsubscribe_tokens()(debtor_id)
    assert token == unsubscribe_token(debtor_id=debtor_id)
    assert unsubscribe_debtor_id(token) == debtor_id
    assert unsubscribe_debtor_id(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
