"""``relance sepa``: the operator's commands for direct-debit files, settlement, returns and the review."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from relance.core.errors import PermissionDeniedError
from relance.payments.arrangement_models import ArrangementPolicy, PlanInstalment, SepaCreditor
from relance.payments.arrangements import MandateIn, arrangement_policy_set, plan_create, sepa_creditor_set
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("sepa", *args, stdout=out)
    return out.getvalue()


def test_batch_then_returns_from_the_command_line(world, place, tmp_path):
    world.agency.trust_iban = "FR7630006000011234567890189"
    world.agency.save()
    SepaCreditor.objects.create(agency=world.agency, creditor_identifier="FR72ZZZ123456")
    case = place("INV-1", "90.00").case
    plan_create(
        case=case,
        months=3,
        first_due=timezone.localdate() + timedelta(days=2),
        method="direct_debit",
        mandate=MandateIn(debtor_name="Jeanne Martin", iban="FR1420041010050500013M02606", accepted=True),
        actor=Actor.for_debtor(case_id=case.pk),
    )

    printed = run("batch", "--out", str(tmp_path))
    (written,) = tmp_path.glob("*.xml")
    assert "1 collection(s), 30.00 EUR" in printed and written.name in printed
    assert b"<SeqTp>FRST</SeqTp>" in written.read_bytes()
    assert run("batch", "--out", str(tmp_path)).strip() == "no instalment due: no file"

    e2e = PlanInstalment.objects.get(number=1).end_to_end_id
    rejects = tmp_path / "pain002.xml"
    rejects.write_text(
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>'
        "<OrgnlGrpInfAndSts><OrgnlMsgId>X</OrgnlMsgId></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts>"
        f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
        "<StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
    )
    assert "missed 1, reversed 0, duplicates 0, unknown 0" in run("returns", str(rejects))
    assert "missed 0, reversed 0, duplicates 1, unknown 0" in run("returns", str(rejects))
    assert "promises kept 0" in run("review")
    assert run("settle").strip() == "settled 0 collection(s)"


def test_bad_files_are_command_errors(world, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run("returns", str(tmp_path / "missing.xml"))
    garbage = tmp_path / "g.xml"
    garbage.write_text("<nope/>")
    with pytest.raises(CommandError, match=r"sepa\.rtransaction_file_invalid"):
        run("returns", str(garbage))
    with pytest.raises(CommandError, match="No such folder"):
        run("batch", "--out", str(tmp_path / "nowhere"))


def test_setup_and_policy_from_the_command_line(world):
    assert "ICS FR72ZZZ123456" in run("setup", "--agency", str(world.agency.pk), "--ics", "fr72 zzz 123456")
    assert SepaCreditor.objects.get(agency=world.agency).creditor_identifier == "FR72ZZZ123456"
    with pytest.raises(CommandError, match="ICS"):
        run("setup", "--agency", str(world.agency.pk), "--ics", "FR73ZZZ123456")

    printed = run("policy", "--creditor", "shop", "--max-months", "6", "--min-instalment", "25,00", "--grace-days", "3")
    assert "max_months 6" in printed and "min_instalment_minor 2500" in printed and "grace_days 3" in printed
    policy = ArrangementPolicy.objects.get(creditor=world.creditor)
    assert (policy.max_months, policy.min_instalment_minor, policy.promise_within_days) == (6, 2500, 30)
    with pytest.raises(CommandError, match=r"1\D+120"):
        run("policy", "--creditor", "shop", "--max-months", "0")
    with pytest.raises(CommandError, match="--creditor"):
        run("policy", "--creditor", "nobody")
    assert ArrangementPolicy.objects.get(creditor=world.creditor).max_months == 6


def test_only_agency_administrators_change_the_policy(world):
    with pytest.raises(PermissionDeniedError):
        arrangement_policy_set(creditor=world.creditor, actor=Actor.for_user(world.creditor_user), max_months=36)
    with pytest.raises(PermissionDeniedError):
        sepa_creditor_set(agency=world.agency, creditor_identifier="FR72ZZZ123456", actor=Actor.for_user(world.agent))
    assert not ArrangementPolicy.objects.exists() and not SepaCreditor.objects.exists()
