"""segno's QR mask selection, the same choice in a fraction of the time.

Drawing the portal's EPC QR code (``payments.transfer``) took ~7 ms, three quarters of it in segno
choosing the data mask: it applies each of the 8 masks cell by cell (two Python calls per module) and
scores each result in a Python loop over every module (ISO/IEC 18004:2015 7.8.3, penalties N1–N4).
The two functions below compute exactly what segno's ``apply_mask`` and ``evaluate_mask`` compute —
the same masked matrices, the same scores, so the same mask and the same symbol, byte for byte
(``tests/payments/test_qrmask.py`` compares them on hundreds of codes) — with whole-row operations:
the cells a mask flips are worked out once per (mask, size) and applied as one integer XOR per row;
runs of equal modules are found by a regular expression, 2×2 blocks by zipping neighbouring rows.

``install()`` (called by ``payments.transfer`` on import) puts them in ``segno.encoder``, which looks
both up at call time; ``uninstall()`` restores segno's own (tests). segno is pinned in
``pyproject.toml``; the tests fail if a new version changes what these functions must compute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from segno import encoder

_ORIGINAL = (encoder.apply_mask, encoder.evaluate_mask)
_ORIGINAL_SCORES = encoder.mask_scores  # segno's own, for the tests
_RUN = re.compile(rb"(.)\1{4,}", re.DOTALL)  # five or more equal modules in a row (N1)
_RUN_USUAL = re.compile(rb"\x00{5,}|\x01{5,}|\x02{5,}|\x03{5,}")  # the same, for segno's values 0-3
_USUAL = b"\x00\x01\x02\x03\xff"
_N3 = bytes((0x1, 0x0, 0x1, 0x1, 0x1, 0x0, 0x1))  # dark light dark dark dark light dark


_MASKS: dict[tuple[str, int, int], tuple[int, ...]] = {}


def _row_masks(
    mask_pattern: Callable[[int, int], bool],
    width: int,
    height: int,
    is_encoding_region: Callable[[int, int], bool],
) -> tuple[int, ...]:
    key = (mask_pattern.__name__, width, height)
    found = _MASKS.get(key)
    if found is None:
        rows = []
        for i in range(height):
            flips = bytes(1 if is_encoding_region(i, j) and mask_pattern(i, j) else 0 for j in range(width))
            rows.append(int.from_bytes(flips, "big"))
        found = _MASKS[key] = tuple(rows)
    return found


def apply_mask(
    matrix: Sequence[bytearray],
    mask_pattern: Callable[[int, int], bool],
    width: int,
    height: int,
    is_encoding_region: Callable[[int, int], bool],
) -> None:
    """``segno.encoder.apply_mask``: XOR the mask into the encoding region, in place."""
    for row, flips in zip(matrix, _row_masks(mask_pattern, width, height, is_encoding_region), strict=True):
        if flips:
            row[:] = (int.from_bytes(row, "big") ^ flips).to_bytes(width, "big")


def _n3(line: bytes, size: int) -> int:
    """segno's ``n3_pattern_occurrences``, unchanged (it was already a ``find`` loop)."""
    count = 0
    idx = line.find(_N3)
    while idx != -1:
        offset = idx + 7
        if (
            idx in (0, size - 7)
            or not any(line[max(idx - 4, 0) : min(idx, size)])
            or not any(line[max(offset, 0) : min(offset + 4, size)])
        ):
            count += 40
        else:
            offset = idx + 4
        idx = line.find(_N3, offset)
    return count


def mask_scores(matrix: Sequence[bytearray], width: int, height: int) -> tuple[int, int, int, int]:
    """``segno.encoder.mask_scores``: the penalties (N1, N2, N3, N4) of a square matrix."""
    if width != height:
        raise ValueError("QR Code matrices are square")
    size = width
    rows = [bytes(row) for row in matrix]
    columns = [bytes(column) for column in zip(*rows, strict=True)]
    # N1: runs of five or more equal modules, rows and columns in one pass (0xFF never occurs in a
    # matrix, so no run crosses from one line to the next).
    lines = b"\xff".join(rows + columns)
    if lines.translate(None, _USUAL):  # a module value segno does not use: the general pattern
        n1 = sum(m.end() - m.start() - 2 for m in _RUN.finditer(lines))
    else:
        runs = _RUN_USUAL.findall(lines)
        n1 = sum(map(len, runs)) - 2 * len(runs)
    # N2: 2x2 blocks of one colour. Per byte, XOR is 0 where two modules are equal: a block at column
    # j is where row[j-1] == row[j], above[j-1] == above[j] and row[j] == above[j] all hold.
    n2 = 0
    previous = None
    for row in rows:
        left, right = int.from_bytes(row[:-1], "big"), int.from_bytes(row[1:], "big")
        if previous is not None:
            above_left, above_right = previous
            same = (left ^ right) | (above_left ^ above_right) | (right ^ above_right)
            n2 += same.to_bytes(size - 1, "big").count(0)
        previous = (left, right)
    n3 = sum(_n3(line, size) for line in rows) + sum(_n3(line, size) for line in columns)
    dark = sum(map(sum, rows))
    percent = float(dark) / (size**2)
    n4 = 10 * int(abs(percent * 100 - 50) / 5)
    return n1, 3 * n2, n3, n4


def evaluate_mask(matrix: Sequence[bytearray], width: int, height: int) -> int:
    """``segno.encoder.evaluate_mask``: the total penalty."""
    return sum(mask_scores(matrix, width, height))


def install() -> None:
    encoder.apply_mask = apply_mask
    encoder.evaluate_mask = evaluate_mask


def uninstall() -> None:
    encoder.apply_mask, encoder.evaluate_mask = _ORIGINAL
