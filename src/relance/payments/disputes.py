"""Disputes: the debtor contests, chasing stops, the creditor answers with evidence (invariant 5).

* ``dispute_open`` (debtor, portal): reason, statement, files → case ``disputed`` (the engine and the
  dispatcher contact nobody on a disputed case), the creditor is asked for evidence (a notification,
  FR-COL-12: a dispute is a proposal to settle otherwise than by paying).
* ``dispute_uphold`` (creditor or agency): the claim is reduced or cancelled by a credit note through
  the ledger; nothing left → case ``closed``; something left → ``active`` again for the rest.
* ``dispute_reject`` (creditor or agency): evidence files are required; they are e-mailed to the
  debtor (after commit) and shown on the portal; the case is ``active`` again and chasing resumes.

Every step is audited in the same transaction as the change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from relance.audit.services import audit_record
from relance.cases.links import portal_url
from relance.cases.models import Case, WorkItem
from relance.cases.queues import work_item_close, work_item_open
from relance.cases.selectors import case_outstanding_minor
from relance.cases.services import case_dispute, case_transition
from relance.cases.status import Status
from relance.core.errors import ConflictError, PermissionDeniedError, ValidationError
from relance.core.money import Money
from relance.payments.credit import case_credit
from relance.payments.files import MAX_FILES, StoredFile, dispute_file_store, stored_files_delete
from relance.payments.notify import creditor_notify
from relance.payments.portal_models import CreditorNotification, Dispute, DisputeFile
from relance.tenancy.actors import Actor

log = logging.getLogger("relance.payments")

MAX_STATEMENT = 4000
# When agents chase the creditor for an answer (the disputes queue).
DISPUTE_FOLLOW_UP = timedelta(days=7)
# Who may answer a dispute for the creditor: its administrators and the agency's working staff.
ANSWERING_ROLES = frozenset({"creditor_admin", "agency_admin", "supervisor", "agent", "system"})


def _store_all(files: Sequence[tuple[str, IO[bytes]]]) -> list[StoredFile]:
    if len(files) > MAX_FILES:
        raise ValidationError(f"Send at most {MAX_FILES} files.", field="files")
    stored: list[StoredFile] = []
    try:
        for name, content in files:
            stored.append(dispute_file_store(content=content, filename=name))
    except BaseException:
        stored_files_delete(stored)
        raise
    return stored


def _attach(dispute: Dispute, side: str, stored: list[StoredFile], actor: Actor) -> None:
    seen: set[str] = set()
    for f in stored:
        if f.sha256 in seen:
            continue  # the same file sent twice is one file
        seen.add(f.sha256)
        DisputeFile.objects.create(
            dispute=dispute,
            side=side,
            file=f.name,
            original_filename=f.original_filename,
            content_type=f.content_type,
            size=f.size,
            sha256=f.sha256,
            uploaded_by=actor.label[:100],
        )


def dispute_open(
    *, case: Case, reason: str, statement: str, files: Sequence[tuple[str, IO[bytes]]], actor: Actor
) -> Dispute:
    """The debtor disputes the case (portal). Files are stored first and removed if anything fails."""
    if reason not in Dispute.Reason.values:
        raise ValidationError("Choose a reason.", field="reason")
    statement = statement.strip()
    if not statement:
        raise ValidationError("Tell us what happened.", field="statement")
    if len(statement) > MAX_STATEMENT:
        raise ValidationError(f"At most {MAX_STATEMENT} characters.", field="statement")
    stored = _store_all(files)
    try:
        with transaction.atomic():
            case = Case.objects.select_for_update().select_related("creditor").get(pk=case.pk)
            if case.is_closed:
                raise ConflictError("This case is closed.", field="case")
            if Dispute.objects.filter(case=case, status=Dispute.Status.OPEN).exists():
                raise ConflictError("A dispute is already waiting for the creditor's answer.", field="case")
            dispute = Dispute.objects.create(case=case, reason=reason, statement=statement)
            _attach(dispute, DisputeFile.Side.DEBTOR, stored, actor)
            case_dispute(case=case, reason=reason, statement=statement[:500], actor=actor)
            audit_record(
                actor=actor,
                verb="dispute.opened",
                subject=case,
                data={"dispute": dispute.pk, "reason": reason, "files": [f.sha256 for f in stored]},
            )
            # Agents follow up with the creditor if no answer comes within a week (issue 6 queue).
            work_item_open(
                kind=WorkItem.Kind.DISPUTE,
                source=f"dispute:{dispute.pk}",
                agency_id=case.creditor.agency_id,
                case=case,
                title=f"Dispute ({reason}) — {case.reference}",
                amount_minor=case_outstanding_minor(case=case),
                due_at=timezone.now() + DISPUTE_FOLLOW_UP,
                data={"dispute": dispute.pk, "reason": reason},
                actor=actor,
            )
            creditor_notify(
                case=case,
                kind=CreditorNotification.Kind.DISPUTE_OPENED,
                message=f"{case.reference}: the debtor disputes the claim ({reason}); please answer with evidence",
                data={"dispute": dispute.pk, "reason": reason},
            )
    except BaseException:
        stored_files_delete(stored)
        raise
    return dispute


def _answerable(dispute: Dispute, actor: Actor) -> Dispute:
    if actor.role not in ANSWERING_ROLES:
        raise PermissionDeniedError("Your role cannot answer disputes.")
    locked = Dispute.objects.select_for_update().select_related("case__creditor").get(pk=dispute.pk)
    if Case.objects.visible_to(actor).filter(pk=locked.case_id).count() == 0:
        raise PermissionDeniedError("Not your case.")
    if locked.status != Dispute.Status.OPEN:
        raise ConflictError("This dispute was already answered.", field="dispute")
    return locked


def _resume(case: Case, actor: Actor, why: str) -> None:
    """Chasing resumes at once: the case is due for the engine again."""
    case_transition(case=case, to=Status.ACTIVE, actor=actor, reason=why)
    case.next_action_at = timezone.now()
    case.save(update_fields=["next_action_at", "updated_at"])


@transaction.atomic
def dispute_uphold(*, dispute: Dispute, reduce_minor: int | None, note: str, actor: Actor) -> Dispute:
    """The creditor accepts: reduce the claim by ``reduce_minor``, or cancel what is left (``None``)."""
    dispute = _answerable(dispute, actor)
    case = Case.objects.select_for_update().select_related("creditor").get(pk=dispute.case_id)
    credited = case_credit(
        case=case,
        amount_minor=reduce_minor,
        why=f"dispute {dispute.pk} upheld: {note}",
        key=f"dispute:{dispute.pk}",
        actor=actor,
    )
    work_item_close(actor=actor, kind=WorkItem.Kind.DISPUTE, source=f"dispute:{dispute.pk}", outcome="upheld")
    dispute.status = Dispute.Status.UPHELD
    dispute.credited_minor = credited
    dispute.answer_note = note.strip()[:MAX_STATEMENT]
    dispute.answered_at = timezone.now()
    dispute.answered_by = actor.label[:100]
    dispute.save()

    left = case_outstanding_minor(case=case)
    audit_record(
        actor=actor,
        verb="dispute.upheld",
        subject=case,
        data={"dispute": dispute.pk, "credited": credited, "outstanding": left, "note": dispute.answer_note},
    )
    if left == 0:
        case_transition(case=case, to=Status.CLOSED, actor=actor, reason="dispute upheld: claim cancelled")
    else:
        _resume(case, actor, "dispute upheld: claim reduced")
    return dispute


def dispute_reject(*, dispute: Dispute, note: str, files: Sequence[tuple[str, IO[bytes]]], actor: Actor) -> Dispute:
    """The creditor maintains the claim and proves it: evidence goes to the debtor, chasing resumes."""
    if not files:
        raise ValidationError("Attach the evidence that answers the dispute.", field="files")
    if not note.strip():
        raise ValidationError("Explain your answer to the debtor.", field="note")
    stored = _store_all(files)
    try:
        with transaction.atomic():
            dispute = _answerable(dispute, actor)
            case = Case.objects.select_for_update().select_related("creditor").get(pk=dispute.case_id)
            _attach(dispute, DisputeFile.Side.CREDITOR, stored, actor)
            work_item_close(actor=actor, kind=WorkItem.Kind.DISPUTE, source=f"dispute:{dispute.pk}", outcome="rejected")
            dispute.status = Dispute.Status.REJECTED
            dispute.answer_note = note.strip()[:MAX_STATEMENT]
            dispute.answered_at = timezone.now()
            dispute.answered_by = actor.label[:100]
            dispute.save()
            audit_record(
                actor=actor,
                verb="dispute.rejected",
                subject=case,
                data={"dispute": dispute.pk, "files": [f.sha256 for f in stored], "note": dispute.answer_note},
            )
            _resume(case, actor, "dispute answered with evidence")
            transaction.on_commit(lambda: _mail_answer(dispute.pk))
    except BaseException:
        stored_files_delete(stored)
        raise
    return dispute


def _mail_answer(dispute_id: int) -> None:
    """The creditor's answer and evidence, e-mailed to the debtor (never blocks the answer itself)."""
    try:
        dispute = Dispute.objects.select_related("case__debtor", "case__creditor__agency").get(pk=dispute_id)
        case, debtor = dispute.case, dispute.case.debtor
        if not debtor.email or debtor.email_bounced:
            return

        language = debtor.language or "fr"
        with translation.override(language):
            body = render_to_string(
                "payments/dispute_answer_email.txt",
                {
                    "dispute": dispute,
                    "case": case,
                    "debtor": debtor,
                    "creditor": case.creditor,
                    "agency": case.creditor.agency,
                    "outstanding": Money(case_outstanding_minor(case=case), case.currency).format(
                        "fr_FR" if language.startswith("fr") else "en_GB"
                    ),
                    "link": portal_url(case_id=case.pk, reference=case.reference),
                },
            )
            subject = translation.gettext("Answer to your dispute — case %(ref)s") % {"ref": case.reference}
        message = EmailMessage(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[debtor.email],
            headers={"X-Relance-Dispute": str(dispute.pk)},
        )
        for f in dispute.files.filter(side=DisputeFile.Side.CREDITOR):
            with f.file.open("rb") as fh:
                message.attach(f.original_filename, fh.read(), f.content_type)
        message.send()
        with transaction.atomic():
            audit_record(
                actor=Actor.system("mailer"),
                verb="dispute.answer_sent",
                subject=case,
                data={"dispute": dispute.pk, "to": "debtor e-mail"},
            )
    except Exception:
        log.exception("the answer to dispute %s could not be e-mailed", dispute_id)
