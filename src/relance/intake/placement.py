"""Placing many validated claims at once: the set-based path shared by the API and file imports.

For a chunk of clean claims of one creditor, in the caller's transaction:
- claims already known by (creditor, external_ref) are compared with their face amount
  (original minus credit notes): same → unchanged; lower → a credit note is posted to the ledger and
  audited; higher → flagged for review, never applied silently;
- new claims get their debtor matched (normalised e-mail, then SIREN) or created, their case found
  (the debtor's open case with this creditor, when the creditor consolidates) or opened, the claim
  created and its placement posted (Dr claim / Cr creditor claims), with audit events — all with bulk
  inserts, a handful of queries per chunk instead of a dozen per claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Lower

from relance.audit.services import PendingEvent, audit_record_many
from relance.cases.models import Case, CaseClaim
from relance.cases.services import case_reference_new
from relance.cases.status import TERMINAL
from relance.claims.models import Claim, Debtor
from relance.claims.services import creditor_claims_account
from relance.intake.validate import CleanClaim
from relance.ledger.balance import Line, check_balanced
from relance.ledger.models import Account, LedgerTransaction, Posting
from relance.ledger.services import ledger_post
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

CREDIT_NOTE = "claim.credit_note"


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """What happened to the ``index``-th item: created | unchanged | credited | review."""

    index: int
    status: str
    claim_id: int
    case_id: int
    detail: str = ""


def claims_place_many(
    *,
    creditor: Creditor,
    items: Sequence[CleanClaim],
    actor: Actor,
    placed_at: datetime,
    strategy_key: str,
    strategy_version: int,
) -> list[RowOutcome]:
    """Place ``items`` (distinct external refs); must run inside a transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claims_place_many must run inside the caller's transaction")
    refs = [item.data.external_ref for item in items]
    if len(set(refs)) != len(refs):
        raise ValueError("duplicate external references in one placement chunk")
    existing = {
        c.external_ref: c
        for c in Claim.objects.filter(creditor=creditor, external_ref__in=refs).select_related("case_link")
    }
    outcomes: list[RowOutcome] = []
    fresh: list[tuple[int, CleanClaim]] = []
    if existing:
        face = _face_amounts(list(existing.values()))
    for index, item in enumerate(items):
        claim = existing.get(item.data.external_ref)
        if claim is None:
            fresh.append((index, item))
        else:
            outcomes.append(_compare(index, item, claim, face[claim.pk], actor))
    if fresh:
        outcomes += _create(
            creditor=creditor,
            fresh=fresh,
            actor=actor,
            placed_at=placed_at,
            strategy_key=strategy_key,
            strategy_version=strategy_version,
        )
    outcomes.sort(key=lambda o: o.index)
    return outcomes


def _face_amounts(claims: list[Claim]) -> dict[int, int]:
    """Original amount minus the credit notes already posted, per claim."""
    credited = dict(
        Posting.objects.filter(
            transaction__code=CREDIT_NOTE, account__key__in=[c.ledger_key for c in claims], credit__gt=0
        )
        .values("account__key")
        .annotate(total=Sum("credit"))
        .values_list("account__key", "total")
    )
    return {c.pk: c.original_amount_minor - (credited.get(c.ledger_key) or 0) for c in claims}


def _compare(index: int, item: CleanClaim, claim: Claim, face: int, actor: Actor) -> RowOutcome:
    case_id = claim.case_link.case_id
    new = item.amount
    if new.currency != claim.currency:
        return RowOutcome(
            index, "review", claim.pk, case_id, f"currency changed from {claim.currency} to {new.currency}"
        )
    if new.minor == face:
        return RowOutcome(index, "unchanged", claim.pk, case_id)
    if new.minor > face:
        return RowOutcome(
            index, "review", claim.pk, case_id, f"amount increased from {face} to {new.minor} (minor units)"
        )
    reduction = face - new.minor
    # A lower amount is a credit note from the creditor: Dr creditor claims / Cr claim (never edited).
    ledger_post(
        idempotency_key=f"{CREDIT_NOTE}:{claim.pk}:{new.minor}",
        code=CREDIT_NOTE,
        lines=[
            Line.dr(creditor_claims_account(claim.creditor, claim.currency), reduction, claim.currency),
            Line.cr(claim.ledger_key, reduction, claim.currency),
        ],
        memo=f"Credit note on {claim.external_ref}: {face} -> {new.minor}",
    )
    audit_record_many(
        actor=actor,
        events=[
            PendingEvent(
                "claim.credit_note", "claims.claim", claim.pk, {"from": face, "to": new.minor, "reduction": reduction}
            )
        ],
    )
    return RowOutcome(index, "credited", claim.pk, case_id, f"reduced by {reduction} (minor units)")


