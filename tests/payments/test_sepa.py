"""pain.008 files checked against the official XSD and by structure; R-transaction files read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from relance.payments.rtx import RTransactionError, rtransactions_parse
from relance.payments.sepa import (
    Creditor,
    DebitLine,
    SepaFileError,
    end_to_end_id,
    ics_is_valid,
    pain008,
    umr_for,
    umr_is_valid,
)

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"}
# The official ISO 20022 schema, as shipped inside the sepaxml package (read here independently).
XSD = xmlschema.XMLSchema(str(Path(sepaxml.__file__).parent / "schemas" / "pain.008.001.08.xsd"))
AGENCY = Creditor(name="Recouvrement Test SAS", iban="FR7630006000011234567890189", bic="", identifier="FR72ZZZ123456")


def line(n: int, amount: int = 5000, seq: str = "FRST", day: date = date(2026, 12, 1)) -> DebitLine:
    return DebitLine(
        end_to_end_id=end_to_end_id(case_reference="RL-7KQ2M9XA", plan_id=n, number=1),
        amount_minor=amount,
        currency="EUR",
        sequence_type=seq,
        collection_date=day,
        umr=umr_for(case_reference="RL-7KQ2M9XA", plan_id=n),
        signature_date=date(2026, 11, 20),
        debtor_name="Jérôme Lefèvre-Dupont",
        debtor_iban="FR1420041010050500013M02606",
        description=f"RL-7KQ2M9XA {n}/3 Shop",
    )


def test_a_file_with_first_and_recurrent_collections_is_valid_and_grouped():
    doc = pain008(creditor=AGENCY, lines=[line(1, 3334, "FRST"), line(2, 3333, "RCUR"), line(3, 3333, "RCUR")])
    XSD.validate(doc.xml.decode())
    root = etree.fromstring(doc.xml)
    assert root.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", namespaces=NS) == doc.message_id
    assert root.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "3"
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "100.00"
    infos = root.findall(".//p:PmtInf", namespaces=NS)
    by_seq = {i.findtext("p:PmtTpInf/p:SeqTp", namespaces=NS): i for i in infos}
    assert set(by_seq) == {"FRST", "RCUR"}
    assert by_seq["RCUR"].findtext("p:NbOfTxs", namespaces=NS) == "2"
    assert by_seq["RCUR"].findtext("p:CtrlSum", namespaces=NS) == "66.66"
    for info in infos:
        assert info.findtext("p:PmtMtd", namespaces=NS) == "DD"
        assert info.findtext("p:PmtTpInf/p:SvcLvl/p:Cd", namespaces=NS) == "SEPA"
        assert info.findtext("p:PmtTpInf/p:LclInstrm/p:Cd", namespaces=NS) == "CORE"
        assert info.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == AGENCY.iban
        assert info.findtext("p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:Id", namespaces=NS) == "FR72ZZZ123456"
    tx = root.find(".//p:DrctDbtTxInf", namespaces=NS)
    assert tx.findtext("p:DrctDbtTx/p:MndtRltdInf/p:MndtId", namespaces=NS) == "RL-7KQ2M9XA-M1"
    assert tx.findtext("p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr", namespaces=NS) == "2026-11-20"
    assert tx.findtext("p:Dbtr/p:Nm", namespaces=NS) == "Jerome Lefevre-Dupont"  # SEPA Latin characters


@settings(max_examples=10, deadline=None)  # each file is validated twice against the XSD
@given(st.lists(st.tuples(st.integers(1, 10**8), st.sampled_from(["FRST", "RCUR"])), min_size=1, max_size=8))
def test_any_batch_is_schema_valid_and_its_control_sums_add_up(rows):
    doc = pain008(creditor=AGENCY, lines=[line(i + 1, amount, seq) for i, (amount, seq) in enumerate(rows)])
    XSD.validate(doc.xml.decode())
    root = etree.fromstring(doc.xml)
    total = sum(amount for amount, _ in rows)
    assert Decimal(root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS)) * 100 == total
    amounts = [Decimal(a.text) * 100 for a in root.iterfind(".//p:InstdAmt", namespaces=NS)]
    assert sorted(amounts) == sorted(Decimal(a) for a, _ in rows)


def test_bad_lines_never_make_a_file():
    with pytest.raises(SepaFileError):
        pain008(creditor=AGENCY, lines=[])
    with pytest.raises(SepaFileError):
        pain008(creditor=Creditor(AGENCY.name, AGENCY.iban, "", "FR00ZZZ123456"), lines=[line(1)])
    with pytest.raises(SepaFileError):
        pain008(creditor=AGENCY, lines=[line(1, seq="OOFF")])
    with pytest.raises(SepaFileError):  # the XSD refuses a malformed IBAN
        pain008(creditor=AGENCY, lines=[replace(line(1), debtor_iban="NOT AN IBAN")])


def test_mandate_references_and_creditor_identifiers():
    assert umr_is_valid("RL-7KQ2M9XA-M12") and not umr_is_valid("//X") and not umr_is_valid("A" * 36)
    assert not umr_is_valid("RL_7KQ") and not umr_is_valid("")
    assert len(end_to_end_id(case_reference="RL-7KQ2M9XA", plan_id=10**9, number=120)) <= 35
    assert ics_is_valid("FR72ZZZ123456") and not ics_is_valid("FR73ZZZ123456")


PAIN002_GROUP_REJECT = b"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>
<GrpHdr><MsgId>S1</MsgId><CreDtTm>2026-12-01T08:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>MSG-9</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId><GrpSts>RJCT</GrpSts>
<StsRsnInf><Rsn><Cd>FF01</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>"""


def test_a_whole_file_reject_names_the_original_message():
    (rtx,) = rtransactions_parse(PAIN002_GROUP_REJECT)
    assert (rtx.kind, rtx.end_to_end_id, rtx.original_message_id, rtx.reason_code) == ("reject", "", "MSG-9", "FF01")


def test_accepted_transactions_are_not_r_transactions():
    xml = PAIN002_GROUP_REJECT.replace(b"<GrpSts>RJCT</GrpSts>", b"<GrpSts>ACCP</GrpSts>")
    assert rtransactions_parse(xml) == []


def test_a_camt053_return_is_read_with_its_reason():
    xml = b"""<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
    <GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S</Id><Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>
    <Ntry><Amt Ccy="EUR">33.34</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><NtryDtls><TxDtls>
    <Refs><AcctSvcrRef>B1</AcctSvcrRef><EndToEndId>RL-7KQ2M9XA-P1-1</EndToEndId></Refs><Amt Ccy="EUR">33.34</Amt>
    <RtrInf><Rsn><Cd>MD06</Cd></Rsn></RtrInf></TxDtls></NtryDtls></Ntry>
    <Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry></Stmt></BkToCstmrStmt></Document>"""
    (rtx,) = rtransactions_parse(xml)
    assert (rtx.kind, rtx.end_to_end_id, rtx.reason_code, rtx.amount) == (
        "return",
        "RL-7KQ2M9XA-P1-1",
        "MD06",
        Decimal("33.34"),
    )
    assert rtx.key == "camt:B1:RL-7KQ2M9XA-P1-1"


@pytest.mark.parametrize(
    "data",
    [
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"/>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"/>',
    ],
)
def test_other_files_are_refused(data):
    with pytest.raises(RTransactionError):
        rtransactions_parse(data)
