# SPDX-License-Identifier: BSD-3-Clause
"""A numpy-only parser for the qonnx datatype names the metadata uses.

Only what the driver needs: bit width, signedness, the bipolar encoding and the value range.
qonnx is deliberately not imported (the board has numpy and pynq only).

>>> d = parse_dtype("INT4"); (d.bits, d.signed, d.min, d.max)
(4, True, -8, 7)
>>> parse_dtype("BIPOLAR").min, parse_dtype("BIPOLAR").bits
(-1, 1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import MetadataError

SUPPORTED = "BINARY, BIPOLAR, TERNARY, UINT<1..64>, INT<2..64>"
_INT_RE = re.compile(r"^(U?)INT(\d+)$")


@dataclass(frozen=True)
class DType:
    """One FINN/qonnx integer datatype: ``bits`` wide, two's complement when ``signed``.

    BIPOLAR values {-1, +1} are encoded as bits {0, 1}; TERNARY {-1, 0, +1} as 2-bit two's
    complement (FINN's convention).
    """

    name: str
    bits: int
    signed: bool
    bipolar: bool = False
    min: int = 0
    max: int = 1

    def allowed_desc(self) -> str:
        """Human-readable value set, for error messages."""
        return "{-1, +1}" if self.bipolar else f"[{self.min}, {self.max}]"

    def container(self) -> np.dtype:
        """Smallest numpy integer dtype that holds every value of this datatype."""
        if self.bipolar or self.name == "TERNARY":
            return np.dtype(np.int8)
        for bits in (8, 16, 32, 64):
            if self.bits <= bits:
                return np.dtype(f"{'i' if self.signed else 'u'}{bits // 8}")
        raise MetadataError(f"datatype {self.name} is wider than 64 bits")  # pragma: no cover


def parse_dtype(name: str) -> DType:
    """Parse a qonnx datatype name (``"UINT8"``, ``"INT24"``, ``"BIPOLAR"``, ...).

    Also accepts FINN's ``"DataType['UINT8']"`` spelling. Raises ``MetadataError`` for names
    the driver cannot pack (floats, fixed point, scaled ints).
    """
    if not isinstance(name, str):
        raise MetadataError(f"datatype must be a string, got {name!r}")
    key = name.strip()
    m = re.fullmatch(r"DataType\[['\"](\w+)['\"]\]", key)
    key = m.group(1) if m else key
    if key == "BINARY":
        return DType("BINARY", 1, False, False, 0, 1)
    if key == "BIPOLAR":
        return DType("BIPOLAR", 1, True, True, -1, 1)
    if key == "TERNARY":
        return DType("TERNARY", 2, True, False, -1, 1)
    m = _INT_RE.match(key)
    if m:
        unsigned, bits = m.group(1) == "U", int(m.group(2))
        if unsigned and 1 <= bits <= 64:
            return DType(key, bits, False, False, 0, (1 << bits) - 1)
        if not unsigned and 2 <= bits <= 64:
            return DType(key, bits, True, False, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    raise MetadataError(f"unsupported datatype {name!r}; the driver supports {SUPPORTED}")
