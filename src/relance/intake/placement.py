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
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q, Sum

from relance.audit.services import PendingEvent, audit_record_many
from relance.cases.models import Case, CaseClaim
from relance.cases.services import case_reference_new
from relance.cases.status import TERMINAL
from relance.claims.models import Claim, Debtor, DebtorMatchReview
from relance.claims.services import case_overpayment_account, creditor_claims_account, creditor_payable_account
from relance.intake.match import DebtorIndex, Match, Person
from relance.intake.validate import CleanClaim
from relance.ledger.balance import Line, check_balanced
from relance.ledger.models import Account, LedgerTransaction, Posting
from relance.ledger.services import account_balance, ledger_post
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

CREDIT_NOTE = "claim.credit_note"
# PostgreSQL writes new claims with COPY (``bulk_pg``); False forces the ORM path (tests compare both).
PG_COPY = True


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
    cur = claim.currency
    # A lower amount is a credit note from the creditor: Dr creditor claims / Cr claim (never edited).
    # What the debtor already paid beyond the new amount becomes refundable to them, taken from what
    # the creditor is owed — the claim never goes below zero.
    # The full reduction is credited to the claim (so its face amount stays readable from the ledger);
    # an excess over the outstanding is moved straight back out, into the debtor's refundable balance.
    claims_contra = creditor_claims_account(claim.creditor, cur)
    refund = max(reduction - max(account_balance(key=claim.ledger_key), 0), 0)
    lines = [Line.dr(claims_contra, reduction, cur), Line.cr(claim.ledger_key, reduction, cur)]
    if refund:
        case = claim.case_link.case
        overpaid = case_overpayment_account(case_id=case.pk, case_reference=case.reference, currency=cur)
        lines += [
            Line.dr(claim.ledger_key, refund, cur),
            Line.cr(overpaid, refund, cur),
            Line.dr(creditor_payable_account(claim.creditor, cur), refund, cur),
            Line.cr(claims_contra, refund, cur),
        ]
    ledger_post(
        idempotency_key=f"{CREDIT_NOTE}:{claim.pk}:{new.minor}",
        code=CREDIT_NOTE,
        lines=lines,
        memo=f"Credit note on {claim.external_ref}: {face} -> {new.minor}",
    )
    audit_record_many(
        actor=actor,
        events=[
            PendingEvent(
                "claim.credit_note",
                "claims.claim",
                claim.pk,
                {"from": face, "to": new.minor, "reduction": reduction, "refundable": refund},
            )
        ],
    )
    return RowOutcome(index, "credited", claim.pk, case_id, f"reduced by {reduction} (minor units)")


def claim_events(
    *,
    creditor_id: int,
    claim_id: int,
    external_ref: str,
    amount: int,
    currency: str,
    case_id: int,
    debtor_id: int,
    rule: str,
) -> list[PendingEvent]:
    """The audit events of one placed claim (both write paths)."""
    return [
        PendingEvent(
            "claim.created",
            "claims.claim",
            claim_id,
            {
                "creditor": creditor_id,
                "external_ref": external_ref,
                "amount": amount,
                "currency": currency,
                "case": case_id,
                "debtor": debtor_id,
                "debtor_match": rule,
            },
        ),
        PendingEvent("case.claim_attached", "cases.case", case_id, {"claim": claim_id}),
    ]


# The columns a new debtor is written with, in the order of ``DebtorPlan.new`` values.
NEW_DEBTOR_FIELDS = (
    "kind",
    "first_name",
    "last_name",
    "company_name",
    "siren",
    "siret",
    "vat_number",
    "iban",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country",
    "language",
    "email_key",
    "name_key",
)


@dataclass(frozen=True, slots=True)
class DebtorPlan:
    """Who each item's debtor is, decided in Python by ``match.py`` for both write paths.

    ``assigned[i]``: a known debtor's id (> 0), or ``-(k + 1)`` for the k-th new debtor; ``rules[i]``:
    the rule that decided; ``new[k]``: (item index, the Match, values of ``NEW_DEBTOR_FIELDS``). An
    ambiguous match's candidates may be negative: a debtor created earlier in the same chunk.
    """

    assigned: list[int]
    rules: list[str]
    new: list[tuple[int, Match, tuple[str, ...]]]


