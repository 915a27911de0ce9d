"""Reading SEPA direct-debit R-transactions: rejects (pain.002) and returns (camt.054, camt.053).

Pure module: no Django import. Each R-transaction names the collection by its ``EndToEndId`` (the
one ``sepa.end_to_end_id`` wrote in the pain.008) and gives an ISO 20022 reason code (DOMAIN-RULES
PAY-05, PAY-09): AC01 wrong IBAN, AC04 account closed, AC06 account blocked, AG01 not allowed,
AM04 insufficient funds, MD01 no mandate, MD06 refund asked by the debtor, MS02/MS03 refused, …

- pain.002.001.03 to .001.10 (CstmrPmtStsRpt): ``OrgnlGrpInfAndSts/(OrgnlMsgId, GrpSts)``,
  ``OrgnlPmtInfAndSts/TxInfAndSts/(OrgnlEndToEndId, TxSts, StsRsnInf/Rsn/Cd)``; only ``RJCT``
  transactions count; a file rejected as a whole (``GrpSts=RJCT`` with no transaction detail) names
  the original message, and every collection of it is rejected.
- camt.054 (BkToCstmrDbtCdtNtfctn/Ntfctn) and camt.053 (BkToCstmrStmt/Stmt), .001.02 to .001.08:
  ``Ntry/NtryDtls/TxDtls`` carrying ``RtrInf/Rsn/Cd`` with ``Refs/EndToEndId``.

The parser is camt.py's: no entity resolution, no network, any DTD refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from relance.payments.camt import CamtError, _children, _find, _find_all, _local, _parse, _text

_PAIN002 = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:pain\.002\.001\.(0[2-9]|1[0-2])$")
_CAMT = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.05[34]\.001\.(0[2-8])$")

# Reason codes after which a collection must not be presented again automatically (PAY-09).
NO_REPRESENTATION = frozenset({"MD01", "MD06", "MD07", "AC01", "AC04", "AC06", "AG01", "SL01", "BE05"})
# Reason codes after which a collection is presented once more, some days later: insufficient funds
# is the one return that a few days usually cure (PAY-09; anything else waits for a person or the
# next instalment).
REPRESENTABLE = frozenset({"AM04"})


class RTransactionError(CamtError):
    """A file that is neither a pain.002 status report nor a camt.053/054 this module reads."""


@dataclass(frozen=True, slots=True)
class RTransaction:
    """One rejected or returned collection."""

    kind: str  # reject | return
    end_to_end_id: str  # "" for a whole-file reject
    original_message_id: str  # the pain.008 MsgId, when given
    reason_code: str  # "" when the bank gave none
    amount: Decimal | None
    key: str  # idempotency key of this R-transaction


def _reason(el: etree._Element | None) -> str:
    return _text(el, "Rsn/Cd") or _text(el, "Rsn/Prtry")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _pain002(root: etree._Element) -> list[RTransaction]:
    report = _find(root, "CstmrPmtStsRpt")
    if report is None:
        raise RTransactionError("rtx.structure", "CstmrPmtStsRpt is missing.")
    group = _find(report, "OrgnlGrpInfAndSts")
    message_id = _text(group, "OrgnlMsgId")
    found: list[RTransaction] = []
    for info in _children(report, "OrgnlPmtInfAndSts"):
        for tx in _children(info, "TxInfAndSts"):
            if _text(tx, "TxSts") != "RJCT":
                continue
            e2e = _text(tx, "OrgnlEndToEndId")
            reason = _reason(_find(tx, "StsRsnInf"))
            amount = _decimal(_text(tx, "OrgnlTxRef/Amt/InstdAmt"))
            found.append(RTransaction("reject", e2e, message_id, reason, amount, f"pain002:{message_id}:{e2e}"))
    if not found and _text(group, "GrpSts") == "RJCT":
        reason = _reason(_find(group, "StsRsnInf"))
        found.append(RTransaction("reject", "", message_id, reason, None, f"pain002:{message_id}:*"))
    return found


def _camt(root: etree._Element) -> list[RTransaction]:
    found: list[RTransaction] = []
    for container in (*_find_all(root, "BkToCstmrDbtCdtNtfctn/Ntfctn"), *_find_all(root, "BkToCstmrStmt/Stmt")):
        for ntry in _children(container, "Ntry"):
            for tx in _find_all(ntry, "NtryDtls/TxDtls"):
                rtr = _find(tx, "RtrInf")
                if rtr is None:
                    continue
                e2e = _text(tx, "Refs/EndToEndId")
                ref = _text(tx, "Refs/AcctSvcrRef") or _text(ntry, "AcctSvcrRef") or e2e
                amount = _decimal(_text(tx, "Amt") or _text(tx, "AmtDtls/TxAmt/Amt") or _text(ntry, "Amt"))
                found.append(
                    RTransaction("return", e2e, _text(tx, "Refs/MsgId"), _reason(rtr), amount, f"camt:{ref}:{e2e}")
                )
    return found


def rtransactions_parse(data: bytes) -> list[RTransaction]:
    """Every reject or return in a pain.002, camt.054 or camt.053 document."""
    try:
        root = _parse(data)
    except RTransactionError:
        raise
    except CamtError as exc:
        raise RTransactionError(exc.code, str(exc)) from None
    namespace = etree.QName(root).namespace or ""
    if _local(root) == "Document" and _PAIN002.match(namespace):
        return _pain002(root)
    if _local(root) == "Document" and _CAMT.match(namespace):
        return _camt(root)
    raise RTransactionError(
        "rtx.version", "This is neither a pain.002 payment status report nor a camt.053/camt.054 document."
    )
