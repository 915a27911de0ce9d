"""SEPA credit transfer file (ISO 20022 pain.001.001.03) paying remittances from the trust account.

Pure module: no Django import. Built by ``sepaxml`` (DOMAIN-RULES PAY-10), which validates the
document against the official pain.001.001.03 XSD it ships before returning it. One ``PmtInf``
(batch booking) debits the agency's trust account (FR-COL-02: remittances are issued from it);
one ``CdtTrfTxInf`` per creditor, with our ``EndToEndId`` and the statement reference in
``RmtInf/Ustrd`` (sepaxml writes unstructured remittance information only). ``GrpHdr/MsgId`` and
``CreDtTm`` are ours (sepaxml draws a random id and reads the local clock), so the same run gives
the same identifiers.

Every IBAN is checked with schwifty (country format, length, MOD 97) before anything is written;
a BIC is given only when one is supplied (optional inside the EEA).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from schwifty import BIC, IBAN
from sepaxml import SepaTransfer

SCHEMA = "pain.001.001.03"
NAMESPACE = f"urn:iso:std:iso:20022:tech:xsd:{SCHEMA}"
ID_MAX = 35  # Max35Text: MsgId, PmtInfId, EndToEndId
USTRD_MAX = 140
# SEPA's Latin character set (EPC217-08): what every bank accepts in ids.
_ID_CHARS = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]{1,35}$")


class SepaFileError(ValueError):
    """A transfer that cannot go into the file; ``field`` says which value, ``index`` which transfer."""

    def __init__(self, message: str, *, field: str, index: int | None = None) -> None:
        super().__init__(message if index is None else f"transfer {index}: {message}")
        self.field = field
        self.index = index


@dataclass(frozen=True, slots=True)
class Transfer:
    name: str
    iban: str
    amount_minor: int  # euro cents, positive
    end_to_end_id: str
    remittance_info: str
    bic: str = ""


@dataclass(frozen=True, slots=True)
class CreditTransferFile:
    xml: bytes
    msg_id: str
    transactions: int
    control_sum: Decimal


def _iban(value: str, *, field: str, index: int | None = None) -> str:
    try:
        return str(IBAN(value).compact)
    except ValueError:
        raise SepaFileError(f"{value!r} is not a valid IBAN", field=field, index=index) from None


def _bic(value: str, *, field: str, index: int | None = None) -> str:
    try:
        return str(BIC(value).compact)
    except ValueError:
        raise SepaFileError(f"{value!r} is not a valid BIC", field=field, index=index) from None


def _id(value: str, *, field: str, index: int | None = None) -> str:
    if not _ID_CHARS.match(value):
        raise SepaFileError(f"{value!r} must be 1 to 35 SEPA characters", field=field, index=index)
    return value


def credit_transfer_file(
    *,
    msg_id: str,
    created_at: datetime,
    debtor_name: str,
    debtor_iban: str,
    execution_date: date,
    transfers: Sequence[Transfer],
    debtor_bic: str = "",
) -> CreditTransferFile:
    """The pain.001.001.03 document for ``transfers``, XSD-validated by sepaxml."""
    if not transfers:
        raise SepaFileError("a credit transfer file needs at least one transfer", field="transfers")
    config: dict[str, object] = {
        "name": debtor_name,
        "IBAN": _iban(debtor_iban, field="debtor_iban"),
        "batch": True,
        "currency": "EUR",
    }
    if debtor_bic:
        config["BIC"] = _bic(debtor_bic, field="debtor_bic")
    _id(msg_id, field="msg_id")
    sepa = SepaTransfer(config, schema=SCHEMA, clean=True)
    seen: set[str] = set()
    for i, t in enumerate(transfers):
        if not isinstance(t.amount_minor, int) or t.amount_minor <= 0:
            raise SepaFileError("the amount must be a positive number of cents", field="amount", index=i)
        e2e = _id(t.end_to_end_id, field="end_to_end_id", index=i)
        if e2e in seen:
            raise SepaFileError(f"end-to-end id {e2e} is repeated", field="end_to_end_id", index=i)
        seen.add(e2e)
        if not t.name.strip():
            raise SepaFileError("the payee name is empty", field="name", index=i)
        payment: dict[str, object] = {
            "name": t.name.strip(),
            "IBAN": _iban(t.iban, field="iban", index=i),
            "amount": t.amount_minor,
            "execution_date": execution_date,
            "description": t.remittance_info[:USTRD_MAX],
            "endtoend_id": e2e,
        }
        if t.bic:
            payment["BIC"] = _bic(t.bic, field="bic", index=i)
        sepa.add_payment(payment)
    # sepaxml builds the header in its constructor with a random MsgId and the local clock: put ours.
    header = sepa._xml.find("CstmrCdtTrfInitn/GrpHdr")  # sepaxml has no public setter
    header.find("MsgId").text = msg_id
    header.find("CreDtTm").text = created_at.strftime("%Y-%m-%dT%H:%M:%S")
    pmt_inf_id = sepa._xml.find("CstmrCdtTrfInitn/PmtInf/PmtInfId")
    if pmt_inf_id is not None:
        pmt_inf_id.text = msg_id
    xml = sepa.export(validate=True, pretty_print=True)
    total = sum(t.amount_minor for t in transfers)
    return CreditTransferFile(
        xml=xml, msg_id=msg_id, transactions=len(transfers), control_sum=Decimal(total).scaleb(-2)
    )
