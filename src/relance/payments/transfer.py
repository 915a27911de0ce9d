"""Paying by SEPA credit transfer: the details a debtor needs and the EPC QR code that carries them.

Pure module: no Django import. FR-COL-02: the only account a debtor is ever told to pay is the
agency's trust account (``Agency.trust_iban``), held by the agency (``Agency.legal_name``). The
remittance information is always the case's structured RF reference, never free text (PAY-03,
PAY-12), so the incoming transfer is matched on it first (PAY-06).

EPC QR code: EPC069-12 version 002 as implemented by ``segno.helpers.make_epc_qr`` (PAY-12): lines
``BCD`` / ``002`` / charset / ``SCT`` / BIC / name ≤ 70 / IBAN / ``EUR<amount>`` / purpose /
structured reference; error correction level M, QR version ≤ 13, payload ≤ 331 bytes. EUR only:
SEPA credit transfers and the EPC QR code carry euros.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass

import segno
from schwifty import IBAN
from segno import helpers as segno_helpers

from relance.core.money import Money
from relance.payments.reference import case_rf_reference, rf_format

EPC_NAME_MAX = 70  # EPC069-12: beneficiary name, at most 70 characters
EPC_MAX_MINOR = 99_999_999_999  # EPC069-12: EUR 0.01 to 999 999 999.99
EPC_ENCODING = "utf-8"  # charset 1: what banking apps read everywhere


@dataclass(frozen=True, slots=True)
class Iban:
    """A validated IBAN with what its bank registry tells (the BIC, when schwifty knows it)."""

    compact: str
    formatted: str
    bic: str


@functools.lru_cache(maxsize=1024)
def iban_parse(value: str) -> Iban | None:
    """The IBAN if ``value`` is a valid one (country format, length, MOD 97 check), else ``None``.

    A pure function of ``value`` (schwifty's registry is read once per process), remembered per process:
    the portal checks the agency's trust IBAN on every case page."""
    if not value or not value.strip():
        return None
    try:
        iban = IBAN(value)
    except ValueError:  # schwifty.exceptions.SchwiftyException is a ValueError
        return None
    try:
        bic = iban.bic
    except ValueError:
        bic = None
    return Iban(compact=str(iban.compact), formatted=str(iban.formatted), bic=str(bic) if bic else "")


def iban_is_valid(value: str) -> bool:
    return iban_parse(value) is not None


@dataclass(frozen=True, slots=True)
class TransferDetails:
    """What the debtor types in a banking app, and the EPC QR code that types it for them."""

    holder: str
    iban: Iban
    amount: Money
    reference: str  # compact RF, e.g. RF41RL7KQ2M9XA

    @property
    def reference_display(self) -> str:
        return rf_format(self.reference)

    @property
    def epc_payload(self) -> bytes:
        return epc_payload(holder=self.holder, iban=self.iban.compact, amount=self.amount, reference=self.reference)

    def qr_svg_data_uri(self) -> str:
        """The EPC QR code as an SVG ``data:`` URI (for documents that embed it)."""
        return _qr_svg_data_uri(self.holder, self.iban.compact, self.amount.minor, self.amount.currency, self.reference)

    def qr_svg(self) -> bytes:
        """The EPC QR code as an SVG document (the portal serves it as its own image)."""
        return _qr_svg(self.holder, self.iban.compact, self.amount.minor, self.amount.currency, self.reference)

    @property
    def qr_etag(self) -> str:
        """A strong validator of the QR code's image: a digest of everything it encodes (holder, IBAN,
        amount, reference) and of how it is drawn; the same details give the same image, always."""
        return _qr_etag(self.holder, self.iban.compact, self.amount.minor, self.amount.currency, self.reference)


# How the QR code is drawn (``_qr_svg`` and ``_qr_svg_data_uri``): part of the image's ETag.
QR_DRAWING = b"segno svg scale=4 border=4 dark=#000 light=#fff"


@functools.lru_cache(maxsize=4096)
def _qr_etag(holder: str, iban: str, amount_minor: int, currency: str, reference: str) -> str:
    """``TransferDetails.qr_etag``: a pure function of the details, which the case page shows at every
    view; each worker keeps the ones it computed, as it keeps the images."""
    payload = epc_payload(holder=holder, iban=iban, amount=Money(amount_minor, currency), reference=reference)
    return hashlib.sha256(QR_DRAWING + b"\0" + payload).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def _qr_svg_data_uri(holder: str, iban: str, amount_minor: int, currency: str, reference: str) -> str:
    """Drawing a QR code costs ~15 ms: each worker keeps the ones it drew (they change with the amount)."""
    qr = epc_qr(holder=holder, iban=iban, amount=Money(amount_minor, currency), reference=reference)
    return str(qr.svg_data_uri(scale=4, border=4, dark="#000", light="#fff"))


@functools.lru_cache(maxsize=4096)
def _qr_svg(holder: str, iban: str, amount_minor: int, currency: str, reference: str) -> bytes:
    qr = epc_qr(holder=holder, iban=iban, amount=Money(amount_minor, currency), reference=reference)
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=4, border=4, dark="#000", light="#fff")
    return out.getvalue()


def transfer_details(*, holder: str, iban: str, amount: Money, case_reference: str) -> TransferDetails | None:
    """Transfer details for a case, or ``None`` when a transfer cannot be offered.

    ``None`` when the trust IBAN is missing or invalid (never print an account that cannot receive),
    when nothing is due, or when the amount is not in euros or beyond what an EPC QR code carries.
    """
    checked = iban_parse(iban)
    if checked is None or not holder.strip():
        return None
    if amount.currency != "EUR" or not 0 < amount.minor <= EPC_MAX_MINOR:
        return None
    return TransferDetails(
        holder=holder.strip(), iban=checked, amount=amount, reference=case_rf_reference(case_reference)
    )


def _epc_name(holder: str) -> str:
    return holder.strip()[:EPC_NAME_MAX].rstrip()


def epc_payload(*, holder: str, iban: str, amount: Money, reference: str) -> bytes:
    """The EPC069-12 payload ``epc_qr`` encodes: structured RF reference, no text, no BIC.

    The BIC is optional inside the EEA since EPC069-12 v002, and the one a registry derives from
    the IBAN is not authoritative enough to put in a payment order.
    """
    lines = [
        "BCD",  # service tag
        "002",  # version
        "1",  # character set: UTF-8
        "SCT",  # SEPA credit transfer
        "",  # BIC
        _epc_name(holder),
        iban,
        f"EUR{amount.to_decimal():.2f}".rstrip("0").rstrip("."),  # as segno writes it: EUR120.5
        "",  # purpose
        reference,  # structured remittance information (RF)
    ]
    return "\n".join(lines).encode(EPC_ENCODING)


def epc_qr(*, holder: str, iban: str, amount: Money, reference: str) -> segno.QRCode:
    """The EPC QR code (error correction M, version ≤ 13), built by ``segno.helpers.make_epc_qr``."""
    if amount.currency != "EUR":
        raise ValueError("an EPC QR code carries euros only")
    return segno_helpers.make_epc_qr(
        name=_epc_name(holder),
        iban=iban,
        amount=amount.to_decimal(),
        reference=reference,
        encoding=EPC_ENCODING,
    )
