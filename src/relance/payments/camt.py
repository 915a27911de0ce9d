"""Reading ISO 20022 camt.053 bank statements (BankToCustomerStatement), versions .001.02 to .001.08.

Pure module: no Django import; bytes in, frozen dataclasses out. Field paths follow DOMAIN-RULES §6.3
(PAY-05), by local name so that every version's namespace reads the same way:

- ``Document/BkToCstmrStmt/GrpHdr/MsgId``; per ``Stmt``: ``Id``, ``Acct/Id/IBAN``, ``Acct/Ccy``;
- per ``Ntry``: ``NtryRef``, ``Amt@Ccy``, ``CdtDbtInd`` (CRDT|DBIT), ``RvslInd``, ``Sts`` (.02: text;
  .08: ``Sts/Cd``), ``BookgDt/Dt|DtTm``, ``ValDt/Dt|DtTm``, ``AcctSvcrRef``;
- per ``NtryDtls/TxDtls``: ``Refs/(AcctSvcrRef, EndToEndId)``, ``Amt`` (.04+) or ``AmtDtls/TxAmt/Amt``
  (.02), ``RltdPties/Dbtr/Nm`` (.02) or ``Dbtr/Pty/Nm`` (.08), ``RltdPties/DbtrAcct/Id/IBAN``,
  ``RmtInf/Strd/CdtrRefInf/Ref`` (structured reference, RF) and ``RmtInf/Ustrd`` (free text, repeated);
- per ``Ntry``, to recognise the credit of a SEPA direct-debit file we sent: ``BkTxCd/Domn`` (e.g.
  ``PMNT/IDDT/ESDD``, issued direct debits) and ``NtryDtls/Btch/(MsgId, PmtInfId)`` (the pain.008's
  message and payment-information ids, as the bank echoes them).

A batch entry (several ``TxDtls`` each with its own amount) gives one ``CamtEntry`` per transaction;
otherwise one per ``Ntry``. Each entry carries a stable ``key`` (the idempotency key of PAY-06): the
bank's ``AcctSvcrRef`` (with the transaction's index inside a batch) or, without one, a SHA-256 of
the entry's fields plus its occurrence number among identical entries of the statement — the same
statement read twice gives the same keys.

Security: a statement is untrusted input. The parser neither resolves entities nor touches the
network, and any document with a DTD (``<!DOCTYPE``) is refused outright: camt messages never have
one, and that is where XXE and entity-expansion payloads live.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

# camt.053.001.02 (2009, still common in France) to .001.08 (2019): the fields read here did not
# move between them, except ``Sts`` (a code, then a choice) and ``Dbtr`` (a party, then ``Pty``).
_NAMESPACE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(0[2-8])$")
MAX_STATEMENT_BYTES = 50 * 1024 * 1024


class CamtError(ValueError):
    """A file that is not a camt.053 statement this module reads; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class CamtEntry:
    """One booked movement (or one transaction of a batch booking) on the statement's account."""

    key: str  # idempotency key: AcctSvcrRef[/n] or sha256:…
    position: int  # 1-based, in document order
    entry_ref: str  # Ntry/NtryRef
    account_servicer_ref: str  # TxDtls/Refs/AcctSvcrRef or Ntry/AcctSvcrRef
    end_to_end_id: str  # TxDtls/Refs/EndToEndId ("NOTPROVIDED" is kept as given)
    amount: Decimal  # positive, in major units as written
    currency: str
    credit: bool  # CdtDbtInd = CRDT
    reversal: bool  # RvslInd = true
    status: str  # BOOK | PDNG | INFO ("" when absent)
    booking_date: date | None
    value_date: date | None
    debtor_name: str
    debtor_iban: str
    structured_refs: tuple[str, ...]  # RmtInf/Strd/CdtrRefInf/Ref
    unstructured: str  # RmtInf/Ustrd lines joined by a line break
    bank_code: str = ""  # BkTxCd/Domn: "PMNT/IDDT/ESDD" (domain/family/sub-family), "" when absent
    batch_message_id: str = ""  # NtryDtls/Btch/MsgId: the message id of the file the entry settles
    batch_payment_info_id: str = ""  # NtryDtls/Btch/PmtInfId


