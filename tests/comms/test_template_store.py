"""Message templates stored per channel × language × creditor: lint at save (FR-COL-15 and following),
render check, FR-COL-06 recall, override order."""

from __future__ import annotations

import pytest

from relance.audit.models import AuditEvent
from relance.comms.models import MessageTemplate
from relance.comms.render import render_message
from relance.comms.template_store import TemplateInvalidError, lint_template, template_check, template_save
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")

GOOD_SMS = (
    "{{ creditor.display_name }} : {{ outstanding }} restent dus. Réf. {{ case.reference }}"
    '{% if first_letter_on %} - courrier du {{ first_letter_on|date:"d/m/Y" }}{% endif %}.'
    " {{ portal_url }} STOP au 36111"
)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("COMMANDEMENT DE PAYER", "commandement de payer"),
        ("Avant saisie sur salaire", "saisie"),
        ("Vous serez inscrit au fichier FICP", "ficp"),
        ("Des frais de recouvrement de 40 € s'ajoutent", "frais de recouvrement"),
        ("Our bailiff will visit you", "bailiff"),
        ('<img src="marianne.png">', "imitates an official document"),
        ("ACTE\nMonsieur,", "judicial act"),
        ("Bonjour {{ debtor.secret_field }} {{ password }}", "unknown variable 'password'"),
    ],
)
def test_lint_refuses_wording_layouts_and_unknown_variables(text: str, words: str) -> None:
    problems = lint_template({"body_text": text})
    assert problems, text
    assert any(words in p.problem for p in problems), [str(p) for p in problems]
    assert all(p.line is not None for p in problems)


def test_lint_accepts_a_denied_fee_and_the_l111_8_paragraphs() -> None:
    assert (
        lint_template(
            {"body_text": "Aucun frais de recouvrement n'est facturé. {% for p in l111_8 %}{{ p }}{% endfor %}"}
        )
        == []
    )


def test_lint_names_the_line() -> None:
    (problem,) = lint_template({"body_text": "Bonjour,\n\nsommation de payer"})
    assert (problem.part, problem.line) == ("body_text", 3)


def test_save_refuses_a_template_without_the_fr_col_06_recall(place):
    case = place().case
    with pytest.raises(TemplateInvalidError) as info:
        template_save(
            channel="sms",
            name="reminder",
            language="fr",
            subject="",
            body_text="Payez {{ outstanding }} STOP",
            sample=case,
            actor=ACTOR,
        )
    assert "case.reference" in info.value.message
    assert "first_letter_on" in info.value.message
    assert not MessageTemplate.objects.exists()


def test_save_refuses_syntax_errors_with_their_line(place):
    problems, _ = template_check(
        channel="sms", name="x", language="fr", subject="", body_text="ok\n{% if %}", body_html="", sample=place().case
    )
    assert problems and "template syntax" in problems[0].problem


def test_a_saved_template_overrides_the_file_creditor_first(place, world):
    case = place().case
    agency_wide = template_save(
        channel="sms",
        name="reminder",
        language="fr",
        subject="",
        body_text="Agence. " + GOOD_SMS,
        sample=case,
        actor=ACTOR,
    )
    assert AuditEvent.objects.filter(verb="template.saved").count() == 1
    assert render_message(case=case, channel="sms", template="reminder").text.startswith("Agence.")
    template_save(
        channel="sms",
        name="reminder",
        language="fr",
        subject="",
        body_text="Boutique. " + GOOD_SMS,
        creditor_id=world.creditor.pk,
        sample=case,
        actor=ACTOR,
    )
    assert render_message(case=case, channel="sms", template="reminder").text.startswith("Boutique.")
    other = place("INV-O", creditor=world.other_creditor).case
    assert render_message(case=other, channel="sms", template="reminder").text.startswith("Agence.")
    agency_wide.delete()
    assert "restent dus" in render_message(case=other, channel="sms", template="reminder").text  # the file again


def test_check_renders_a_preview_for_the_sample_case(place):
    case = place().case
    problems, rendered = template_check(
        channel="sms", name="reminder", language="fr", subject="", body_text=GOOD_SMS, body_html="", sample=case
    )
    assert problems == []
    assert case.reference in rendered["body_text"]


def test_emails_recall_the_first_letter_once_it_left(place):
    from django.utils import timezone

    from relance.comms.models import Action

    case = place().case
    assert "courrier du" not in render_message(case=case, channel="email", template="reminder").text
    Action.objects.create(
        case=case,
        debtor=case.debtor,
        channel="letter",
        template="first_notice",
        scheduled_at=timezone.now(),
        sent_at=timezone.now(),
        status="sent",
    )
    text = render_message(case=case, channel="email", template="reminder").text
    assert f"Réf. {case.reference} — courrier du {timezone.localdate():%d/%m/%Y}" in text  # FR-COL-06