def _incoming(items: Sequence[CleanClaim]) -> list[Person]:
    return [
        Person(
            id=0,
            email=item.email,
            siren=item.data.debtor.siren.strip(),
            phone=item.phone,
            last_name=item.data.debtor.last_name or item.data.debtor.company_name,
            first_name=item.data.debtor.first_name,
            postcode=item.data.debtor.postcode,
        )
        for item in items
    ]


def _wanted(incoming: list[Person]) -> tuple[list[dict[str, str]], dict[str, set[str]], set[str]]:
    keys = [p.keys() for p in incoming]
    wanted = {name: {k[name] for k in keys if k[name]} for name in ("email", "siren", "name_postcode")}
    phones = {p.phone for p in incoming if p.phone}
    return keys, wanted, phones


def plan_debtors(
    items: Sequence[CleanClaim], incoming: list[Person], keys: list[dict[str, str]], known: list[Person]
) -> DebtorPlan:
    """Match each item against the known debtors and the ones created earlier in the chunk (pure)."""
    index = DebtorIndex()
    for person in known:
        index.add(person)
    assigned: list[int] = []
    rules: list[str] = []
    new: list[tuple[int, Match, tuple[str, ...]]] = []
    for i, (item, person, keys_of) in enumerate(zip(items, incoming, keys, strict=True)):
        found = index.match(person)
        rules.append(found.rule)
        if found.debtor_id is not None:
            assigned.append(found.debtor_id)
            continue
        d = item.data.debtor
        fields = (
            d.kind,
            d.first_name.strip(),
            d.last_name.strip(),
            d.company_name.strip(),
            person.siren,
            d.siret,
            d.vat_number,
            d.iban,
            item.email,
            item.phone,
            d.address_line1.strip(),
            d.address_line2.strip(),
            d.postcode.strip(),
            d.city.strip(),
            d.country.upper(),
            d.language or "fr",
            keys_of["email"],
            keys_of["name_postcode"],
        )
        # Later rows of this chunk may be the same person: index the new debtor under a temporary id.
        temporary = -(len(new) + 1)
        index.add(replace(person, id=temporary))
        new.append((i, found, fields))
        assigned.append(temporary)
    return DebtorPlan(assigned, rules, new)


