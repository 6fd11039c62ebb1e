# SPDX-License-Identifier: BSD-3-Clause
"""The bipolar-weight MVAU (``hdl/bnn_bipolar_mvau.sv``): memory images and a numpy model.

A matrix-vector unit for FINN MVAUs whose weights are ±1 (FINN's BIPOLAR weights, also after
``MinimizeWeightBitWidth`` has retyped them INT2) and whose activations are multi-bit integers
(signed or unsigned, e.g. CNV-W1A2's INT2 or the first layer's 8-bit pixels). It needs no
multiplier: a neuron computes ``Σ_k (w[k] ? x[k] : -x[k])`` over MW inputs, in the RTL as
``2·Σ_{w=1} x − Σ x`` (an AND-gated adder tree per PE and one shared sum of the inputs),
optionally mapped through ``N_THRES`` thresholds to ``ACT_BIAS + #{t : acc >= T[t]}``; without
thresholds the accumulator itself is the output (FINN's ``noActivation``).

These functions are the single definition of what the RTL computes and of its memory layout;
the FINN op (:mod:`flows.rtl.bipolar_mvau_op`) and the tests use them, so the RTL is checked
against an independent model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .unit import HDL_DIR, pad8
from .xnor_mvau import write_hex

MODULE = "bnn_bipolar_mvau"

__all__ = ["MODULE", "BipolarMvauShape", "rtl_sources", "weight_words", "threshold_words",
           "clip_thresholds", "reference", "write_hex", "is_bipolar", "weight_bits"]


def rtl_sources() -> list[Path]:
    """The SystemVerilog sources of the unit."""
    return [HDL_DIR / f"{MODULE}.sv"]


@dataclass(frozen=True)
class BipolarMvauShape:
    """Size, input type and folding of one unit."""

    mw: int
    mh: int
    pe: int
    simd: int
    in_bits: int
    in_signed: bool
    n_thres: int = 0
    out_bits: int = 0  # 0: the accumulator width
    act_bias: int = 0

    def __post_init__(self) -> None:
        if self.mw % self.simd or self.mh % self.pe:
            raise ValueError(f"folding must divide the matrix: MW={self.mw} % SIMD={self.simd}"
                             f", MH={self.mh} % PE={self.pe}")
        if self.in_bits < 1 or (self.in_signed and self.in_bits < 2):
            raise ValueError(f"inputs of {self.in_bits} bit(s), signed={self.in_signed}: "
                             "need >= 1 bit (>= 2 when signed)")

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def x_range(self) -> tuple[int, int]:
        """Smallest and largest input value."""
        if self.in_signed:
            return -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        return 0, (1 << self.in_bits) - 1

    @property
    def bound(self) -> int:
        """``|acc| <= bound`` for every input and weight: MW · max |x|."""
        lo, hi = self.x_range
        return self.mw * max(-lo, hi)

    @property
    def acc_bits(self) -> int:
        """Signed width of the accumulator and of each threshold: holds ``-bound .. bound+1``."""
        return (self.bound + 1).bit_length() + 1

    @property
    def obits(self) -> int:
        return self.out_bits or self.acc_bits

    @property
    def in_width(self) -> int:
        return pad8(self.simd * self.in_bits)

    @property
    def out_width(self) -> int:
        return pad8(self.pe * self.obits)

    def params(self, weight_file: Path, thres_file: Path | None,
               ram_style: str = "auto") -> dict[str, str]:
        """Verilog parameter overrides for an instance."""
        p = {"MW": self.mw, "MH": self.mh, "PE": self.pe, "SIMD": self.simd,
             "IN_BITS": self.in_bits, "IN_SIGNED": int(self.in_signed),
             "ACC_BITS": self.acc_bits, "N_THRES": self.n_thres, "OUT_BITS": self.obits,
             "ACT_BIAS": self.act_bias, "IN_WIDTH": self.in_width, "OUT_WIDTH": self.out_width}
        out = {k: str(v) for k, v in p.items()}
        out["WEIGHT_FILE"] = f'"{weight_file}"'
        out["THRES_FILE"] = f'"{thres_file}"' if thres_file else '""'
        out["RAM_STYLE"] = f'"{ram_style}"'
        return out


def is_bipolar(weights: np.ndarray | None) -> bool:
    """Whether a weight matrix is all ±1 (FINN's BIPOLAR values, whatever its annotation)."""
    return weights is not None and np.size(weights) > 0 and bool(np.isin(weights, (-1, 1)).all())


def weight_bits(w: np.ndarray) -> np.ndarray:
    """±1 weights as the bits the unit stores: +1 → 1, −1 → 0 (raises on any other value)."""
    w = np.asarray(w)
    if not np.isin(w, (-1, 1)).all():
        raise ValueError("bipolar MVAU weights must all be -1 or +1")
    return (w > 0).astype(np.int64)


def weight_words(w: np.ndarray, shape: BipolarMvauShape) -> list[int]:
    """Weight memory: ``w`` is (MW, MH) of ±1; word ``f*SF + s`` holds, at bit ``p*SIMD+i``,
    1 where the weight of input ``s*SIMD + i`` for output channel ``f*PE + p`` is +1."""
    bits = weight_bits(w)
    if bits.shape != (shape.mw, shape.mh):
        raise ValueError(f"weights must have shape {(shape.mw, shape.mh)}, got {bits.shape}")
    # (SF, SIMD, NF, PE) -> (NF, SF, PE, SIMD): bit order inside a word is p*SIMD + i
    blocks = bits.reshape(shape.sf, shape.simd, shape.nf, shape.pe).transpose(2, 0, 3, 1)
    flat = blocks.reshape(shape.nf * shape.sf, shape.pe * shape.simd)
    return [int(sum(1 << i for i, b in enumerate(row) if b)) for row in flat]


def clip_thresholds(thr: np.ndarray, bound: int) -> np.ndarray:
    """Integer thresholds equivalent on an accumulator in ``-bound .. bound``: ``acc >= t`` ⇔
    ``acc >= ceil(t)``; at or below ``-bound`` it always holds, above ``bound`` never."""
    return np.clip(np.ceil(np.asarray(thr, dtype=np.float64)), -bound, bound + 1).astype(np.int64)


def threshold_words(thr: np.ndarray, shape: BipolarMvauShape) -> list[int]:
    """Threshold memory: ``thr`` is (MH, N_THRES) or (1, N_THRES); word ``f`` holds field
    ``p*N_THRES + t`` = threshold ``t`` of channel ``f*PE + p``, each ``acc_bits`` wide, in
    two's complement."""
    thr = np.asarray(thr)
    if thr.ndim != 2 or thr.shape[1] != shape.n_thres or thr.shape[0] not in (1, shape.mh):
        raise ValueError(f"thresholds must have shape ({shape.mh} or 1, {shape.n_thres}), "
                         f"got {thr.shape}")
    t = np.broadcast_to(clip_thresholds(thr, shape.bound), (shape.mh, shape.n_thres))
    tb = shape.acc_bits
    mask = (1 << tb) - 1
    words = []
    for f in range(shape.nf):
        fields = t[f * shape.pe:(f + 1) * shape.pe].reshape(-1)
        words.append(sum((int(v) & mask) << (k * tb) for k, v in enumerate(fields)))
    return words


def reference(x: np.ndarray, w: np.ndarray, thr: np.ndarray | None,
              act_bias: int = 0) -> np.ndarray:
    """What the unit outputs: ``x`` (..., MW) integers and ``w`` (MW, MH) of ±1 → (..., MH)
    integers: ``x @ w``, or its threshold level ``act_bias + #{t : x @ w >= thr[t]}``."""
    x = np.asarray(x, dtype=np.int64)
    w = 2 * weight_bits(w) - 1
    acc = x @ w
    if thr is None:
        return acc
    return act_bias + (acc[..., :, None] >= np.asarray(thr)).sum(axis=-1)
