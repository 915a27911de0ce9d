"""Disputes, returns, credit notes and direct payments through the services (issue 5 and issue 6).

Invariant 5: a disputed case is not chased until the creditor answers with evidence. Upheld disputes
and returned goods become credit notes in the ledger; rejected disputes resume chasing.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core import mail

from relance.cases.models import WorkItem
from relance.cases.selectors import case_outstanding_minor
from relance.comms.services import outbox_dispatch
from relance.core.errors import DomainError
from relance.core.money import Money
from relance.ledger.models import LedgerTransaction
from relance.payments.direct import payment_creditor_reported
from relance.payments.disputes import dispute_open, dispute_reject, dispute_uphold
from relance.payments.models import (
    CreditorNotification,
    Dispute,
    DisputeFile,
    Payment,
    ReturnPolicy,
    ReturnRequest,
)
from relance.payments.returns import return_confirm_received, return_request, returnable_claims
from relance.strategies.engine import engine_tick
from relance.tenancy.actors import Actor

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def debtor(case):
    return Actor.for_debtor(case_id=case.pk)


def creditor_actor(world):
    return Actor.for_user(world.creditor_user)


def open_dispute(case, reason="not_received", files=None):
    return dispute_open(
        case=case,
        reason=reason,
        statement="I never received the parcel.",
        files=files if files is not None else [("photo.png", io.BytesIO(PNG))],
        actor=debtor(case),
    )


def test_a_dispute_stops_chasing_and_asks_the_creditor_for_evidence(place):
    case = place("INV-1", "120.50").case
    dispute = open_dispute(case)
    case.refresh_from_db()
    assert case.status == "disputed"
    assert case.next_action_at is None
    (f,) = dispute.files.all()
    assert (f.side, f.content_type, f.size) == ("debtor", "image/png", len(PNG))
    assert len(f.sha256) == 64
    assert CreditorNotification.objects.filter(case=case, kind="dispute.opened").count() == 1
    # Agents follow up with the creditor from the disputes queue if no answer comes within a week.
    item = WorkItem.objects.get(kind=WorkItem.Kind.DISPUTE, source=f"dispute:{dispute.pk}")
    assert (item.case, item.status, item.amount_minor) == (case, "open", 12050)
    assert item.due_at > dispute.created_at + timedelta(days=6)
    # The engine decides nothing for a disputed case, whatever the time.
    far = case.placed_at + timedelta(days=60)
    assert engine_tick(now=far).cases == 0


def test_a_second_dispute_while_one_is_open_is_refused(place):
    case = place("INV-1", "120.50").case
    open_dispute(case)
    with pytest.raises(DomainError) as exc:
        open_dispute(case, reason="other")
    assert getattr(exc.value, "status", 0) == 409
    assert Dispute.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("virus.exe", b"MZ....", "PDF, PNG or JPEG"),
        ("fake.pdf", b"<html>not a pdf</html>", "not a real PDF"),
        ("empty.pdf", b"", "empty"),
    ],
)
def test_bad_dispute_files_are_refused_and_nothing_is_written(place, name, content, message):
    case = place("INV-1", "120.50").case
    with pytest.raises(DomainError) as exc:
        open_dispute(case, files=[("ok.pdf", io.BytesIO(PDF)), (name, io.BytesIO(content))])
    assert message in str(exc.value)
    assert exc.value.fields["field"] == "files"
    assert not Dispute.objects.exists()
    assert not DisputeFile.objects.exists()
    case.refresh_from_db()
    assert case.status != "disputed"


def test_uphold_cancels_the_claim_by_a_credit_note_and_closes_the_case(place, world):
    case = place("INV-1", "120.50").case
    dispute = dispute_uphold(
        dispute=open_dispute(case), reduce_minor=None, note="Parcel lost", actor=creditor_actor(world)
    )
    assert dispute.status == "upheld"
    assert dispute.credited_minor == 12050
    assert WorkItem.objects.get(source=f"dispute:{dispute.pk}").status == "done"  # nothing left to chase
    assert case_outstanding_minor(case=case) == 0
    assert LedgerTransaction.objects.filter(code="claim.credit_note").count() == 1
    case.refresh_from_db()
    assert case.status == "closed"


def test_uphold_in_part_reduces_the_claim_and_chasing_resumes_for_the_rest(place, world):
    case = place("INV-1", "120.50").case
    dispute_uphold(dispute=open_dispute(case, "wrong_amount"), reduce_minor=2050, note="", actor=creditor_actor(world))
    assert case_outstanding_minor(case=case) == 10000
    case.refresh_from_db()
    assert case.status == "active"
    assert case.next_action_at is not None


def test_a_reduction_above_the_outstanding_is_refused(place, world):
    case = place("INV-1", "120.50").case
    dispute = open_dispute(case)
    with pytest.raises(DomainError) as exc:
        dispute_uphold(dispute=dispute, reduce_minor=12051, note="", actor=creditor_actor(world))
    assert exc.value.fields["field"] == "amount"
    dispute.refresh_from_db()
    assert dispute.status == "open"


def test_reject_needs_evidence_then_sends_it_to_the_debtor_and_resumes(
    place, world, django_capture_on_commit_callbacks
):
    case = place("INV-1", "120.50").case
    dispute = open_dispute(case)
    with pytest.raises(DomainError) as exc:
        dispute_reject(dispute=dispute, note="Delivered", files=[], actor=creditor_actor(world))
    assert exc.value.fields["field"] == "files"
    with django_capture_on_commit_callbacks(execute=True):
        dispute_reject(
            dispute=dispute,
            note="Delivered on 3 November, signed by you.",
            files=[("delivery-proof.pdf", io.BytesIO(PDF))],
            actor=creditor_actor(world),
        )
    dispute.refresh_from_db()
    assert dispute.status == "rejected"
    case.refresh_from_db()
    assert case.status == "active"
    assert case.next_action_at is not None
    (message,) = mail.outbox
    assert message.to == ["jeanne.martin@example.fr"]
    assert "Delivered on 3 November" in message.body
    assert message.attachments[0][0] == "delivery-proof.pdf"
    assert message.attachments[0][1] == PDF


def test_another_creditor_and_a_viewer_cannot_answer(place, world):
    case = place("INV-1", "120.50").case
    dispute = open_dispute(case)
    with pytest.raises(DomainError) as exc:
        dispute_uphold(dispute=dispute, reduce_minor=None, note="", actor=Actor.for_user(world.other_creditor_user))
    assert getattr(exc.value, "status", 0) == 403
    viewer = Actor(kind="creditor", id="9", role="creditor_viewer", creditor_id=world.creditor.pk)
    with pytest.raises(DomainError):
        dispute_uphold(dispute=dispute, reduce_minor=None, note="", actor=viewer)
    dispute.refresh_from_db()
    assert dispute.status == "open"


def test_the_outbox_blocks_a_queued_reminder_once_the_case_is_disputed(place):
    case = place("INV-1", "120.50").case
    now = case.placed_at + timedelta(days=1)
    engine_tick(now=now)
    open_dispute(case)
    report = outbox_dispatch(now=now)
    assert sum(report.sent.values()) == 0


# --- Returns -------------------------------------------------------------------------------------------


def test_returns_are_offered_only_where_the_creditor_allows_them(place, world):
    case = place("INV-1", "120.50").case
    assert returnable_claims(case=case) == []
    ReturnPolicy.objects.create(creditor=world.creditor, returns_allowed=True, instructions="Send to 2 rue du Commerce")
    assert [c.external_ref for c in returnable_claims(case=case)] == ["INV-1"]
    ReturnPolicy.objects.filter(creditor=world.creditor).update(max_invoice_age_days=30)  # the invoice is 40 days old
    assert returnable_claims(case=case) == []


def test_a_return_holds_the_case_and_receipt_of_the_goods_cancels_the_claim(place, world):
    case = place("INV-1", "120.50").case
    ReturnPolicy.objects.create(creditor=world.creditor, returns_allowed=True, instructions="Send to 2 rue du Commerce")
    claim = returnable_claims(case=case)[0]
    request = return_request(case=case, claim_id=claim.pk, note="Too small", actor=debtor(case))
    assert request.instructions == "Send to 2 rue du Commerce"
    case.refresh_from_db()
    assert case.status == "on_hold"
    assert CreditorNotification.objects.filter(case=case, kind="return.requested").count() == 1
    assert returnable_claims(case=case) == []  # no second request for the same claim

    return_confirm_received(request=request, actor=creditor_actor(world))
    request.refresh_from_db()
    assert request.status == ReturnRequest.Status.RECEIVED
    assert case_outstanding_minor(case=case) == 0
    case.refresh_from_db()
    assert case.status == "closed"


# --- Payments reported by the creditor ------------------------------------------------------------------


def test_a_direct_payment_settles_the_claim_without_touching_the_trust_account(place, world):
    from relance.ledger.services import account_balance

    case = place("INV-1", "120.50").case
    payment = payment_creditor_reported(
        case_id=case.pk,
        amount=Money.parse("20.50", "EUR"),
        received_on=date.today(),
        reference="CHQ-1",
        actor=creditor_actor(world),
    )
    assert payment.method == Payment.Method.CREDITOR_REPORTED
    assert case_outstanding_minor(case=case) == 10000
    assert account_balance(key=f"trust:{world.agency.pk}:EUR") == 0
    assert account_balance(key=f"creditor:{world.creditor.pk}:payable:EUR") == 0
    # Same reference again: the same payment.
    again = payment_creditor_reported(
        case_id=case.pk,
        amount=Money.parse("20.50", "EUR"),
        received_on=date.today(),
        reference="CHQ-1",
        actor=creditor_actor(world),
    )
    assert again.pk == payment.pk
    with pytest.raises(DomainError) as exc:
        payment_creditor_reported(
            case_id=case.pk,
            amount=Money.parse("100.01", "EUR"),
            received_on=date.today(),
            reference="CHQ-2",
            actor=creditor_actor(world),
        )
    assert exc.value.fields["field"] == "amount"
    with pytest.raises(DomainError) as exc:
        payment_creditor_reported(
            case_id=case.pk,
            amount=Money.parse("1", "EUR"),
            received_on=date.today(),
            reference="X",
            actor=Actor.for_user(world.other_creditor_user),
        )
    assert getattr(exc.value, "status", 0) == 404
