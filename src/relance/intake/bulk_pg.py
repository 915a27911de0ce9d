"""PostgreSQL fast path for placing many new claims: ``COPY`` instead of ORM objects.

``placement.claims_place_many`` calls this for the new claims of a chunk when the database is
PostgreSQL; SQLite (the embedded default) keeps the ORM path. Both paths make the same decisions
from the same pure code (debtor matching ``placement.plan_debtors`` → ``match.py``, case
consolidation, amounts) and write the same rows — debtors, cases, claims, case links, one ledger
account and one balanced placement transaction (two postings) per claim, the same audit events —
so a file gives identical claims, debtors, cases and balances on both (tested on the corpus).

What differs is only how rows reach the database: ids are drawn from the tables' sequences up
front (one query), then each table is filled with one ``COPY … FROM STDIN`` per chunk, in the
caller's transaction. Nothing is half-written: the chunk commits or rolls back as a whole, and the
ledger's deferred balance trigger still checks every posting at commit. Columns not set here take
the model field's default, so a field added later with a default needs no change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Model
from django.utils import timezone

from relance.audit.services import PendingEvent, audit_record_many
from relance.cases.models import Case, CaseClaim
from relance.cases.services import case_reference_new
from relance.cases.status import TERMINAL
from relance.claims.models import Claim, Debtor, DebtorMatchReview
from relance.claims.services import creditor_claims_account
from relance.intake.match import Person
from relance.intake.validate import CleanClaim
from relance.ledger.models import Account, LedgerTransaction, Posting
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor

if TYPE_CHECKING:
    from relance.intake.placement import DebtorPlan


class _Table:
    """COPY rows of ``model`` giving ``given`` columns; every other column gets its field default."""

    def __init__(self, model: type[Model], given: Sequence[str], now: datetime) -> None:
        fields = {f.attname: f for f in model._meta.concrete_fields}
        unknown = set(given) - set(fields)
        if unknown:
            raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
        self.table = model._meta.db_table
        self.columns = [fields[name].column for name in given]
        tail: list[Any] = []
        self.per_row: list[Any] = []  # fields whose default is computed for each row (uuid4, tokens…)
        for name, f in fields.items():
            if name in given:
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value: Any = now
            elif f.has_default() and callable(f.default) and f.default not in (dict, list):
                self.per_row.append(f)
                continue
            elif f.has_default() or not f.null:
                value = f.get_db_prep_save(f.get_default(), connection)
            else:
                value = None
            self.columns.append(f.column)
            tail.append(value)
        self.columns += [f.column for f in self.per_row]
        self.tail = tuple(tail)

    def copy(self, cursor: Any, rows: Iterable[Sequence[Any]]) -> None:
        columns = ", ".join(f'"{c}"' for c in self.columns)
        with cursor.copy(f'COPY "{self.table}" ({columns}) FROM STDIN') as copy:
            tail, per_row = self.tail, self.per_row
            for row in rows:
                if per_row:
                    fresh = [f.get_db_prep_save(f.get_default(), connection) for f in per_row]
                    copy.write_row((*row, *tail, *fresh))
                else:
                    copy.write_row((*row, *tail))


def _ids(cursor: Any, wanted: dict[type[Model], int]) -> dict[type[Model], list[int]]:
    """``n`` fresh primary keys per model, from each table's own sequence (one round trip)."""
    models = [m for m, n in wanted.items() if n]
    out: dict[type[Model], list[int]] = {m: [] for m in wanted}
    if not models:
        return out
    parts = [  # table names come from the models, never from input
        f"SELECT {i}, nextval(pg_get_serial_sequence('\"{m._meta.db_table}\"', 'id')) FROM generate_series(1, %s)"  # noqa: S608
        for i, m in enumerate(models)
    ]
    cursor.execute(" UNION ALL ".join(parts), [wanted[m] for m in models])
    for i, value in cursor.fetchall():
        out[models[i]].append(value)
    for m in models:
        out[m].sort()
    return out