@dataclass(frozen=True, slots=True)
class CamtStatement:
    """One ``Stmt``: an account and its entries."""

    message_id: str
    version: str  # e.g. "camt.053.001.08"
    statement_id: str
    account_iban: str
    account_currency: str
    entries: tuple[CamtEntry, ...]


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _children(el: etree._Element | None, name: str) -> list[etree._Element]:
    if el is None:
        return []
    return [c for c in el if isinstance(c.tag, str) and _local(c) == name]


def _find(el: etree._Element | None, path: str) -> etree._Element | None:
    """The first element down ``path`` ("A/B/C") by local names, or ``None``."""
    for name in path.split("/"):
        found = _children(el, name)
        if not found:
            return None
        el = found[0]
    return el


def _find_all(el: etree._Element | None, path: str) -> list[etree._Element]:
    *parents, last = path.split("/")
    current = [el] if el is not None else []
    for name in parents:
        current = [c for p in current for c in _children(p, name)]
    return [c for p in current for c in _children(p, last)]


def _text(el: etree._Element | None, path: str) -> str:
    found = _find(el, path)
    return (found.text or "").strip() if found is not None else ""


def _date(el: etree._Element | None) -> date | None:
    if el is None:
        return None
    text = _text(el, "Dt") or _text(el, "DtTm")
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])  # DtTm: the date part of 2026-07-01T10:00:00+02:00
    except ValueError:
        raise CamtError("camt.date", f"{text!r} is not a date.") from None


def _amount(el: etree._Element | None, where: str) -> tuple[Decimal, str]:
    if el is None:
        raise CamtError("camt.amount", f"{where}: no amount.")
    try:
        value = Decimal((el.text or "").strip())
    except InvalidOperation:
        raise CamtError("camt.amount", f"{where}: {el.text!r} is not an amount.") from None
    currency = (el.get("Ccy") or "").strip().upper()
    if not value.is_finite() or value < 0 or not re.fullmatch(r"[A-Z]{3}", currency):
        raise CamtError("camt.amount", f"{where}: invalid amount or currency.")
    return value, currency


def _party_name(parties: etree._Element | None) -> str:
    # .02: Dbtr/Nm; .08: Dbtr/Pty/Nm. The ultimate debtor when the debtor has no name.
    for path in ("Dbtr/Nm", "Dbtr/Pty/Nm", "UltmtDbtr/Nm", "UltmtDbtr/Pty/Nm"):
        name = _text(parties, path)
        if name:
            return name
    return ""


