"""Reads of the debtor portal: everything the case page shows, read once for all its sections.

The case page used to read the same case, claims and ledger balances three times (the view, the
arrangements card and the "more" sections each through their own selectors): 25 queries a page.
``case_page_read`` reads each table once (about a dozen small queries, fewer for a case with no
payment, dispute or return) and hands the same objects to every section. The figures are the same
ones the use cases compute: balances from the ledger (invariant 1), credit notes apart from payments,
the open plan and the pending promise as ``case_arrangements`` chooses them, the returnable invoices as
``payments.returns.returnable_claims`` decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone

from relance.cases.models import Case, CaseClaim
from relance.cases.status import Status
from relance.claims.models import Claim, Evidence
from relance.comms.models import Action
from relance.ledger.models import Account, LedgerTransaction, Posting
from relance.payments.arrangement_models import PaymentPlan, Promise
from relance.payments.models import Payment
from relance.payments.portal_models import Dispute, PaymentReversal, Receipt, ReturnPolicy, ReturnRequest
from relance.tenancy.models import Agency, Creditor

# What the landing and case pages read of a case, its creditor and its agency (attribute names).
_CASE_FIELDS = {"id", "reference", "currency", "status", "portal_failed_attempts", "creditor_id", "debtor_id"}
_CREDITOR_FIELDS = {"id", "legal_name", "trade_name", "mode", "agency_id"}
_AGENCY_FIELDS = {"id", "legal_name", "trust_iban"}
_LINK: tuple[str, list[tuple[type[Model], list[str]]]] | None = None


def _link_query() -> tuple[str, list[tuple[type[Model], list[str]]]]:
    """One fixed statement in portable SQL, built once per process from the models' own table and
    column names (no user input in it): the ORM would compile the same three-table join every request."""
    global _LINK  # noqa: PLW0603
    if _LINK is None:
        q = connection.ops.quote_name
        parts: list[tuple[type[Model], list[str]]] = []
        columns = []
        for model, alias, wanted in (
            (Case, "c", _CASE_FIELDS),
            (Creditor, "k", _CREDITOR_FIELDS),
            (Agency, "a", _AGENCY_FIELDS),
        ):
            fields = [f for f in model._meta.concrete_fields if f.attname in wanted]  # from_db wants this order
            parts.append((model, [f.attname for f in fields]))
            columns += [f"{alias}.{q(f.column)}" for f in fields]
        case_creditor = q(Case._meta.get_field("creditor").column)
        creditor_agency = q(Creditor._meta.get_field("agency").column)
        sql = (
            f"SELECT {', '.join(columns)} FROM {q(Case._meta.db_table)} c "  # noqa: S608 - names from the models
            f"JOIN {q(Creditor._meta.db_table)} k ON k.{q('id')} = c.{case_creditor} "
            f"JOIN {q(Agency._meta.db_table)} a ON a.{q('id')} = k.{creditor_agency} "
            f"WHERE c.{q('id')} = %s AND c.{q('reference')} = %s"
        )
        _LINK = (sql, parts)
    return _LINK


def portal_case_for_link(*, case_id: int, reference: str) -> Case | None:
    """The case a signed portal link names, with its creditor and agency, in one query, or ``None``.

    Only this one case is read (invariant 6: ``Case.objects.visible_to`` a debtor is exactly this
    filter), and only the fields the landing and case pages use: the instances are real model
    instances, so any other field still loads when something reads it (one more query).
    """
    sql, parts = _link_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [case_id, reference])
        row = cursor.fetchone()
    if row is None:
        return None
    found: list[Any] = []
    start = 0
    for model, names in parts:
        found.append(model.from_db(connection.alias, names, row[start : start + len(names)]))
        start += len(names)
    case, creditor, agency = found
    creditor.agency = agency
    case.creditor = creditor
    return case


SENT = (Action.Status.SENT, Action.Status.DELIVERED, Action.Status.BOUNCED)
HISTORY_LIMIT = 50
OPEN_PLAN = ("proposed", "active")
_SECTIONS: list[str] | None = None


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def col(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return connection.ops.quote_name(field.column)


# The sections of the case page that most cases do not have yet, in the order of _sections_exists.
_SECTION_NAMES = ("payments", "evidence", "plans", "promise", "disputes", "returns", "policy", "history")


def _sections_exists() -> list[str]:
    """Which of the page's optional sections have rows: one ``EXISTS`` each (portable SQL, names from the
    models, built once per process), read with the claims: a case without payments, disputes or plans
    costs no query for them."""
    global _SECTIONS  # noqa: PLW0603
    if _SECTIONS is None:
        ev, link = Evidence, CaseClaim
        # (table, extra join, column holding the case, further condition): names from the models only.
        checks = [
            (table(Payment), "", col(Payment, "case"), ""),
            (
                f"{table(ev)} e",
                f"JOIN {table(link)} l ON l.{col(link, 'claim')} = e.{col(ev, 'claim')}",
                f"l.{col(link, 'case')}",
                "",
            ),
            (table(PaymentPlan), "", col(PaymentPlan, "case"), ""),
            (table(Promise), "", col(Promise, "case"), f"AND {col(Promise, 'status')} = %(pending)s"),
            (table(Dispute), "", col(Dispute, "case"), ""),
            (table(ReturnRequest), "", col(ReturnRequest, "case"), ""),
            (
                table(ReturnPolicy),
                "",
                col(ReturnPolicy, "creditor"),
                f"AND {col(ReturnPolicy, 'returns_allowed')} = %(true)s",
            ),
            (
                table(Action),
                "",
                col(Action, "case"),
                f"AND {col(Action, 'status')} IN (%(sent)s, %(delivered)s, %(bounced)s)",
            ),
        ]
        exists = []
        for source, join, owner, condition in checks:
            key = "%(creditor)s" if source == table(ReturnPolicy) else "%(case)s"
            exists.append(f"EXISTS(SELECT 1 FROM {source} {join} WHERE {owner} = {key} {condition})")  # noqa: S608
        _SECTIONS = exists
    return _SECTIONS


def _section_params(case: Case) -> dict[str, int | str | bool]:
    return {
        "case": case.pk,
        "creditor": case.creditor_id,
        "pending": Promise.Status.PENDING.value,
        "true": True,
        "sent": SENT[0].value,
        "delivered": SENT[1].value,
        "bounced": SENT[2].value,
    }


def _sections_present(case: Case) -> dict[str, bool]:
    """Which optional sections of the case page have rows (read with the claims by ``case_page_read``)."""
    return _lines_and_sections(case)[1]


@dataclass(frozen=True, slots=True)
class ClaimLine:
    claim: Claim
    outstanding_minor: int
    credited_minor: int  # credit notes (disputes upheld, returns, lowered amounts): not payments

    @property
    def paid_minor(self) -> int:
        return self.claim.original_amount_minor - self.outstanding_minor


@dataclass(frozen=True, slots=True)
class CasePage:
    lines: list[ClaimLine]
    payments: list[Payment]  # newest first
    receipts: list[Receipt]  # newest first
    reversals: list[PaymentReversal]
    evidence: list[Evidence]
    plan: PaymentPlan | None  # the open plan, else the latest (as ``case_arrangements``)
    promise: Promise | None  # the pending promise
    arrangements_hidden: bool
    disputes: list[Dispute]  # newest first, files prefetched
    returns: list[ReturnRequest]  # newest first
    returnable: list[Claim]
    history: list[Action]  # messages sent, newest first

    @property
    def outstanding_minor(self) -> int:
        return sum(line.outstanding_minor for line in self.lines)

    @property
    def principal_minor(self) -> int:
        return sum(line.claim.original_amount_minor for line in self.lines)

    @property
    def credited_minor(self) -> int:
        return sum(line.credited_minor for line in self.lines)


_CLAIM_FIELDS = {
    "id",
    "creditor_id",
    "debtor_id",
    "external_ref",
    "invoice_number",
    "invoice_date",
    "due_date",
    "currency",
    "original_amount_minor",
}
_CLAIMS: tuple[list[str], str, str, list[str]] | None = None


def _claims_parts() -> tuple[list[str], str, str, list[str]]:
    """The case's claims with their ledger sums (portable SQL, names from the models): debits, credits,
    and the part of them booked by credit notes. The claim's account is ``claim:<id>``
    (``Claim.ledger_key``). Returns the columns, ``FROM … GROUP BY``, ``ORDER BY`` and the claim's fields."""
    global _CLAIMS  # noqa: PLW0603
    if _CLAIMS is None:
        q = connection.ops.quote_name

        fields = [f for f in Claim._meta.concrete_fields if f.attname in _CLAIM_FIELDS]
        note = f"t.{col(LedgerTransaction, 'code')} = %(note)s"
        columns = [f"cl.{q(f.column)}" for f in fields] + [
            f"SUM(p.{col(Posting, 'debit')})",
            f"SUM(p.{col(Posting, 'credit')})",
            f"SUM(CASE WHEN {note} THEN p.{col(Posting, 'credit')} ELSE 0 END)",
            f"SUM(CASE WHEN {note} THEN p.{col(Posting, 'debit')} ELSE 0 END)",
        ]
        key = f"CAST(%(prefix)s AS VARCHAR(20)) || CAST(cl.{q('id')} AS VARCHAR(20))"
        source = (
            f"{table(CaseClaim)} l "
            f"JOIN {table(Claim)} cl ON cl.{q('id')} = l.{col(CaseClaim, 'claim')} "
            f"LEFT JOIN {table(Account)} a ON a.{col(Account, 'key')} = {key} "
            f"LEFT JOIN {table(Posting)} p ON p.{col(Posting, 'account')} = a.{q('id')} "
            f"LEFT JOIN {table(LedgerTransaction)} t ON t.{q('id')} = p.{col(Posting, 'transaction')} "
            f"WHERE l.{col(CaseClaim, 'case')} = %(case)s GROUP BY cl.{q('id')}"
        )
        order = f"cl.{col(Claim, 'due_date')}, cl.{q('id')}"
        _CLAIMS = (columns, source, order, [f.attname for f in fields])
    return _CLAIMS