def _create(
    *,
    creditor: Creditor,
    fresh: list[tuple[int, CleanClaim]],
    actor: Actor,
    placed_at: datetime,
    strategy_key: str,
    strategy_version: int,
) -> list[RowOutcome]:
    events: list[PendingEvent] = []
    debtors = _debtors(creditor, [item for _, item in fresh], events)
    # Cases: the debtor's open case with this creditor (consolidation) or a new one.
    case_for: dict[tuple[int, str], Case] = {}
    keys = {(debtors[i].pk, item.amount.currency) for i, (_, item) in enumerate(fresh)}
    if creditor.consolidate_cases:
        for open_case in (
            Case.objects.filter(creditor=creditor, debtor_id__in={k[0] for k in keys})
            .exclude(status__in=[s.value for s in TERMINAL])
            .order_by("pk")
        ):
            case_for.setdefault((open_case.debtor_id, open_case.currency), open_case)
    new_cases: list[Case] = []
    item_case: list[Case] = []
    for i, (_, item) in enumerate(fresh):
        key = (debtors[i].pk, item.amount.currency)
        case: Case | None = case_for.get(key) if creditor.consolidate_cases else None
        if case is None:
            case = Case(
                creditor=creditor,
                debtor=debtors[i],
                currency=item.amount.currency,
                reference=case_reference_new(),
                placed_at=placed_at,
                next_action_at=placed_at,
                strategy_key=strategy_key,
                strategy_version=strategy_version,
            )
            new_cases.append(case)
            case_for[key] = case
        item_case.append(case)
    Case.objects.bulk_create(new_cases)
    events += [PendingEvent("case.opened", "cases.case", c.pk, {"reference": c.reference}) for c in new_cases]

    claims = Claim.objects.bulk_create(
        [
            Claim(
                creditor=creditor,
                debtor=debtors[i],
                external_ref=item.data.external_ref,
                invoice_number=item.data.invoice_number,
                invoice_date=item.data.invoice_date,
                due_date=item.data.due_date,
                currency=item.amount.currency,
                original_amount_minor=item.amount.minor,
                segment=creditor.segment,
                description=item.data.description,
            )
            for i, (_, item) in enumerate(fresh)
        ]
    )
    CaseClaim.objects.bulk_create(CaseClaim(case=item_case[i], claim=c) for i, c in enumerate(claims))
    _post_placements(creditor, claims)
    for i, claim in enumerate(claims):
        events.append(
            PendingEvent(
                "claim.created",
                "claims.claim",
                claim.pk,
                {
                    "creditor": creditor.pk,
                    "external_ref": claim.external_ref,
                    "amount": claim.original_amount_minor,
                    "currency": claim.currency,
                    "case": item_case[i].pk,
                },
            )
        )
        events.append(PendingEvent("case.claim_attached", "cases.case", item_case[i].pk, {"claim": claim.pk}))
    audit_record_many(actor=actor, events=events)
    return [RowOutcome(index, "created", claims[i].pk, item_case[i].pk) for i, (index, _) in enumerate(fresh)]


def _debtors(creditor: Creditor, items: list[CleanClaim], events: list[PendingEvent]) -> list[Debtor]:
    """Match each item's debtor by normalised e-mail, then SIREN, within the agency; else create it."""
    emails = {item.email.lower() for item in items if item.email}
    sirens = {item.data.debtor.siren.strip() for item in items if item.data.debtor.siren.strip()}
    pool = Debtor.objects.filter(agency_id=creditor.agency_id)
    by_email: dict[str, Debtor] = {}
    by_siren: dict[str, Debtor] = {}
    if emails:
        matches = pool.alias(email_lower=Lower("email")).filter(email_lower__in=emails).order_by("pk")
        for match in matches:
            by_email.setdefault(match.email.lower(), match)
    if sirens:
        for known in pool.filter(siren__in=sirens).order_by("pk"):
            by_siren.setdefault(known.siren, known)
    result: list[Debtor] = []
    created: list[tuple[Debtor, str]] = []
    for item in items:
        d = item.data.debtor
        siren = d.siren.strip()
        debtor: Debtor | None = (by_email.get(item.email.lower()) if item.email else None) or (
            by_siren.get(siren) if siren else None
        )
        if debtor is None:
            debtor = Debtor(
                agency_id=creditor.agency_id,
                kind=d.kind,
                first_name=d.first_name.strip(),
                last_name=d.last_name.strip(),
                company_name=d.company_name.strip(),
                siren=siren,
                email=item.email,
                phone=item.phone,
                address_line1=d.address_line1.strip(),
                address_line2=d.address_line2.strip(),
                postcode=d.postcode.strip(),
                city=d.city.strip(),
                country=d.country.upper(),
                language=d.language or "fr",
            )
            created.append((debtor, "new"))
            if item.email:
                by_email[item.email.lower()] = debtor
            if siren:
                by_siren[siren] = debtor
        result.append(debtor)
    Debtor.objects.bulk_create([debtor for debtor, _ in created])
    events += [PendingEvent("debtor.created", "claims.debtor", debtor.pk, {"match": why}) for debtor, why in created]
    return result


def _post_placements(creditor: Creditor, claims: list[Claim]) -> None:
    """Dr claim receivable / Cr creditor claims, one balanced transaction per claim."""
    contra: dict[str, Account] = {}
    for currency in {c.currency for c in claims}:
        contra[currency] = Account.objects.get(key=creditor_claims_account(creditor, currency))
    accounts = Account.objects.bulk_create(
        Account(
            key=c.ledger_key,
            name=f"Claim {creditor.slug}/{c.external_ref}",
            kind=Account.Kind.ASSET,
            currency=c.currency,
        )
        for c in claims
    )
    txns = LedgerTransaction.objects.bulk_create(
        LedgerTransaction(
            idempotency_key=f"claim.placed:{c.pk}",
            code="claim.placed",
            memo=f"Placement of {creditor.slug}/{c.external_ref}",
            occurred_at=c.created_at,
        )
        for c in claims
    )
    postings: list[Posting] = []
    for claim, account, txn in zip(claims, accounts, txns, strict=True):
        amount, cur = claim.original_amount_minor, claim.currency
        check_balanced([Line.dr(account.key, amount, cur), Line.cr(contra[cur].key, amount, cur)])
        postings += [
            Posting(transaction=txn, account=account, debit=amount, credit=0, currency=cur),
            Posting(transaction=txn, account=contra[cur], debit=0, credit=amount, currency=cur),
        ]
    Posting.objects.bulk_create(postings, batch_size=2000)
