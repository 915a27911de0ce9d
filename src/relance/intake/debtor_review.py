"""Writes: a person decides a possible duplicate found at intake (``claims.DebtorMatchReview``).

Matching never merges on a weak key (match.py): an ambiguous incoming debtor is created apart and the
pair waits for a human. Two decisions, each one transaction with its audit event:

* **keep apart** — the review is closed as "different people"; the same pair is never proposed again
  (the pair is unique, and intake adds reviews with ``ignore_conflicts``);
* **same person** — the debtor created at intake is merged into the one already known (the survivor):
  every row pointing at the duplicate (claims, cases, actions, and whatever else references a debtor)
  now points at the survivor; blank fields of the survivor are filled from the duplicate; opt-outs of
  either apply to the survivor (a person who said stop is not contacted again); the duplicate, now
  unreferenced, is deleted (no stale copy of personal data, and future intake matches one person).
  Cases are not merged: each keeps its claims, ledger accounts and history; contact pressure, counted
  per debtor, now adds up across them.

Tenant safety: staff decide only reviews of their own agency (both debtors); any other id is "not
found", exactly like an absent one.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q

from relance.audit.services import audit_record
from relance.claims.models import Debtor, DebtorMatchReview
from relance.core.errors import ConflictError, NotFoundError
from relance.tenancy.actors import Actor

DECIDING_ROLES = frozenset({"agency_admin", "supervisor", "agent"})

# Filled from the duplicate when blank on the survivor; an address moves as one block.
_FILL = ("first_name", "last_name", "company_name", "siren", "email", "phone")
_ADDRESS = ("address_line1", "address_line2", "postcode", "city", "country")
_ANY_OPT_OUT = ("email_opt_out", "sms_opt_out")


class DebtorReviewNotFoundError(NotFoundError):
    code = "debtor_review.not_found"
    title = "No such open review"


class DebtorMergeConflictError(ConflictError):
    code = "debtor_review.merge_conflict"
    title = "These debtors cannot be merged automatically"


def _open_review(*, actor: Actor, review_id: int) -> DebtorMatchReview:
    if not actor.is_staff or actor.agency_id is None or actor.role not in DECIDING_ROLES:
        raise DebtorReviewNotFoundError(review_id=review_id)
    review = (
        DebtorMatchReview.objects.select_for_update()
        .select_related("debtor", "candidate")
        .filter(
            pk=review_id,
            status=DebtorMatchReview.Status.OPEN,
            debtor__agency_id=actor.agency_id,
            candidate__agency_id=actor.agency_id,
        )
        .first()
    )
    if review is None:
        raise DebtorReviewNotFoundError(review_id=review_id)
    return review


@transaction.atomic
def debtor_review_keep_apart(*, actor: Actor, review_id: int) -> DebtorMatchReview:
    """Close a review as "different people"."""
    review = _open_review(actor=actor, review_id=review_id)
    review.status = DebtorMatchReview.Status.DISTINCT
    review.save(update_fields=["status"])
    audit_record(
        actor=actor,
        verb="debtor_review.kept_apart",
        subject=review.debtor,
        data={"review": review.pk, "debtor": review.debtor_id, "candidate": review.candidate_id, "rule": review.rule},
    )
    return review


@transaction.atomic
def debtor_review_merge(*, actor: Actor, review_id: int) -> Debtor:
    """The same person: merge the debtor created at intake into the known one; returns the survivor."""
    review = _open_review(actor=actor, review_id=review_id)
    survivor = Debtor.objects.select_for_update().get(pk=review.candidate_id)
    duplicate = Debtor.objects.select_for_update().get(pk=review.debtor_id)
    filled = _fill_blanks(survivor, duplicate)
    moved = _repoint(duplicate=duplicate, survivor=survivor)
    _repoint_reviews(duplicate=duplicate, survivor=survivor, decided=review.pk)
    survivor.save()  # recomputes the matching keys (e-mail, name + postcode)
    duplicate_id = duplicate.pk
    duplicate.delete()  # also deletes the decided review (cascade): the audit event below is its record
    audit_record(
        actor=actor,
        verb="debtor.merged",
        subject=survivor,
        data={
            "review": review.pk,
            "merged": duplicate_id,
            "rule": review.rule,
            "filled": filled,
            "moved": moved,
        },
    )
    return survivor


def _fill_blanks(survivor: Debtor, duplicate: Debtor) -> list[str]:
    filled = [name for name in _FILL if not getattr(survivor, name) and getattr(duplicate, name)]
    for name in filled:
        setattr(survivor, name, getattr(duplicate, name))
    if "email" in filled:
        survivor.email_bounced = duplicate.email_bounced
    if not survivor.address_line1 and duplicate.address_line1:
        for name in _ADDRESS:
            setattr(survivor, name, getattr(duplicate, name))
        survivor.address_invalid = duplicate.address_invalid
        survivor.address_invalid_at = duplicate.address_invalid_at
        survivor.address_invalid_reason = duplicate.address_invalid_reason
        filled.append("address")
    for name in _ANY_OPT_OUT:
        if getattr(duplicate, name) and not getattr(survivor, name):
            setattr(survivor, name, True)
            filled.append(name)
    return filled


def _repoint(*, duplicate: Debtor, survivor: Debtor) -> dict[str, int]:
    """Every foreign key to the duplicate (whichever app declares it) now names the survivor."""
    moved: dict[str, int] = {}
    try:
        with transaction.atomic():
            for relation in Debtor._meta.related_objects:
                model = relation.related_model
                if not isinstance(model, type) or model is DebtorMatchReview:
                    continue
                if not (relation.one_to_many or relation.one_to_one):
                    continue
                name = relation.field.name
                count = model._default_manager.filter(**{name: duplicate}).update(**{name: survivor})
                if count:
                    moved[model._meta.label_lower] = moved.get(model._meta.label_lower, 0) + count
    except IntegrityError as exc:  # e.g. a one-per-debtor row both already have
        raise DebtorMergeConflictError(str(exc), debtor=duplicate.pk, candidate=survivor.pk) from None
    return moved


def _repoint_reviews(*, duplicate: Debtor, survivor: Debtor, decided: int) -> None:
    """Other open reviews about the duplicate are now about the survivor (or moot when they pair it
    with itself or repeat an existing pair)."""
    others = DebtorMatchReview.objects.filter(Q(debtor=duplicate) | Q(candidate=duplicate)).exclude(pk=decided)
    for review in others:
        debtor_id = survivor.pk if review.debtor_id == duplicate.pk else review.debtor_id
        candidate_id = survivor.pk if review.candidate_id == duplicate.pk else review.candidate_id
        pair = Q(debtor_id=debtor_id, candidate_id=candidate_id) | Q(debtor_id=candidate_id, candidate_id=debtor_id)
        if debtor_id == candidate_id or DebtorMatchReview.objects.filter(pair).exclude(pk=review.pk).exists():
            review.delete()
        else:
            DebtorMatchReview.objects.filter(pk=review.pk).update(debtor_id=debtor_id, candidate_id=candidate_id)