def _claims_query() -> tuple[str, list[str]]:
    columns, source, order, names = _claims_parts()
    return f"SELECT {', '.join(columns)} FROM {source} ORDER BY {order}", names  # noqa: S608 - model names


def _claim_lines(case: Case) -> list[ClaimLine]:
    sql, names = _claims_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, {"case": case.pk, "prefix": "claim:", "note": "claim.credit_note"})
        rows = cursor.fetchall()
    return [_line(names, row) for row in rows]


_PAGE: tuple[str, list[str]] | None = None


def _page_query() -> tuple[str, list[str]]:
    """The sections statement and the claims statement as one (one round trip instead of two): the
    single row of ``EXISTS`` flags, joined to every claim line (or to none: a row of nulls)."""
    global _PAGE  # noqa: PLW0603
    if _PAGE is None:
        columns, source, _order, names = _claims_parts()
        aliased = ", ".join(f"{column} AS c{i}" for i, column in enumerate(columns))
        flags = _sections_exists()
        due, pk = names.index("due_date"), names.index("id")  # the same order as _claims_query
        sql = (
            f"SELECT {', '.join(f's.s{i}' for i in range(len(flags)))}, "  # noqa: S608 - names from the models
            f"{', '.join(f'c.c{i}' for i in range(len(columns)))} "
            f"FROM (SELECT {', '.join(f'{flag} AS s{i}' for i, flag in enumerate(flags))}) s "
            f"LEFT JOIN (SELECT {aliased} FROM {source}) c ON 1 = 1 "
            f"ORDER BY c.c{due}, c.c{pk}"
        )
        _PAGE = (sql, names)
    return _PAGE


