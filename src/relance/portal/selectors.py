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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from operator import itemgetter
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Field, Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone
from psycopg.types.numeric import Int8

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
_LINK: tuple[list[str], str, list[tuple[type[Model], list[str]]]] | None = None


def _link_parts() -> tuple[list[str], str, list[tuple[type[Model], list[str]]]]:
    """The columns and ``FROM`` of the link's read (case ``c``, creditor ``k``, agency ``a``), and the
    fields each model gets, in portable SQL built once per process from the models' own table and column
    names (no user input in it): the ORM would compile the same three-table join every request."""
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
        source = (
            f"{q(Case._meta.db_table)} c "
            f"JOIN {q(Creditor._meta.db_table)} k ON k.{q('id')} = c.{case_creditor} "
            f"JOIN {q(Agency._meta.db_table)} a ON a.{q('id')} = k.{creditor_agency}"
        )
        _LINK = (columns, source, parts)
    return _LINK


def _link_query() -> tuple[str, list[tuple[type[Model], list[str]]]]:
    columns, source, parts = _link_parts()
    q = connection.ops.quote_name
    where = f"c.{q('id')} = %(case)s AND c.{q('reference')} = %(reference)s"
    return f"SELECT {', '.join(columns)} FROM {source} WHERE {where}", parts  # noqa: S608 - model names


