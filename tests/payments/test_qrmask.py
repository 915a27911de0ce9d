"""payments.qrmask: segno's mask choice, faster, with the same symbols byte for byte.

The portal's EPC QR code (PAY-12, FR-COL-02) must not change because it is drawn faster: every code
here is drawn with segno's own mask functions and with ours, and the matrices (hence the mask chosen,
the version and every module) must be identical.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from decimal import Decimal

import pytest
import segno
from segno import encoder, helpers

from relance.payments import qrmask, transfer


@pytest.fixture
def both() -> Iterator[None]:
    yield
    qrmask.install()  # as payments.transfer leaves it


def _codes(seed: int) -> list[tuple[str, dict]]:
    r = random.Random(seed)
    codes: list[tuple[str, dict]] = []
    for _ in range(60):
        name = "".join(r.choice(string.ascii_letters + " éàçÉ-'&") for _ in range(r.randint(1, 70))).strip() or "X"
        codes.append(
            (
                "epc",
                {
                    "name": name,
                    "iban": r.choice(["FR7630006000011234567890189", "DE89370400440532013000", "BE71096123456769"]),
                    "amount": Decimal(r.randint(1, 99_999_999_999)) / 100,
                    "reference": "RF" + "".join(r.choice(string.digits + string.ascii_uppercase) for _ in range(12)),
                    "encoding": "utf-8",
                },
            )
        )
    for _ in range(40):  # other sizes (versions 1 to about 25) and error levels
        text = "".join(r.choice(string.printable) for _ in range(r.randint(1, 500)))
        codes.append(("text", {"content": text, "error": r.choice("lmqh")}))
    codes.extend(("micro", {"content": str(r.randint(0, 99_999))}) for _ in range(10))
    return codes


def _draw(kind: str, data: dict) -> tuple[object, object, tuple[bytes, ...]]:
    if kind == "epc":
        code = helpers.make_epc_qr(**data)
    elif kind == "micro":
        code = segno.make(data["content"], micro=True)
    else:
        code = segno.make_qr(data["content"], error=data["error"])
    return code.version, code.mask, tuple(bytes(row) for row in code.matrix)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_symbols_as_segno(both, seed):
    codes = _codes(seed)
    qrmask.uninstall()
    assert encoder.evaluate_mask is not qrmask.evaluate_mask
    expected = [_draw(kind, data) for kind, data in codes]
    qrmask.install()
    assert encoder.evaluate_mask is qrmask.evaluate_mask
    assert [_draw(kind, data) for kind, data in codes] == expected
    assert len({version for version, _, _ in expected}) > 5


def test_the_same_scores_as_segno_on_any_module_values():
    r = random.Random(7)
    for size in (21, 25, 41, 57):
        for _ in range(20):
            matrix = [bytearray(r.choice(b"\x00\x01\x01\x02\x07") for _ in range(size)) for _ in range(size)]
            assert qrmask.mask_scores(matrix, size, size) == qrmask._ORIGINAL_SCORES(matrix, size, size)


def test_the_portal_code_is_the_one_segno_draws(both):
    details = transfer.transfer_details(
        holder="Recouvrement Test SAS",
        iban="FR7630006000011234567890189",
        amount=transfer.Money(12050, "EUR"),
        case_reference="RL-ABCDEFGH",
    )
    assert details is not None
    transfer._qr_svg_data_uri.cache_clear()
    fast = details.qr_svg_data_uri()
    qrmask.uninstall()
    transfer._qr_svg_data_uri.cache_clear()
    assert details.qr_svg_data_uri() == fast
    transfer._qr_svg_data_uri.cache_clear()