def _lines_and_sections(case: Case) -> tuple[list[ClaimLine], dict[str, bool]]:
    sql, names = _page_query()
    params: dict[str, int | str | bool] = {
        **_section_params(case),
        "prefix": "claim:",
        "note": "claim.credit_note",
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    flags = len(_SECTION_NAMES)
    present = {name: bool(found) for name, found in zip(_SECTION_NAMES, rows[0][:flags], strict=True)}
    return [_line(names, row[flags:]) for row in rows if row[flags] is not None], present


def _line(names: list[str], row: tuple[Any, ...]) -> ClaimLine:
    n = len(names)
    claim = Claim.from_db(connection.alias, names, row[:n])
    debit, credit, note_credit, note_debit = (int(value or 0) for value in row[n:])  # PostgreSQL: numeric
    return ClaimLine(claim=claim, outstanding_minor=debit - credit, credited_minor=note_credit - note_debit)


def case_outstanding_read(*, case: Case) -> int:
    """What is left to pay on the case, from the ledger (invariant 1): the case page's total, in the
    same one statement (the QR code's image reads only this)."""
    return sum(line.outstanding_minor for line in _claim_lines(case))


def case_page_read(*, case: Case, today: date | None = None) -> CasePage:
    """What the debtor's case page shows, for a case already read through its signed link and verified
    session (invariant 6: the debtor's own case only)."""
    lines, present = _lines_and_sections(case)
    claims = [line.claim for line in lines]
    claim_by_id = {c.pk: c for c in claims}
    payments = (
        list(
            Payment.objects.filter(case=case)
            .select_related("receipt")
            .prefetch_related("reversals")
            .order_by("-received_at")
        )
        if present["payments"]
        else []
    )
    receipts = sorted((p.receipt for p in payments if _receipt(p) is not None), key=lambda r: r.issued_at, reverse=True)
    reversals = [rv for p in payments for rv in p.reversals.all()]

    evidence = []
    if present["evidence"]:
        evidence = list(Evidence.objects.filter(claim_id__in=list(claim_by_id)).order_by("claim_id", "pk"))
        for e in evidence:
            e.claim = claim_by_id[e.claim_id]

    hidden = case.status in {"disputed", "on_hold"} or case.is_closed
    plan = promise = None
    if not hidden and present["plans"]:
        plans = list(PaymentPlan.objects.filter(case=case).order_by("-created_at", "-pk"))
        open_plans = [p for p in plans if p.status in OPEN_PLAN]
        plan = min(open_plans, key=lambda p: p.pk) if open_plans else (plans[0] if plans else None)
    if not hidden and present["promise"]:
        promise = Promise.objects.filter(case=case, status=Promise.Status.PENDING).order_by("pk").first()

    disputes = (
        list(Dispute.objects.filter(case=case).prefetch_related("files").order_by("-created_at"))
        if present["disputes"]
        else []
    )
    returns = list(ReturnRequest.objects.filter(case=case).order_by("-created_at")) if present["returns"] else []
    for r in returns:
        r.claim = claim_by_id.get(r.claim_id, r.claim)
    returnable = (
        _returnable(case=case, lines=lines, returns=returns, today=today or timezone.localdate())
        if present["policy"]
        else []
    )
    history = (
        list(Action.objects.filter(case=case, status__in=SENT).order_by("-sent_at")[:HISTORY_LIMIT])
        if present["history"]
        else []
    )
    return CasePage(
        lines=lines,
        payments=payments,
        receipts=receipts,
        reversals=reversals,
        evidence=evidence,
        plan=plan,
        promise=promise,
        arrangements_hidden=hidden,
        disputes=disputes,
        returns=returns,
        returnable=returnable,
        history=history,
    )


def _receipt(payment: Payment) -> Receipt | None:
    try:
        return payment.receipt
    except Receipt.DoesNotExist:
        return None


def _returnable(*, case: Case, lines: list[ClaimLine], returns: list[ReturnRequest], today: date) -> list[Claim]:
    """``payments.returns.returnable_claims`` on what the page already read (tested to agree)."""
    if case.is_closed or case.status == Status.DISPUTED.value:
        return []
    policy = ReturnPolicy.objects.filter(creditor_id=case.creditor_id).first()
    if policy is None or not policy.returns_allowed:
        return []
    pending = {r.claim_id for r in returns if r.status == ReturnRequest.Status.REQUESTED}
    out = []
    for line in lines:
        if line.outstanding_minor <= 0 or line.claim.pk in pending:
            continue
        age = policy.max_invoice_age_days
        if age and (today - line.claim.invoice_date).days > age:
            continue
        out.append(line.claim)
    return out