# PostgreSQL plans a statement each time it gets one as text: for the case page's statement (five
# tables, eight EXISTS) planning costs several times what running it does. On PostgreSQL the portal's
# fixed statements therefore go through a server-side-binding cursor that asks psycopg to prepare them
# (protocol level: parsed and planned once per database session, then only bound and run; the settings'
# `prepare_threshold` lets psycopg do it), on Django's connection (same transaction, Django's database
# errors). psycopg forgets its prepared statements at a rollback and prepares them again; a new
# connection is a new session. Before, an SQL-level PREPARE … EXECUTE: the server parsed the EXECUTE
# text and evaluated its parameters at every request, and Django's cursor quoted each parameter in
# Python; about 60 µs of CPU a case page more, client and server (docs/benchmarks.md, sixth session).
# Other databases run the statement as it is.
class _PreparedCursor(psycopg.Cursor[Any]):
    """A psycopg cursor (server-side binding) whose every statement is prepared on its connection."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Django's query log (``DEBUG``, tests) for a prepared statement: its text as written and its
    parameters (Django's own wrapper asks psycopg for the text it rendered, which a prepared one lacks)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


# One cursor per Django connection (a thread's), made again when the connection is: keyed on Django's
# wrapper, not on psycopg's connection, which the cursor holds and so would keep alive.
_CURSORS: WeakKeyDictionary[BaseDatabaseWrapper, _PreparedCursor] = WeakKeyDictionary()


def _fixed_rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of one of the portal's fixed statements (named parameters), prepared on PostgreSQL."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    params = {**params, "case": Int8(params["case"])}  # a bigint whatever the id: one statement, not one a width
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    raw = db.connection
    if db.queries_logged or db.execute_wrappers:  # DEBUG, tests: Django's query log, wrappers
        wrapper = _PreparedDebugWrapper if db.queries_logged else CursorWrapper
        with wrapper(_PreparedCursor(raw), db) as wrapped:
            wrapped.execute(sql, params)
            return wrapped.fetchall()
    prepared = _CURSORS.get(db)  # kept: made once per connection
    if prepared is None or prepared.connection is not raw or prepared.closed:
        prepared = _CURSORS[db] = _PreparedCursor(raw)
    with db.wrap_database_errors:
        db.validate_no_broken_transaction()
        prepared.execute(sql, params)
        return prepared.fetchall()


def from_row(model: type[Model], names: list[str], values: Sequence[Any]) -> Any:
    """``model.from_db(alias, names, values)`` for the fields ``names`` of a row: the same instance (those
    attributes set as ``Model.__init__`` sets them, the others deferred, loaded on access; not adding,
    this database), without ``Model.__init__``'s walk over every field of the model, which is most of
    the cost for a model with many fields read for few. Only for models without ``pre_init`` or
    ``post_init`` receivers (``Model.__init__`` would send them): otherwise ``from_db`` itself."""
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(connection.alias, names, values)
    instance = model.__new__(model)
    state = instance._state = ModelState()
    state.adding = False
    state.db = connection.alias
    for name, value in zip(names, values, strict=True):
        setattr(instance, name, value)  # as Model.__init__: through a field's descriptor when it has one
    return instance


def _link_instances(parts: list[tuple[type[Model], list[str]]], row: tuple[Any, ...]) -> Case:
    found: list[Any] = []
    start = 0
    for model, names in parts:
        found.append(from_row(model, names, row[start : start + len(names)]))
        start += len(names)
    case, creditor, agency = found
    creditor.agency = agency
    case.creditor = creditor
    return case


def portal_case_for_link(*, case_id: int, reference: str) -> Case | None:
    """The case a signed portal link names, with its creditor and agency, in one query, or ``None``.

    Only this one case is read (invariant 6: ``Case.objects.visible_to`` a debtor is exactly this
    filter), and only the fields the landing and case pages use: the instances are real model
    instances, so any other field still loads when something reads it (one more query).
    """
    sql, parts = _link_query()
    rows = _fixed_rows(sql, {"case": case_id, "reference": reference})
    if not rows:
        return None
    return _link_instances(parts, rows[0])


SENT = (Action.Status.SENT, Action.Status.DELIVERED, Action.Status.BOUNCED)
HISTORY_LIMIT = 50
OPEN_PLAN = ("proposed", "active")
_SECTIONS: list[str] | None = None
_CASE_CREDITOR = "c.{creditor}"  # in the page's statement: the creditor of the case row read with it


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
            creditor = _CASE_CREDITOR.format(creditor=col(Case, "creditor"))
            key = creditor if source == table(ReturnPolicy) else "%(case)s"
            exists.append(f"EXISTS(SELECT 1 FROM {source} {join} WHERE {owner} = {key} {condition})")  # noqa: S608
        _SECTIONS = exists
    return _SECTIONS


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
    case: Case
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
    """The case's claims, each with its ledger postings (portable SQL, names from the models): one row a
    posting (or one with null postings for a claim without any), its debit, its credit and whether a
    credit note booked it. The claim's account is ``claim:<id>`` (``Claim.ledger_key``). Returns the
    columns, ``FROM …``, ``ORDER BY`` (a claim's rows next to each other) and the claim's fields.

    The sums are added up in Python (``_lines``): a claim has a handful of postings, and PostgreSQL sets up
    an aggregate and its sort for every execution of the statement, which cost it more than the rows do."""
    global _CLAIMS  # noqa: PLW0603
    if _CLAIMS is None:
        q = connection.ops.quote_name

        fields = [f for f in Claim._meta.concrete_fields if f.attname in _CLAIM_FIELDS]
        columns = [f"cl.{q(f.column)}" for f in fields] + [
            f"p.{col(Posting, 'debit')}",
            f"p.{col(Posting, 'credit')}",
            f"t.{col(LedgerTransaction, 'code')} = %(note)s",
        ]
        key = f"CAST(%(prefix)s AS VARCHAR(20)) || CAST(cl.{q('id')} AS VARCHAR(20))"
        source = (
            f"{table(CaseClaim)} l "
            f"JOIN {table(Claim)} cl ON cl.{q('id')} = l.{col(CaseClaim, 'claim')} "
            f"LEFT JOIN {table(Account)} a ON a.{col(Account, 'key')} = {key} "
            f"LEFT JOIN {table(Posting)} p ON p.{col(Posting, 'account')} = a.{q('id')} "
            f"LEFT JOIN {table(LedgerTransaction)} t ON t.{q('id')} = p.{col(Posting, 'transaction')} "
            f"WHERE l.{col(CaseClaim, 'case')} = %(case)s"
        )
        order = f"cl.{col(Claim, 'due_date')}, cl.{q('id')}"
        _CLAIMS = (columns, source, order, [f.attname for f in fields])
    return _CLAIMS


def _claims_query() -> tuple[str, list[str]]:
    columns, source, order, names = _claims_parts()
    return f"SELECT {', '.join(columns)} FROM {source} ORDER BY {order}", names  # noqa: S608 - model names


def _claim_lines(case: Case) -> list[ClaimLine]:
    """The case's claim lines alone (what the page's one statement is tested against)."""
    sql, names = _claims_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, {"case": case.pk, "prefix": "claim:", "note": "claim.credit_note"})
        rows = cursor.fetchall()
    return _lines(names, rows)


_PAGE: tuple[str, list[str], list[tuple[type[Model], list[str]]]] | None = None


def _page_query() -> tuple[str, list[str], list[tuple[type[Model], list[str]]]]:
    """The link's read, the sections' flags and the claims' statement as one (one round trip instead of
    three): the case row with its creditor and agency and its ``EXISTS`` flags, joined to every claim line
    (or to none: the claim columns are then null)."""
    global _PAGE  # noqa: PLW0603
    if _PAGE is None:
        q = connection.ops.quote_name
        link_columns, link_source, parts = _link_parts()
        columns, source, _order, names = _claims_parts()
        aliased = ", ".join(f"{column} AS c{i}" for i, column in enumerate(columns))
        flags = _sections_exists()
        due, pk = names.index("due_date"), names.index("id")  # the same order as _claims_query
        sql = (
            f"SELECT {', '.join(link_columns)}, {', '.join(flags)}, "  # noqa: S608 - names from the models
            f"{', '.join(f'x.c{i}' for i in range(len(columns)))} "
            f"FROM {link_source} "
            f"LEFT JOIN (SELECT {aliased} FROM {source}) x ON 1 = 1 "
            f"WHERE c.{q('id')} = %(case)s AND c.{q('reference')} = %(reference)s "
            f"ORDER BY x.c{due}, x.c{pk}"
        )
        _PAGE = (sql, names, parts)
    return _PAGE


def _page_rows(case_id: int, reference: str) -> tuple[Case | None, list[ClaimLine], dict[str, bool]]:
    """The case a link names (``None`` if none), its claim lines and which optional sections it has."""
    sql, names, parts = _page_query()
    params: dict[str, int | str | bool] = {
        "case": case_id,
        "reference": reference,
        "pending": Promise.Status.PENDING.value,
        "true": True,
        "sent": SENT[0].value,
        "delivered": SENT[1].value,
        "bounced": SENT[2].value,
        "prefix": "claim:",
        "note": "claim.credit_note",
    }
    rows = _fixed_rows(sql, params)
    if not rows:
        return None, [], dict.fromkeys(_SECTION_NAMES, False)
    start = sum(len(fields) for _, fields in parts)
    end = start + len(_SECTION_NAMES)
    present = {name: bool(found) for name, found in zip(_SECTION_NAMES, rows[0][start:end], strict=True)}
    lines = _lines(names, [row[end:] for row in rows if row[end] is not None])
    return _link_instances(parts, rows[0]), lines, present


def _lines_and_sections(case: Case) -> tuple[list[ClaimLine], dict[str, bool]]:
    _, lines, present = _page_rows(case.pk, case.reference)
    return lines, present


def _lines(names: list[str], rows: Iterable[Sequence[Any]]) -> list[ClaimLine]:
    """Claim lines from ``_claims_parts`` rows (a claim's posting rows next to each other, in order)."""
    n = len(names)
    lines = []
    for _claim_id, claim_rows in groupby(rows, key=itemgetter(names.index("id"))):
        first, *others = claim_rows
        debit = credit = credited = 0
        for row in (first, *others):
            posting_debit, posting_credit = int(row[n] or 0), int(row[n + 1] or 0)  # PostgreSQL: numeric
            debit += posting_debit
            credit += posting_credit
            if row[n + 2]:  # booked by a credit note (dispute upheld, return, lowered amount): not a payment
                credited += posting_credit - posting_debit
        claim = from_row(Claim, names, first[:n])
        lines.append(ClaimLine(claim=claim, outstanding_minor=debit - credit, credited_minor=credited))
    return lines


def portal_case_lines_for_link(*, case_id: int, reference: str) -> tuple[Case, list[ClaimLine]] | None:
    """The case a link names with its claim lines (ledger sums), in the page's one statement, or ``None``.
    Only for a browser already verified for ``case_id``."""
    case, lines, _ = _page_rows(case_id, reference)
    return None if case is None else (case, lines)


def portal_case_page_for_link(*, case_id: int, reference: str, today: date | None = None) -> CasePage | None:
    """``portal_case_for_link`` and ``case_page_read`` with one statement for the case, its creditor and
    agency, its claims with their ledger sums and its sections' flags; ``None`` if the link names no case.
    Only for a browser already verified for ``case_id`` (invariant 6: the debtor's own case only)."""
    case, lines, present = _page_rows(case_id, reference)
    if case is None:
        return None
    return _page(case, lines, present, today)


def case_page_read(*, case: Case, today: date | None = None) -> CasePage:
    """What the debtor's case page shows, for a case already read through its signed link and verified
    cookie (invariant 6: the debtor's own case only)."""
    lines, present = _lines_and_sections(case)
    return _page(case, lines, present, today)


def _page(case: Case, lines: list[ClaimLine], present: dict[str, bool], today: date | None) -> CasePage:
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
        case=case,
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
