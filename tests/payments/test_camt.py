"""camt.053 bank statements into payments: parsing, the matching cascade, the queue, idempotency.

Samples (``samples/camt053_v02.xml``, ``samples/camt053_v08.xml``): the same six movements on the
agency's trust account, in the 2009 and 2019 versions of the message. DOMAIN-RULES §6.3 (PAY-05,
PAY-06); FR-COL-02 (only the trust account); issue 5 (match on RF, then amount + name, the rest to
an unmatched queue; the same statement twice → the same state).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from relance.audit.services import audit_verify
from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.cases.status import Status
from relance.core.errors import PermissionDeniedError
from relance.ledger.models import LedgerTransaction, Posting
from relance.ledger.services import account_balance
from relance.payments.arrangement_models import DirectDebitBatch, PlanInstalment, SepaCreditor
from relance.payments.arrangements import MandateIn, plan_create, sepa_batch_create, sepa_settle
from relance.payments.bank import (
    BankAccountUnknownError,
    BankStatementError,
    bank_entry_ignore,
    bank_entry_match,
    camt053_import,
)
from relance.payments.camt import CamtError, camt053_parse
from relance.payments.models import Payment, ReconciledBankEntry, UnmatchedBankEntry
from relance.tenancy.actors import Actor
from relance.tenancy.models import Agency

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "samples"
TRUST_IBAN = "FR7630006000011234567890189"
ACTOR = Actor.system("tests")
VERSIONS = ["camt053_v02.xml", "camt053_v08.xml"]


@pytest.fixture
def cases(world, place):
    """Three cases with fixed references (so the samples can carry their RF), on a trust account."""
    world.agency.trust_iban = TRUST_IBAN
    world.agency.save()
    placed = {
        "A": place("INV-1", "120.50"),
        "B": place("INV-2", "80.00", email="paul.durand@example.fr", first_name="Paul", last_name="Durand"),
        "C": place("INV-3", "45.00", email="sophie@example.fr", first_name="Sophie", last_name="Lefèvre"),
    }
    out = {}
    for name, p in placed.items():
        Case.objects.filter(pk=p.case.pk).update(reference=f"RL-{name * 4}2345")
        out[name] = Case.objects.get(pk=p.case.pk)
    return out


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _state() -> tuple[int, ...]:
    return (
        Payment.objects.count(),
        LedgerTransaction.objects.count(),
        Posting.objects.count(),
        UnmatchedBankEntry.objects.count(),
        *(case_outstanding_minor(case=c) for c in Case.objects.order_by("pk")),
    )


def _outcomes(report) -> list[tuple[int, str, str, str]]:
    return [(o.position, o.outcome, o.detail, o.case_reference) for o in report.outcomes]


# --- the two versions of the same statement --------------------------------------------------------


@pytest.mark.parametrize("sample", VERSIONS)
def test_both_versions_read_the_same_movements(sample):
    (statement,) = camt053_parse(_sample(sample))
    assert statement.version == "camt.053.001." + sample[-6:-4]
    assert statement.statement_id == "STMT-20260303-0001"
    assert statement.message_id == "CAMT053-20260303-0001"
    assert statement.account_iban == TRUST_IBAN
    assert statement.account_currency == "EUR"
    first, second, third, fourth, fifth, sixth = statement.entries
    assert (first.key, str(first.amount), first.currency, first.credit, first.status) == (
        "2026030300001A",
        "120.50",
        "EUR",
        True,
        "BOOK",
    )
    assert first.structured_refs == ("RF64RLAAAA2345",)
    assert first.debtor_name == "JEANNE MARTIN"
    assert first.debtor_iban == "FR7610107001011234567890129"
    assert (first.booking_date, first.value_date) == (date(2026, 3, 3), date(2026, 3, 3))
    assert second.end_to_end_id == "DURAND-0303"
    assert "RLBB" in second.unstructured.upper()
    assert third.value_date == date(2026, 3, 2)
    assert third.debtor_name == "MME LEFEVRE SOPHIE"
    assert fourth.structured_refs == () and fourth.debtor_name == "JEAN INCONNU"
    assert (fifth.credit, str(fifth.amount)) == (False, "3.50")
    assert sixth.key == first.key


@pytest.mark.parametrize("sample", VERSIONS)
def test_each_entry_has_its_exact_outcome(cases, sample):
    report = camt053_import(file=_sample(sample), actor=ACTOR)

    assert report.statements == ["STMT-20260303-0001"]
    assert _outcomes(report) == [
        (1, "matched", "rf_structured", "RL-AAAA2345"),
        (2, "matched", "rf_text", "RL-BBBB2345"),
        (3, "matched", "amount_name", "RL-CCCC2345"),
        (4, "unmatched", "no_match", ""),
        (5, "skipped", "debit", ""),
        (6, "duplicate", "in_file", ""),
    ]
    a, b, c = (Case.objects.get(pk=cases[k].pk) for k in "ABC")
    # Entry 1 covers case A: paid. Entry 2 is part of case B: 50.00 left. Entry 3 covers case C.
    assert a.status == Status.PAID and case_outstanding_minor(case=a) == 0
    assert b.status != Status.PAID and case_outstanding_minor(case=b) == 5000
    assert c.status == Status.PAID and case_outstanding_minor(case=c) == 0
    payments = {p.external_ref: p for p in Payment.objects.all()}
    assert set(payments) == {"2026030300001A", "2026030300002B", "2026030300003C"}
    assert all(p.method == Payment.Method.TRANSFER for p in payments.values())
    assert [(payments[k].case_id, payments[k].amount_minor) for k in sorted(payments)] == [
        (a.pk, 12050),
        (b.pk, 3000),
        (c.pk, 4500),
    ]
    # The value date is when the money arrived (entry 3: value date 2 March, booked 3 March).
    assert timezone.localtime(payments["2026030300003C"].received_at).date() == date(2026, 3, 2)
    # FR-COL-02: the money is on the agency's trust account in the ledger.
    assert account_balance(key=f"trust:{a.creditor.agency_id}:EUR") == 12050 + 3000 + 4500
    (queued,) = UnmatchedBankEntry.objects.all()
    assert (queued.entry_key, queued.amount_minor, queued.currency, queued.debtor_name) == (
        "2026030300004D",
        9999,
        "EUR",
        "JEAN INCONNU",
    )
    assert (queued.status, queued.reason, queued.statement_id) == ("open", "no_match", "STMT-20260303-0001")
    assert queued.value_date == date(2026, 3, 3)
    assert queued.remittance_text == "VIREMENT DE M JEAN INCONNU"
    assert audit_verify()[1] is None


@pytest.mark.parametrize("sample", VERSIONS)
def test_importing_the_same_statement_twice_changes_nothing(cases, sample):
    camt053_import(file=_sample(sample), actor=ACTOR)
    before = _state()

    again = camt053_import(file=_sample(sample), actor=ACTOR)

    assert _state() == before
    assert _outcomes(again) == [
        (1, "duplicate", "payment", "RL-AAAA2345"),
        (2, "duplicate", "payment", "RL-BBBB2345"),
        (3, "duplicate", "payment", "RL-CCCC2345"),
        (4, "duplicate", "unmatched", ""),
        (5, "skipped", "debit", ""),
        (6, "duplicate", "in_file", ""),
    ]


def test_the_same_movements_in_the_other_version_are_duplicates(cases):
    camt053_import(file=_sample("camt053_v02.xml"), actor=ACTOR)
    before = _state()
    report = camt053_import(file=_sample("camt053_v08.xml"), actor=ACTOR)
    assert _state() == before
    assert not report.matched and not report.unmatched


# --- inline statements for the other rules ---------------------------------------------------------


def _ntry(
    amount: str,
    *,
    ref: str | None = None,
    ccy: str = "EUR",
    indicator: str = "CRDT",
    status: str = "BOOK",
    reversal: bool = False,
    strd: str | None = None,
    ustrd: str | None = None,
    name: str | None = None,
    txs: str | None = None,
) -> str:
    parts = [f'<Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>']
    if reversal:
        parts.append("<RvslInd>true</RvslInd>")
    parts.append(f"<Sts>{status}</Sts><BookgDt><Dt>2026-03-05</Dt></BookgDt><ValDt><Dt>2026-03-05</Dt></ValDt>")
    if ref:
        parts.append(f"<AcctSvcrRef>{ref}</AcctSvcrRef>")
    parts.append("<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>")
    if txs is None:
        tx = ""
        if name:
            tx += f"<RltdPties><Dbtr><Nm>{name}</Nm></Dbtr></RltdPties>"
        rmt = ""
        if strd:
            scor = "<Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp>"
            rmt += f"<Strd><CdtrRefInf>{scor}<Ref>{strd}</Ref></CdtrRefInf></Strd>"
        if ustrd:
            rmt += f"<Ustrd>{ustrd}</Ustrd>"
        if rmt:
            tx += f"<RmtInf>{rmt}</RmtInf>"
        txs = f"<TxDtls>{tx}</TxDtls>"
    parts.append(f"<NtryDtls>{txs}</NtryDtls>")
    return f"<Ntry>{''.join(parts)}</Ntry>"


def _statement(*entries: str, iban: str = TRUST_IBAN, version: str = "02", prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>MSG-INLINE</MsgId><CreDtTm>2026-03-06T06:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>STMT-INLINE</Id><CreDtTm>2026-03-06T06:00:00</CreDtTm><Acct><Id><IBAN>{iban}</IBAN></Id>"
        f"<Ccy>EUR</Ccy></Acct>{''.join(entries)}</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def test_debits_foreign_currencies_pending_entries_and_reversals_are_reported_not_applied(cases):
    before = _state()
    report = camt053_import(
        file=_statement(
            _ntry("120.50", ref="X1", indicator="DBIT", strd="RF64RLAAAA2345"),
            _ntry("120.50", ref="X2", ccy="CHF", strd="RF64RLAAAA2345"),
            _ntry("120.50", ref="X3", status="PDNG", strd="RF64RLAAAA2345"),
            _ntry("120.50", ref="X4", reversal=True, strd="RF64RLAAAA2345"),
        ),
        actor=ACTOR,
    )
    assert [(o.outcome, o.detail) for o in report.outcomes] == [
        ("skipped", "debit"),
        ("skipped", "currency"),
        ("skipped", "not_booked"),
        ("skipped", "reversal"),
    ]
    assert _state() == before


def test_amount_and_name_must_designate_one_case_only(world, place, cases):
    # The same person owes 45.00 to two creditors: the name and the amount fit both cases.
    place(
        "INV-9",
        "45.00",
        creditor=world.other_creditor,
        email="sophie@example.fr",
        first_name="Sophie",
        last_name="Lefèvre",
    )
    report = camt053_import(file=_statement(_ntry("45.00", ref="AMB-1", name="SOPHIE LEFEVRE")), actor=ACTOR)
    assert [(o.outcome, o.detail) for o in report.outcomes] == [("unmatched", "ambiguous")]
    assert UnmatchedBankEntry.objects.get().reason == "ambiguous"
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("name", "amount", "expected"),
    [
        ("SOPHIE LEFEVRE", "45.00", "matched"),
        ("Lefèvre Sophie", "45.00", "matched"),
        ("S LEFEVRE", "45.00", "matched"),
        ("SOPHIE MARTIN", "45.00", "unmatched"),  # another person
        ("SOPHIE LEFEVRE", "44.99", "unmatched"),  # not the balance
        ("", "45.00", "unmatched"),
    ],
)
def test_amount_and_name_matching(cases, name, amount, expected):
    report = camt053_import(file=_statement(_ntry(amount, ref="N-1", name=name or None)), actor=ACTOR)
    assert report.outcomes[0].outcome == expected


def test_a_wrong_check_digit_is_not_a_reference(cases):
    report = camt053_import(
        file=_statement(_ntry("10.00", ref="W-1", strd="RF65RLAAAA2345", ustrd="RF65 RLAA AA23 45")), actor=ACTOR
    )
    assert [(o.outcome, o.detail) for o in report.outcomes] == [("unmatched", "no_match")]


def test_an_rf_of_no_case_falls_through_to_the_queue(cases):
    report = camt053_import(file=_statement(_ntry("10.00", ref="W-2", strd="RF18539007547034")), actor=ACTOR)
    assert report.outcomes[0].outcome == "unmatched"


def test_a_batch_entry_gives_one_payment_per_transaction(cases):
    txs = "".join(
        f'<TxDtls><AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>'
        f"<RmtInf><Strd><CdtrRefInf><Ref>{rf}</Ref></CdtrRefInf></Strd></RmtInf></TxDtls>"
        for amount, rf in [("120.50", "RF64RLAAAA2345"), ("80.00", "RF44RLBBBB2345")]
    )
    statement = _statement(_ntry("200.50", ref="BATCH-7", txs=txs))
    report = camt053_import(file=statement, actor=ACTOR)
    assert [(o.key, o.outcome, o.case_reference) for o in report.outcomes] == [
        ("BATCH-7/1", "matched", "RL-AAAA2345"),
        ("BATCH-7/2", "matched", "RL-BBBB2345"),
    ]
    assert all(Case.objects.get(pk=cases[k].pk).status == Status.PAID for k in "AB")
    before = _state()
    camt053_import(file=statement, actor=ACTOR)
    assert _state() == before


def test_entries_without_a_bank_reference_get_a_stable_key(cases):
    statement = _statement(
        _ntry("10.00", ustrd="RF64 RLAA AA23 45"),
        _ntry("10.00", ustrd="RF64 RLAA AA23 45"),  # the same transfer made twice that day
    )
    first = camt053_import(file=statement, actor=ACTOR)
    keys = [o.key for o in first.outcomes]
    assert [o.outcome for o in first.outcomes] == ["matched", "matched"]
    assert keys[0].startswith("sha256:") and keys[0] != keys[1]
    before = _state()
    second = camt053_import(file=statement, actor=ACTOR)
    assert [o.key for o in second.outcomes] == keys
    assert [o.outcome for o in second.outcomes] == ["duplicate", "duplicate"]
    assert _state() == before


# --- refusals --------------------------------------------------------------------------------------


def test_an_xxe_payload_is_refused_and_nothing_is_read_or_written(cases, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    prolog = f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    statement = _statement(_ntry("120.50", ref="XXE-1", ustrd="&xxe;", strd="RF64RLAAAA2345"), prolog=prolog)
    before = _state()
    with pytest.raises(BankStatementError) as caught:
        camt053_import(file=statement, actor=ACTOR)
    assert "TOP-SECRET-VALUE" not in str(caught.value)
    assert caught.value.fields["reason"] == "camt.dtd"
    assert _state() == before
    with pytest.raises(CamtError) as parsed:
        camt053_parse(statement)
    assert parsed.value.code == "camt.dtd"


def test_an_entity_expansion_bomb_is_refused(cases):
    prolog = (
        '<!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    )
    with pytest.raises(CamtError) as caught:
        camt053_parse(_statement(_ntry("1.00", ref="B-1", ustrd="&d;"), prolog=prolog))
    assert caught.value.code == "camt.dtd"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not xml at all", "camt.not_xml"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>', "camt.version"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"/>', "camt.version"),
        (b"<Document/>", "camt.version"),
        (
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt/></Document>',
            "camt.structure",
        ),
    ],
)
def test_what_is_not_a_camt053_statement_is_refused(data, code):
    with pytest.raises(CamtError) as caught:
        camt053_parse(data)
    assert caught.value.code == code


def test_a_statement_of_another_account_is_refused(cases):
    before = _state()
    with pytest.raises(BankAccountUnknownError):
        camt053_import(
            file=_statement(_ntry("120.50", ref="O-1", strd="RF64RLAAAA2345"), iban="FR7610107001011234567890129"),
            actor=ACTOR,
        )
    assert _state() == before


def test_only_agency_administrators_import_statements(world, cases):
    with pytest.raises(PermissionDeniedError):
        camt053_import(file=_sample("camt053_v02.xml"), actor=Actor.for_user(world.creditor_user))
    with pytest.raises(PermissionDeniedError):
        camt053_import(file=_sample("camt053_v02.xml"), actor=Actor.for_user(world.agent))


# --- the unmatched queue ---------------------------------------------------------------------------


def test_a_queued_entry_matched_by_hand_becomes_the_payment(cases):
    camt053_import(file=_sample("camt053_v02.xml"), actor=ACTOR)
    entry = UnmatchedBankEntry.objects.get()
    b = cases["B"]

    payment = bank_entry_match(entry=entry, case=b, actor=ACTOR)

    entry.refresh_from_db()
    assert (entry.status, entry.payment_id) == ("matched", payment.pk)
    assert (payment.external_ref, payment.amount_minor, payment.method) == ("2026030300004D", 9999, "transfer")
    # B owed 50.00 after the statement; 99.99 pays it and leaves 49.99 refundable, never kept.
    assert case_outstanding_minor(case=b) == 0
    assert account_balance(key=f"overpayment:case:{b.pk}") == -4999
    # The statement again: still nothing new.
    before = _state()
    camt053_import(file=_sample("camt053_v02.xml"), actor=ACTOR)
    assert _state() == before


def test_a_queued_entry_can_be_set_aside_with_a_reason(cases):
    camt053_import(file=_sample("camt053_v02.xml"), actor=ACTOR)
    entry = UnmatchedBankEntry.objects.get()
    bank_entry_ignore(entry=entry, reason="Virement d'un autre client de la banque : à retourner", actor=ACTOR)
    entry.refresh_from_db()
    assert entry.status == "ignored" and entry.payment_id is None


# --- the command -----------------------------------------------------------------------------------


def test_the_command_prints_matched_unmatched_and_duplicates(cases, capsys):
    path = SAMPLES / "camt053_v08.xml"
    call_command("bank", "import", str(path))
    out = capsys.readouterr().out
    assert "matched 3, reconciled 0, unmatched 1, duplicates 1, skipped 1" in out
    assert "RL-AAAA2345" in out
    call_command("bank", "import", str(path))
    assert "matched 0, reconciled 0, unmatched 0, duplicates 5, skipped 1" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("bank", "import", str(SAMPLES / "missing.xml"))


# --- the credit of our own direct-debit files (PAY-06: never new money) ---------------------------


def _dd_case(world, place, *, amount: str = "300.00"):
    """An active three-month direct-debit plan whose first collection is in a file sent to the bank."""
    world.agency.trust_iban = TRUST_IBAN
    world.agency.save()
    SepaCreditor.objects.get_or_create(agency=world.agency, defaults={"creditor_identifier": "FR72ZZZ123456"})
    case = place(f"INV-DD-{amount}", amount).case
    today = timezone.localdate()
    plan = plan_create(
        case=case,
        months=3,
        first_due=today + timedelta(days=2),
        method="direct_debit",
        mandate=MandateIn(debtor_name="Jeanne Martin", iban="FR1420041010050500013M02606", accepted=True, ip="::1"),
        actor=Actor.for_debtor(case_id=case.pk),
    )
    batch = sepa_batch_create(agency=world.agency, actor=ACTOR)
    return case, plan.instalments.get(number=1), batch


def _dd_credit(amount: str, *, ref: str, message_id: str = "", e2e: str = "") -> str:
    batch = f"<Btch><MsgId>{message_id}</MsgId><PmtInfId>P1</PmtInfId></Btch>" if message_id else ""
    refs = f"<Refs><EndToEndId>{e2e}</EndToEndId></Refs>" if e2e else ""
    entry = _ntry(amount, ref=ref, txs=f"{batch}<TxDtls>{refs}</TxDtls>")
    return entry.replace("<Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd>", "<Cd>IDDT</Cd><SubFmlyCd>ESDD</SubFmlyCd>")


def test_the_bank_code_and_the_file_ids_of_an_entry_are_read():
    (statement,) = camt053_parse(_statement(_dd_credit("100.00", ref="SDD-1", message_id="MSG-42", e2e="E2E-1")))
    (entry,) = statement.entries
    assert (entry.bank_code, entry.batch_message_id, entry.batch_payment_info_id, entry.end_to_end_id) == (
        "PMNT/IDDT/ESDD",
        "MSG-42",
        "P1",
        "E2E-1",
    )


@pytest.mark.parametrize("itemised", [False, True], ids=["one entry for the file", "one entry per collection"])
def test_the_credit_of_a_direct_debit_file_is_reconciled_not_paid_twice(world, place, itemised):
    case, first, batch = _dd_case(world, place)
    settle_day = timezone.now() + timedelta(days=3)
    assert sepa_settle(actor=ACTOR, now=settle_day) == 1  # the collection date came: 100.00 paid
    before = _state()
    entry = (
        _dd_credit("100.00", ref="SDD-1", e2e=first.end_to_end_id, message_id=batch.message_id)
        if itemised
        else _dd_credit("100.00", ref="SDD-1", message_id=batch.message_id)
    )

    report = camt053_import(file=_statement(entry), actor=ACTOR)

    detail = "direct_debit" if itemised else "direct_debit_batch"
    assert _outcomes(report) == [(1, "reconciled", detail, case.reference if itemised else "")]
    assert _state() == before  # no payment, no ledger movement, nothing queued: the money was counted once
    assert ReconciledBankEntry.objects.get().batch == batch
    assert case_outstanding_minor(case=case) == 20000
    again = camt053_import(file=_statement(entry), actor=ACTOR)
    assert _outcomes(again) == [(1, "duplicate", "reconciled", "")]
    assert _state() == before and audit_verify()[1] is None


def test_a_file_credited_before_the_settlement_job_settles_its_collections_once(world, place):

    case, first, batch = _dd_case(world, place)

    report = camt053_import(
        file=_statement(_dd_credit("100.00", ref="SDD-2", message_id=batch.message_id)), actor=ACTOR
    )

    assert [o.outcome for o in report.outcomes] == ["reconciled"]
    first.refresh_from_db()
    assert first.status == "paid" and first.payment.method == "direct_debit"
    assert case_outstanding_minor(case=case) == 20000
    later = timezone.now() + timedelta(days=3)
    assert sepa_settle(actor=ACTOR, now=later) == 0  # already settled by the statement
    assert Payment.objects.filter(case=case).count() == 1


def test_a_direct_debit_credit_of_another_amount_or_for_a_returned_collection_goes_to_a_person(world, place):
    case, first, batch = _dd_case(world, place)
    wrong = camt053_import(file=_statement(_dd_credit("99.00", ref="SDD-3", message_id=batch.message_id)), actor=ACTOR)
    assert _outcomes(wrong) == [(1, "unmatched", "dd_mismatch", "")]
    assert UnmatchedBankEntry.objects.get(entry_key="SDD-3").reason == "dd_mismatch"
    assert Payment.objects.filter(case=case).count() == 0  # nothing settled on a credit that does not add up

    PlanInstalment.objects.filter(pk=first.pk).update(status="failed", failure_code="AM04")
    returned = camt053_import(file=_statement(_dd_credit("100.00", ref="SDD-4", e2e=first.end_to_end_id)), actor=ACTOR)
    assert _outcomes(returned) == [(1, "unmatched", "dd_returned", case.reference)]
    assert case_outstanding_minor(case=case) == 30000


def test_a_credit_naming_another_agencys_file_is_not_reconciled(world, place):
    _case, _first, batch = _dd_case(world, place)
    other = Agency.objects.create(legal_name="Autre Agence", trust_iban="FR7630004000031234567890143")
    DirectDebitBatch.objects.filter(pk=batch.pk).update(agency=other)

    report = camt053_import(
        file=_statement(_dd_credit("100.00", ref="SDD-5", message_id=batch.message_id)), actor=ACTOR
    )

    assert [(o.outcome, o.detail) for o in report.outcomes] == [("unmatched", "no_match")]


# --- PAY-06 steps 3 and 4: the case reference or an invoice number in the text; a known account -----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dossier RL-BBBB2345 merci", "B"),
        ("reglement rl bbbb2345", "B"),
        ("RLBBBB2345", "B"),
        ("Facture F-INV-2 de mars", "B"),
        ("facture f-inv-2.", "B"),
    ],
    ids=["reference", "reference spaced, lowercase", "reference glued", "invoice number", "invoice, lowercase"],
)
def test_the_case_reference_or_an_invoice_number_in_the_free_text_designates_the_case(cases, text, expected):
    report = camt053_import(file=_statement(_ntry("30.00", ref="TXT-1", ustrd=text, name="X")), actor=ACTOR)

    ((outcome, detail, reference),) = [(o.outcome, o.detail, o.case_reference) for o in report.outcomes]
    assert (outcome, reference) == ("matched", cases[expected].reference)
    assert detail in {"case_reference", "invoice_number"}
    assert case_outstanding_minor(case=cases[expected]) == 5000


@pytest.mark.parametrize(
    "text",
    ["RL-ZZZZ9999 inconnu", "Facture 2026", "F-INV-1 et F-INV-2", "XRL-BBBB2345"],
    ids=["unknown reference", "a year", "two cases", "inside a word"],
)
def test_text_that_does_not_designate_exactly_one_case_falls_through_to_the_queue(cases, text):
    report = camt053_import(file=_statement(_ntry("30.00", ref="TXT-2", ustrd=text, name="Nobody")), actor=ACTOR)

    assert [(o.outcome, o.detail) for o in report.outcomes] == [("unmatched", "no_match")]


def _from_account(amount: str, *, ref: str, iban: str, name: str = "M. Inconnu") -> str:
    account = f"<DbtrAcct><Id><IBAN>{iban}</IBAN></Id></DbtrAcct>"
    tx = f"<TxDtls><RltdPties><Dbtr><Nm>{name}</Nm></Dbtr>{account}</RltdPties></TxDtls>"
    return _ntry(amount, ref=ref, txs=tx)


def test_an_account_that_paid_a_case_before_matches_its_next_transfer_of_the_exact_balance(cases):
    payer = "FR7630004000031234567890143"
    first = _ntry("20.50", ref="ACC-1", strd="RF64RLAAAA2345").replace(
        "</TxDtls>", f"<RltdPties><DbtrAcct><Id><IBAN>{payer}</IBAN></Id></DbtrAcct></RltdPties></TxDtls>"
    )
    camt053_import(file=_statement(first), actor=ACTOR)
    assert Payment.objects.get(external_ref="ACC-1").payer_iban == payer

    # No reference, a name nobody knows, but the account already paid case A and 100.00 is its balance.
    report = camt053_import(file=_statement(_from_account("100.00", ref="ACC-2", iban=payer)), actor=ACTOR)
    assert _outcomes(report) == [(1, "matched", "payer_account", cases["A"].reference)]

    # Another amount from that account is not assumed to be for the case.
    other = camt053_import(file=_statement(_from_account("7.00", ref="ACC-3", iban=payer)), actor=ACTOR)
    assert [(o.outcome, o.detail) for o in other.outcomes] == [("unmatched", "no_match")]


def test_a_queued_entry_matched_by_hand_teaches_the_payers_account(cases):
    payer = "FR7630004000031234567890143"
    camt053_import(file=_statement(_from_account("20.00", ref="ACC-4", iban=payer)), actor=ACTOR)
    entry = UnmatchedBankEntry.objects.get(entry_key="ACC-4")
    bank_entry_match(entry=entry, case=cases["B"], actor=ACTOR)

    report = camt053_import(file=_statement(_from_account("60.00", ref="ACC-5", iban=payer)), actor=ACTOR)

    assert _outcomes(report) == [(1, "matched", "payer_account", cases["B"].reference)]


def test_the_iban_the_creditor_gave_for_the_debtor_matches_a_first_transfer_of_the_balance(world, place):
    world.agency.trust_iban = TRUST_IBAN
    world.agency.save()
    case = place("INV-9", "64.00", iban="FR76 3000 4000 0312 3456 7890 143").case

    report = camt053_import(
        file=_statement(_from_account("64.00", ref="IBAN-1", iban="FR7630004000031234567890143")), actor=ACTOR
    )

    assert _outcomes(report) == [(1, "matched", "payer_account", case.reference)]