def _create(
    *,
    creditor: Creditor,
    fresh: list[tuple[int, CleanClaim]],
    actor: Actor,
    placed_at: datetime,
    strategy_key: str,
    strategy_version: int,
) -> list[RowOutcome]:
    items = [item for _, item in fresh]
    incoming = _incoming(items)
    keys, wanted, phones = _wanted(incoming)
    if connection.vendor == "postgresql" and PG_COPY:
        # The same decisions, written with COPY (bulk_pg's docstring).
        from relance.intake import bulk_pg  # noqa: PLC0415 (PostgreSQL only)

        with connection.cursor() as cursor:
            known = bulk_pg.known_people(cursor.cursor, creditor.agency_id, wanted, phones)
        plan = plan_debtors(items, incoming, keys, known)
        placed = bulk_pg.create_many(
            creditor=creditor,
            fresh=fresh,
            plan=plan,
            actor=actor,
            placed_at=placed_at,
            strategy_key=strategy_key,
            strategy_version=strategy_version,
        )
        return [RowOutcome(index, "created", claim_id, case_id) for index, claim_id, case_id in placed]

    events: list[PendingEvent] = []
    plan = plan_debtors(items, incoming, keys, _known_people(creditor, wanted, phones))
    debtor_ids = _create_debtors(creditor, plan, events)
    # Cases: the debtor's open case with this creditor (consolidation) or a new one.
    case_for: dict[tuple[int, str], Case] = {}
    if creditor.consolidate_cases:
        for open_case in (
            Case.objects.filter(creditor=creditor, debtor_id__in={d for d in debtor_ids if d > 0})
            .exclude(status__in=[s.value for s in TERMINAL])
            .order_by("pk")
        ):
            case_for.setdefault((open_case.debtor_id, open_case.currency), open_case)
    new_cases: list[Case] = []
    item_case: list[Case] = []
    for i, item in enumerate(items):
        key = (debtor_ids[i], item.amount.currency)
        case: Case | None = case_for.get(key) if creditor.consolidate_cases else None
        if case is None:
            case = Case(
                creditor=creditor,
                debtor_id=debtor_ids[i],
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
                debtor_id=debtor_ids[i],
                external_ref=item.data.external_ref,
                invoice_number=item.data.invoice_number,
                invoice_date=item.data.invoice_date,
                due_date=item.data.due_date,
                currency=item.amount.currency,
                original_amount_minor=item.amount.minor,
                segment=creditor.segment,
                description=item.data.description,
            )
            for i, item in enumerate(items)
        ]
    )
    CaseClaim.objects.bulk_create(CaseClaim(case=item_case[i], claim=c) for i, c in enumerate(claims))
    _post_placements(creditor, claims)
    for i, claim in enumerate(claims):
        events += claim_events(
            creditor_id=creditor.pk,
            claim_id=claim.pk,
            external_ref=claim.external_ref,
            amount=claim.original_amount_minor,
            currency=claim.currency,
            case_id=item_case[i].pk,
            debtor_id=debtor_ids[i],
            rule=plan.rules[i],
        )
    audit_record_many(actor=actor, events=events)
    return [RowOutcome(index, "created", claims[i].pk, item_case[i].pk) for i, (index, _) in enumerate(fresh)]


def _known_people(creditor: Creditor, wanted: dict[str, set[str]], phones: set[str]) -> list[Person]:
    """The agency's debtors sharing an indexed normalised key with the chunk (never a full scan)."""
    known = Q(pk__in=[])
    if wanted["email"]:
        known |= Q(email_key__in=wanted["email"])
    if wanted["siren"]:
        known |= Q(siren__in=wanted["siren"])
    if phones:
        known |= Q(phone__in=phones)
    if wanted["name_postcode"]:
        known |= Q(name_key__in=wanted["name_postcode"])
    return [
        Person(
            id=pk,
            email=email,
            siren=siren,
            phone=phone,
            last_name=last or company,
            first_name=first,
            postcode=postcode,
        )
        for pk, email, siren, phone, last, company, first, postcode in Debtor.objects.filter(
            known, agency_id=creditor.agency_id
        )
        .order_by("pk")
        .values_list("pk", "email", "siren", "phone", "last_name", "company_name", "first_name", "postcode")
    ]


def _create_debtors(creditor: Creditor, plan: DebtorPlan, events: list[PendingEvent]) -> list[int]:
    """Insert the plan's new debtors (ORM path); each item's debtor id."""
    created = Debtor.objects.bulk_create(
        [
            Debtor(agency_id=creditor.agency_id, **dict(zip(NEW_DEBTOR_FIELDS, fields, strict=True)))
            for _, _, fields in plan.new
        ]
    )

    def resolve(assigned: int) -> int:
        return assigned if assigned > 0 else created[-assigned - 1].pk

    DebtorMatchReview.objects.bulk_create(
        [
            DebtorMatchReview(debtor=debtor, candidate_id=resolve(candidate), rule="ambiguous")
            for debtor, (_, found, _) in zip(created, plan.new, strict=True)
            for candidate in found.candidates
        ],
        ignore_conflicts=True,
    )
    events += [
        PendingEvent(
            "debtor.created",
            "claims.debtor",
            debtor.pk,
            {"match": found.rule, **({"review": [resolve(c) for c in found.candidates]} if found.candidates else {})},
        )
        for debtor, (_, found, _) in zip(created, plan.new, strict=True)
    ]
    return [resolve(a) for a in plan.assigned]


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
