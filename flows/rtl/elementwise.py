# SPDX-License-Identifier: BSD-3-Clause
"""The elementwise unit (``hdl/bnn_elementwise.sv``): its parameters, its streams and a numpy
model.

The unit combines two streams lane by lane: ``y = lhs OP rhs`` (OP add, mul or sub) on ``PE``
elements per word, the exact integer result kept in its ``OUT_BITS`` low bits (two's
complement). The rhs is either a full stream (one word per lhs word) or, with
``RHS_BROADCAST``, a per-channel vector of ``C/PE`` words per frame that the unit buffers and
reuses for every pixel of the frame (FINN's rhs shape ``[1, 1, 1, C]`` against an lhs
``[1, H, W, C]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .unit import HDL_DIR, pad8

MODULE = "bnn_elementwise"

#: OP parameter of the unit per operation name
OPS = {"add": 0, "mul": 1, "sub": 2}


def rtl_sources() -> list[Path]:
    """The SystemVerilog sources of the unit."""
    return [HDL_DIR / f"{MODULE}.sv"]


@dataclass(frozen=True)
class EltwiseShape:
    """One instance of the unit. ``pixels`` = lhs words per frame / ``folds``."""

    op: str
    pe: int
    folds: int
    pixels: int
    lhs_bits: int
    rhs_bits: int
    out_bits: int
    lhs_signed: bool
    rhs_signed: bool
    out_signed: bool
    broadcast: bool

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"unknown elementwise operation {self.op!r}; expected {sorted(OPS)}")
        if min(self.pe, self.folds, self.pixels, self.lhs_bits, self.rhs_bits,
               self.out_bits) < 1:
            raise ValueError(f"elementwise unit parameters must be positive: {self}")

    @property
    def widths(self) -> tuple[int, int, int]:
        """Padded (in0, in1, out0) stream widths."""
        return (pad8(self.pe * self.lhs_bits), pad8(self.pe * self.rhs_bits),
                pad8(self.pe * self.out_bits))

    def params(self) -> dict[str, str]:
        """Verilog parameter overrides for an instance."""
        in0, in1, out = self.widths
        return {"OP": str(OPS[self.op]), "PE": str(self.pe), "LHS_BITS": str(self.lhs_bits),
                "RHS_BITS": str(self.rhs_bits), "OUT_BITS": str(self.out_bits),
                "LHS_SIGNED": str(int(self.lhs_signed)), "RHS_SIGNED": str(int(self.rhs_signed)),
                "RHS_BROADCAST": str(int(self.broadcast)), "NUM_FOLDS": str(self.folds),
                "PIXELS": str(self.pixels), "IN0_WIDTH": str(in0), "IN1_WIDTH": str(in1),
                "OUT_WIDTH": str(out)}


def wrap(value: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Integers reduced to ``bits`` bits: two's complement if ``signed``, else modulo 2^bits."""
    v = np.asarray(value, dtype=np.int64) & ((1 << bits) - 1)
    if signed:
        v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
    return v


def reference(lhs: np.ndarray, rhs: np.ndarray, op: str, out_bits: int,
              out_signed: bool) -> np.ndarray:
    """What the unit outputs: ``lhs OP rhs`` with numpy broadcasting (rhs ``[1, 1, 1, C]`` over
    lhs ``[N, H, W, C]``, or equal shapes), in int64, reduced to the output width. Equals FINN's
    Python model (which does not reduce) whenever the output datatype holds the exact result,
    which FINN's derived ``out_dtype`` always does."""
    a = np.asarray(lhs).astype(np.int64)
    b = np.asarray(rhs).astype(np.int64)
    exact = {"add": np.add, "mul": np.multiply, "sub": np.subtract}[op](a, b)
    return wrap(exact, out_bits, out_signed)


def frames_streams(lhs: np.ndarray, rhs: np.ndarray, pe: int, broadcast: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The element sequences of in0_V and in1_V for a batch of frames, shaped
    ``(words, PE)``: lhs ``(N, ..., C)`` in order; rhs the same (equal shapes) or, broadcast,
    ``(N, C)`` once per frame."""
    c = lhs.shape[-1]
    a = np.asarray(lhs).reshape(-1, pe)
    if broadcast:
        b = np.asarray(rhs).reshape(lhs.shape[0], c).reshape(-1, pe)
    else:
        b = np.asarray(rhs).reshape(-1, pe)
    return a, b


def output_range(op: str, lhs: tuple[int, int], rhs: tuple[int, int]) -> tuple[int, int]:
    """(min, max) of the exact result for operands in the given (min, max) ranges."""
    if op == "mul":
        corners = [x * y for x in lhs for y in rhs]
        return min(corners), max(corners)
    if op == "add":
        return lhs[0] + rhs[0], lhs[1] + rhs[1]
    return lhs[0] - rhs[1], lhs[1] - rhs[0]
