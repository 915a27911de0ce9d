"""SEPA direct debit: mandate references (UMR), creditor identifiers (ICS) and pain.008 files.

Pure module: no Django import. The XML is written by ``sepaxml`` (PAY-07, the maintained library
named in DESIGN.md) in ``pain.008.001.08`` and validated by it against the official XSD it ships
(``sepaxml/schemas/pain.008.001.08.xsd``) before it is returned: a file that breaks the schema is
never handed to a bank.

Elements written (PAY-07): ``GrpHdr(MsgId, CreDtTm, NbOfTxs, CtrlSum, InitgPty)``; one ``PmtInf``
per (sequence type, collection date) with ``PmtMtd=DD``, ``SvcLvl/Cd=SEPA``, ``LclInstrm/Cd=CORE``,
``SeqTp`` = ``FRST`` (first collection under a mandate) or ``RCUR``, ``ReqdColltnDt``, the creditor
(agency, trust IBAN), ``CdtrSchmeId`` = ICS; per transaction ``EndToEndId``, ``InstdAmt@Ccy``,
``MndtRltdInf(MndtId = UMR, DtOfSgntr)``, debtor name and IBAN, ``RmtInf/Ustrd``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sepaxml import SepaDD
from stdnum.eu import at_02

SCHEMA = "pain.008.001.08"
# PAY-08: 1–35 characters of the SEPA Latin set, not starting with "//" and no "//" inside.
_UMR = re.compile(r"^[A-Za-z0-9:?/+(),. '-]{1,35}$")


def umr_is_valid(value: str) -> bool:
    return bool(_UMR.match(value)) and not value.startswith("/") and "//" not in value


def umr_for(*, case_reference: str, plan_id: int) -> str:
    """A unique mandate reference derived from the case and the plan: ``RL-7KQ2M9XA-M12``."""
    return f"{case_reference}-M{plan_id}"


def end_to_end_id(*, case_reference: str, plan_id: int, number: int, presentation: int = 1) -> str:
    """The instalment's EndToEndId (≤ 35 characters): how the bank's R-transactions name it back.

    A collection presented again after a return is a new transaction with its own id (``-R1``): its
    settlement and any second return must not be taken for the first one's."""
    again = f"-R{presentation - 1}" if presentation > 1 else ""
    return f"{case_reference}-P{plan_id}-{number}{again}"


def ics_is_valid(value: str) -> bool:
    """A SEPA creditor identifier (PAY-04, EPC AT-02): ``FR72ZZZ123456``."""
    return bool(value) and at_02.is_valid(value)


@dataclass(frozen=True, slots=True)
class DebitLine:
    """One collection for a pain.008 file."""

    end_to_end_id: str
    amount_minor: int
    currency: str
    sequence_type: str  # FRST | RCUR
    collection_date: date
    umr: str
    signature_date: date
    debtor_name: str
    debtor_iban: str
    description: str  # RmtInf/Ustrd, ≤ 140 characters


@dataclass(frozen=True, slots=True)
class Creditor:
    name: str  # the account holder: the agency
    iban: str  # the trust account (FR-COL-02)
    bic: str
    identifier: str  # ICS


class SepaFileError(ValueError):
    """The lines cannot make a valid pain.008 file (the message says which)."""


@dataclass(frozen=True, slots=True)
class Pain008:
    message_id: str  # GrpHdr/MsgId, made unique by sepaxml (timestamp + random)
    xml: bytes


def pain008(*, creditor: Creditor, lines: list[DebitLine]) -> Pain008:
    """A pain.008.001.08 document for ``lines``, validated against the official XSD."""
    if not lines:
        raise SepaFileError("A direct-debit file needs at least one collection.")
    if not ics_is_valid(creditor.identifier):
        raise SepaFileError(f"{creditor.identifier!r} is not a valid SEPA creditor identifier (ICS).")
    config = {
        "name": creditor.name,
        "IBAN": creditor.iban,
        "batch": True,
        "creditor_id": at_02.compact(creditor.identifier),
        "currency": "EUR",
        "instrument": "CORE",
    }
    if creditor.bic:
        config["BIC"] = creditor.bic
    document = SepaDD(config, schema=SCHEMA, clean=True)
    for line in lines:
        if line.currency != "EUR":
            raise SepaFileError(f"{line.end_to_end_id}: SEPA direct debits are in euros.")
        if line.sequence_type not in {"FRST", "RCUR"}:
            raise SepaFileError(f"{line.end_to_end_id}: sequence type {line.sequence_type!r}.")
        if not umr_is_valid(line.umr):
            raise SepaFileError(f"{line.end_to_end_id}: {line.umr!r} is not a valid mandate reference.")
        document.add_payment(
            {
                "name": line.debtor_name,
                "IBAN": line.debtor_iban,
                "amount": line.amount_minor,
                "type": line.sequence_type,
                "collection_date": line.collection_date,
                "mandate_id": line.umr,
                "mandate_date": line.signature_date,
                "description": line.description,
                "endtoend_id": line.end_to_end_id,
            }
        )
    try:
        xml = bytes(document.export(validate=True))
    except Exception as exc:  # sepaxml raises its own ValidationError (and plain Exceptions) on bad values
        raise SepaFileError(f"The direct-debit file does not validate against {SCHEMA}: {exc}") from exc
    return Pain008(message_id=str(document.msg_id), xml=xml)