def _parse(data: bytes) -> etree._Element:
    if len(data) > MAX_STATEMENT_BYTES:
        raise CamtError("camt.too_large", "This statement file is too large.")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        tree = etree.fromstring(data, parser=parser).getroottree()
    except etree.XMLSyntaxError as exc:
        raise CamtError("camt.not_xml", f"This file is not well-formed XML: {exc}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise CamtError("camt.dtd", "A statement must not declare a DTD or entities (refused).")
    return tree.getroot()


def _entry(ntry: etree._Element, tx: etree._Element | None, batch: bool) -> CamtEntry:
    """The entry's fields; ``key`` and ``position`` are set by the caller."""
    amount, currency = _amount(_find(ntry, "Amt"), "Ntry/Amt")
    if batch and tx is not None:
        tx_amount = _find(tx, "Amt")
        if tx_amount is None:
            tx_amount = _find(tx, "AmtDtls/TxAmt/Amt")
        amount, currency = _amount(tx_amount, "TxDtls/Amt")
    indicator = _text(ntry, "CdtDbtInd")
    if indicator not in {"CRDT", "DBIT"}:
        raise CamtError("camt.indicator", f"CdtDbtInd {indicator!r} is neither CRDT nor DBIT.")
    sts = _find(ntry, "Sts")
    status = ""
    if sts is not None:
        status = (sts.text or "").strip() or _text(sts, "Cd") or _text(sts, "Prtry")
    rmt = _find(tx, "RmtInf")
    ustrd = [(u.text or "").strip() for u in _children(rmt, "Ustrd")]
    return CamtEntry(
        key="",
        position=0,
        entry_ref=_text(ntry, "NtryRef"),
        account_servicer_ref=_text(tx, "Refs/AcctSvcrRef") or _text(ntry, "AcctSvcrRef"),
        end_to_end_id=_text(tx, "Refs/EndToEndId"),
        amount=amount,
        currency=currency,
        credit=indicator == "CRDT",
        reversal=_text(ntry, "RvslInd").lower() in {"true", "1"},
        status=status.upper(),
        booking_date=_date(_find(ntry, "BookgDt")),
        value_date=_date(_find(ntry, "ValDt")),
        debtor_name=_party_name(_find(tx, "RltdPties")),
        debtor_iban=_text(tx, "RltdPties/DbtrAcct/Id/IBAN").replace(" ", "").upper(),
        structured_refs=tuple(t for t in ((r.text or "").strip() for r in _find_all(rmt, "Strd/CdtrRefInf/Ref")) if t),
        unstructured="\n".join(u for u in ustrd if u),
        bank_code="/".join(
            code
            for code in (
                _text(ntry, "BkTxCd/Domn/Cd"),
                _text(ntry, "BkTxCd/Domn/Fmly/Cd"),
                _text(ntry, "BkTxCd/Domn/Fmly/SubFmlyCd"),
            )
            if code
        ),
        batch_message_id=_text(ntry, "NtryDtls/Btch/MsgId"),
        batch_payment_info_id=_text(ntry, "NtryDtls/Btch/PmtInfId"),
    )


def _fingerprint(account_iban: str, entry: CamtEntry) -> str:
    parts = [
        account_iban,
        "CRDT" if entry.credit else "DBIT",
        str(entry.amount),
        entry.currency,
        str(entry.booking_date or ""),
        str(entry.value_date or ""),
        entry.entry_ref,
        entry.end_to_end_id,
        entry.debtor_name,
        entry.debtor_iban,
        "|".join(entry.structured_refs),
        entry.unstructured,
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _has_amount(tx: etree._Element) -> bool:
    return _find(tx, "Amt") is not None or _find(tx, "AmtDtls/TxAmt/Amt") is not None


def camt053_parse(data: bytes) -> list[CamtStatement]:
    """Every statement of a camt.053 document. Raises ``CamtError`` for anything else."""
    root = _parse(data)
    match = _NAMESPACE.match(etree.QName(root).namespace or "")
    if _local(root) != "Document" or match is None:
        raise CamtError(
            "camt.version", "This is not a camt.053 statement (versions camt.053.001.02 to .001.08 are read)."
        )
    version = f"camt.053.001.{match.group(1)}"
    message = _find(root, "BkToCstmrStmt")
    if message is None:
        raise CamtError("camt.structure", "BkToCstmrStmt is missing.")
    message_id = _text(message, "GrpHdr/MsgId")
    statements = []
    position = 0
    for stmt in _children(message, "Stmt"):
        account_iban = _text(stmt, "Acct/Id/IBAN").replace(" ", "").upper()
        entries: list[CamtEntry] = []
        seen: Counter[str] = Counter()
        for ntry in _children(stmt, "Ntry"):
            txs = _find_all(ntry, "NtryDtls/TxDtls")
            batch = len(txs) > 1 and all(_has_amount(t) for t in txs)
            for index, tx in enumerate(txs if batch else [txs[0] if txs else None], start=1):
                position += 1
                entry = _entry(ntry, tx, batch)
                if _text(tx, "Refs/AcctSvcrRef"):
                    key = entry.account_servicer_ref
                elif entry.account_servicer_ref:
                    key = f"{entry.account_servicer_ref}/{index}" if batch else entry.account_servicer_ref
                else:
                    fingerprint = _fingerprint(account_iban, entry)
                    seen[fingerprint] += 1
                    key = f"sha256:{fingerprint[:48]}#{seen[fingerprint]}"
                entries.append(replace(entry, key=key, position=position))
        statements.append(
            CamtStatement(
                message_id=message_id,
                version=version,
                statement_id=_text(stmt, "Id"),
                account_iban=account_iban,
                account_currency=_text(stmt, "Acct/Ccy"),
                entries=tuple(entries),
            )
        )
    if not statements:
        raise CamtError("camt.structure", "The document holds no statement (Stmt).")
    return statements