def known_people(cursor: Any, agency_id: int, wanted: dict[str, set[str]], phones: set[str]) -> list[Person]:
    """The agency's debtors sharing an indexed matching key with the chunk (as ``placement``)."""
    clauses, params = [], []
    for column, values in (
        ("email_key", wanted["email"]),
        ("siren", wanted["siren"]),
        ("phone", phones),
        ("name_key", wanted["name_postcode"]),
    ):
        if values:
            clauses.append(f"{column} = ANY(%s)")
            params.append(list(values))
    if not clauses:
        return []
    cursor.execute(
        "SELECT id, email, siren, phone, last_name, company_name, first_name, postcode FROM claims_debtor "  # noqa: S608
        f"WHERE agency_id = %s AND ({' OR '.join(clauses)}) ORDER BY id",
        [agency_id, *params],
    )
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
        for pk, email, siren, phone, last, company, first, postcode in cursor.fetchall()
    ]


def create_many(
    *,
    creditor: Creditor,
    fresh: list[tuple[int, CleanClaim]],
    plan: DebtorPlan,
    actor: Actor,
    placed_at: datetime,
    strategy_key: str,
    strategy_version: int,
) -> list[tuple[int, int, int]]:
    """Write the new claims of a chunk; ``(index, claim_id, case_id)`` per item, in order."""
    from relance.intake.placement import NEW_DEBTOR_FIELDS, claim_events  # noqa: PLC0415 (placement imports this module lazily)

    now = timezone.now()
    items = [item for _, item in fresh]
    new_debtors = plan.new
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the psycopg cursor: COPY support
        # Cases to open: consolidation reuses the debtor's open case in that currency.
        case_for: dict[tuple[int, str], int] = {}
        known_ids = {d for d in plan.assigned if d > 0}
        if creditor.consolidate_cases and known_ids:
            cursor.execute(
                "SELECT id, debtor_id, currency FROM cases_case WHERE creditor_id = %s AND debtor_id = ANY(%s) "
                "AND NOT (status = ANY(%s)) ORDER BY id",
                [creditor.pk, list(known_ids), [s.value for s in TERMINAL]],
            )
            for pk, debtor_id, currency in cursor.fetchall():
                case_for.setdefault((debtor_id, currency), pk)
        # Which items open a case (the first of each (debtor, currency) when consolidating, else each).
        opening: list[int] = []  # item indexes that open a case
        item_case_slot: list[tuple[str, int]] = []  # ("old", case_id) | ("new", k)
        slot_for: dict[tuple[int, str], tuple[str, int]] = {k: ("old", v) for k, v in case_for.items()}
        for i, item in enumerate(items):
            key = (plan.assigned[i], item.amount.currency)
            slot = slot_for.get(key) if creditor.consolidate_cases else None
            if slot is None:
                slot = ("new", len(opening))
                opening.append(i)
                slot_for[key] = slot
            item_case_slot.append(slot)

        n = len(items)
        ids = _ids(
            cursor,
            {
                Debtor: len(new_debtors),
                Case: len(opening),
                Claim: n,
                CaseClaim: n,
                Account: n,
                LedgerTransaction: n,
                Posting: 2 * n,
            },
        )
        debtor_ids = ids[Debtor]

        def debtor_of(assigned: int) -> int:
            return assigned if assigned > 0 else debtor_ids[-assigned - 1]

        debtor_for = [debtor_of(a) for a in plan.assigned]
        if new_debtors:
            _Table(Debtor, ["id", "agency_id", *NEW_DEBTOR_FIELDS], now).copy(
                cursor,
                ((debtor_ids[k], creditor.agency_id, *fields) for k, (_, _match, fields) in enumerate(new_debtors)),
            )
            reviews = [
                DebtorMatchReview(debtor_id=debtor_ids[k], candidate_id=debtor_of(candidate), rule="ambiguous")
                for k, (_, match, _fields) in enumerate(new_debtors)
                for candidate in match.candidates
            ]
            DebtorMatchReview.objects.bulk_create(reviews, ignore_conflicts=True)

        case_ids = ids[Case]
        references = [case_reference_new() for _ in opening]
        _Table(
            Case,
            [
                "id",
                "creditor_id",
                "debtor_id",
                "currency",
                "reference",
                "placed_at",
                "next_action_at",
                "strategy_key",
                "strategy_version",
            ],
            now,
        ).copy(
            cursor,
            (
                (
                    case_ids[k],
                    creditor.pk,
                    debtor_for[i],
                    items[i].amount.currency,
                    references[k],
                    placed_at,
                    placed_at,
                    strategy_key,
                    strategy_version,
                )
                for k, i in enumerate(opening)
            ),
        )
        item_case = [case_ids[v] if kind == "new" else v for kind, v in item_case_slot]

        claim_ids = ids[Claim]
        _Table(
            Claim,
            [
                "id",
                "creditor_id",
                "debtor_id",
                "external_ref",
                "invoice_number",
                "invoice_date",
                "due_date",
                "currency",
                "original_amount_minor",
                "segment",
                "description",
            ],
            now,
        ).copy(
            cursor,
            (
                (
                    claim_ids[i],
                    creditor.pk,
                    debtor_for[i],
                    item.data.external_ref,
                    item.data.invoice_number,
                    item.data.invoice_date,
                    item.data.due_date,
                    item.amount.currency,
                    item.amount.minor,
                    creditor.segment,
                    item.data.description,
                )
                for i, item in enumerate(items)
            ),
        )
        _Table(CaseClaim, ["id", "case_id", "claim_id"], now).copy(
            cursor, zip(ids[CaseClaim], item_case, claim_ids, strict=True)
        )

        # Ledger: one account per claim, one transaction Dr claim / Cr creditor claims per claim.
        contra: dict[str, int] = {}
        for currency in {item.amount.currency for item in items}:
            contra[currency] = Account.objects.only("pk").get(key=creditor_claims_account(creditor, currency)).pk
        account_ids, txn_ids, posting_ids = ids[Account], ids[LedgerTransaction], ids[Posting]
        slug = creditor.slug
        _Table(Account, ["id", "key", "name", "kind", "currency"], now).copy(
            cursor,
            (
                (
                    account_ids[i],
                    f"claim:{claim_ids[i]}",
                    f"Claim {slug}/{item.data.external_ref}"[:200],
                    Account.Kind.ASSET.value,
                    item.amount.currency,
                )
                for i, item in enumerate(items)
            ),
        )
        _Table(LedgerTransaction, ["id", "idempotency_key", "code", "memo", "occurred_at"], now).copy(
            cursor,
            (
                (
                    txn_ids[i],
                    f"claim.placed:{claim_ids[i]}",
                    "claim.placed",
                    f"Placement of {slug}/{item.data.external_ref}"[:300],
                    now,
                )
                for i, item in enumerate(items)
            ),
        )

        def postings() -> Iterable[tuple[int, int, int, int, int, str]]:
            for i, item in enumerate(items):
                amount, cur = item.amount.minor, item.amount.currency
                yield (posting_ids[2 * i], txn_ids[i], account_ids[i], amount, 0, cur)
                yield (posting_ids[2 * i + 1], txn_ids[i], contra[cur], 0, amount, cur)

        _Table(Posting, ["id", "transaction_id", "account_id", "debit", "credit", "currency"], now).copy(
            cursor, postings()
        )

    # Audit: the same events as the ORM path, in the same order.
    events: list[PendingEvent] = [
        PendingEvent(
            "debtor.created",
            "claims.debtor",
            debtor_ids[k],
            {"match": match.rule, **({"review": [debtor_of(c) for c in match.candidates]} if match.candidates else {})},
        )
        for k, (_, match, _fields) in enumerate(new_debtors)
    ]
    events += [
        PendingEvent("case.opened", "cases.case", case_ids[k], {"reference": references[k]})
        for k in range(len(opening))
    ]
    for i, item in enumerate(items):
        events += claim_events(
            creditor_id=creditor.pk,
            claim_id=claim_ids[i],
            external_ref=item.data.external_ref,
            amount=item.amount.minor,
            currency=item.amount.currency,
            case_id=item_case[i],
            debtor_id=debtor_for[i],
            rule=plan.rules[i],
        )
    audit_record_many(actor=actor, events=events)
    return [(index, claim_ids[i], item_case[i]) for i, (index, _) in enumerate(fresh)]
