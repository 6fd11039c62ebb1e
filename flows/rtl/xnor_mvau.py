# SPDX-License-Identifier: BSD-3-Clause
"""The XNOR-popcount MVAU (``hdl/bnn_xnor_mvau.sv``): its memory images and a numpy model.

These functions are the single definition of what the RTL computes and how its memories are
laid out; the FINN custom op (:mod:`flows.rtl.xnor_mvau_op`) and the tests both use them, so
the RTL is checked against an independent model, not against itself.

Values are FINN's binaryXnorMode encoding: inputs and weights are 0/1 bits standing for -1/+1,
and a neuron computes the popcount of XNOR(x, w) over MW bits, optionally mapped through
``N_THRES`` thresholds to ``ACT_BIAS + #{t : popcount >= T[t]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .unit import HDL_DIR

MODULE = "bnn_xnor_mvau"


def rtl_sources() -> list[Path]:
    """The SystemVerilog sources of the unit."""
    return [HDL_DIR / f"{MODULE}.sv"]


def count_bits(mw: int) -> int:
    """Width of the popcount accumulator and of each threshold: holds 0 .. MW + 1."""
    return int(mw + 1).bit_length()


@dataclass(frozen=True)
class XnorMvauShape:
    """Size and folding of one unit."""

    mw: int
    mh: int
    pe: int
    simd: int
    n_thres: int = 0
    out_bits: int = 0  # 0: the popcount width
    act_bias: int = 0

    def __post_init__(self) -> None:
        if self.mw % self.simd or self.mh % self.pe:
            raise ValueError(f"folding must divide the matrix: MW={self.mw} % SIMD={self.simd}"
                             f", MH={self.mh} % PE={self.pe}")

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def obits(self) -> int:
        return self.out_bits or count_bits(self.mw)

    def params(self, weight_file: Path, thres_file: Path | None,
               ram_style: str = "auto") -> dict[str, str]:
        """Verilog parameter overrides for an instance."""
        p = {"MW": self.mw, "MH": self.mh, "PE": self.pe, "SIMD": self.simd,
             "N_THRES": self.n_thres, "OUT_BITS": self.obits, "ACT_BIAS": self.act_bias}
        out = {k: str(v) for k, v in p.items()}
        out["WEIGHT_FILE"] = f'"{weight_file}"'
        out["THRES_FILE"] = f'"{thres_file}"' if thres_file else '""'
        out["RAM_STYLE"] = f'"{ram_style}"'
        return out


def weight_words(w: np.ndarray, shape: XnorMvauShape) -> list[int]:
    """Weight memory: ``w`` is (MW, MH) of 0/1; word ``f*SF + s`` holds, at bit ``p*SIMD+i``,
    the weight of input ``s*SIMD + i`` for output channel ``f*PE + p``."""
    w = np.asarray(w, dtype=np.int64)
    if w.shape != (shape.mw, shape.mh) or not np.isin(w, (0, 1)).all():
        raise ValueError(f"weights must be a 0/1 matrix of shape {(shape.mw, shape.mh)}")
    # (SF, SIMD, NF, PE) -> (NF, SF, PE, SIMD): bit order inside a word is p*SIMD + i
    blocks = w.reshape(shape.sf, shape.simd, shape.nf, shape.pe).transpose(2, 0, 3, 1)
    flat = blocks.reshape(shape.nf * shape.sf, shape.pe * shape.simd)
    return [_bits_to_int(row) for row in flat]


def clip_thresholds(thr: np.ndarray, mw: int) -> np.ndarray:
    """Integer thresholds equivalent on a popcount in 0..MW: ``y >= t`` ⇔ ``y >= ceil(t)``,
    anything below 0 always holds and anything above MW never does."""
    return np.clip(np.ceil(np.asarray(thr, dtype=np.float64)), 0, mw + 1).astype(np.int64)


def threshold_words(thr: np.ndarray, shape: XnorMvauShape) -> list[int]:
    """Threshold memory: ``thr`` is (MH, N_THRES) or (1, N_THRES); word ``f`` holds field
    ``p*N_THRES + t`` = threshold ``t`` of channel ``f*PE + p``, each ``count_bits(MW)`` wide."""
    thr = np.asarray(thr)
    if thr.ndim != 2 or thr.shape[1] != shape.n_thres or thr.shape[0] not in (1, shape.mh):
        raise ValueError(f"thresholds must have shape ({shape.mh} or 1, {shape.n_thres}), "
                         f"got {thr.shape}")
    t = np.broadcast_to(clip_thresholds(thr, shape.mw), (shape.mh, shape.n_thres))
    tb = count_bits(shape.mw)
    words = []
    for f in range(shape.nf):
        fields = t[f * shape.pe:(f + 1) * shape.pe].reshape(-1)
        words.append(sum(int(v) << (k * tb) for k, v in enumerate(fields)))
    return words


def write_hex(path: Path, words: list[int], bits: int) -> Path:
    """A ``$readmemh`` file: one word per line, most significant digit first."""
    digits = max(1, (bits + 3) // 4)
    Path(path).write_text("".join(f"{w:0{digits}x}\n" for w in words))
    return Path(path)


def reference(x: np.ndarray, w: np.ndarray, thr: np.ndarray | None,
              act_bias: int = 0) -> np.ndarray:
    """What the unit outputs: ``x`` (..., MW) and ``w`` (MW, MH) of 0/1 → (..., MH) integers."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    pop = x @ w + (1 - x) @ (1 - w)  # number of positions where x == w
    if thr is None:
        return pop
    t = clip_thresholds(thr, w.shape[0])
    return act_bias + (pop[..., :, None] >= t).sum(axis=-1)


def _bits_to_int(bits: np.ndarray) -> int:
    return int(sum(1 << i for i, b in enumerate(bits) if b))
