# SPDX-License-Identifier: BSD-3-Clause
"""The window max-pool unit (``hdl/bnn_maxpool.sv``): its parameters, its stream order and a
numpy model.

The unit consumes the stream of FINN's depthwise sliding window generator: per output pixel,
``C/PE`` channel folds of ``K`` consecutive words of ``PE`` elements (order ``(C/PE, K, PE)``),
and emits one word of ``PE`` lane-wise maxima per ``K`` words. FINN's Python model of ``Pool``
(and the value of its input tensor) uses the Im2Col order ``(K, C)`` instead; :func:`stream_order`
converts one into the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .unit import HDL_DIR, stream_order  # noqa: F401 (stream_order: part of this API)

MODULE = "bnn_maxpool"


def rtl_sources() -> list[Path]:
    """The SystemVerilog sources of the unit."""
    return [HDL_DIR / f"{MODULE}.sv"]


def params(pe: int, k: int, folds: int, elem_bits: int, signed: bool) -> dict[str, str]:
    """Verilog parameter overrides for an instance (stream widths padded to bytes)."""
    width = str((pe * elem_bits + 7) // 8 * 8)
    return {"PE": str(pe), "K": str(k), "NUM_FOLDS": str(folds), "ELEM_BITS": str(elem_bits),
            "SIGNED": str(int(bool(signed))), "IN_WIDTH": width, "OUT_WIDTH": width}


def reference(stream: np.ndarray, k: int, pe: int) -> np.ndarray:
    """What the unit outputs for a stream of words: ``stream`` (..., words*PE) in stream order
    → (..., words/K * PE), the maximum of each group of ``K`` consecutive words, lane by lane."""
    s = np.asarray(stream)
    lead = s.shape[:-1]
    return s.reshape(*lead, -1, k, pe).max(axis=-2).reshape(*lead, -1)
