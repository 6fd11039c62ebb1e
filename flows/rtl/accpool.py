# SPDX-License-Identifier: BSD-3-Clause
"""The accumulating pools (``hdl/bnn_accpool.sv``, ``hdl/bnn_avgpool.sv``): their parameters,
stream order and numpy models.

* ``bnn_global_accpool`` (FINN's ``GlobalAccPool``): per-channel sum over all ``H*W`` pixels of
  a frame; FINN's stream order ``(N, H, W, C/PE, PE)`` in, ``(N, 1, 1, C/PE, PE)`` out.
* ``bnn_quant_avgpool`` (FINN's ``Pool`` with Function ``QuantAvgPool``): per-window sum of the
  ``K`` kernel positions, right-shifted (floor) by the shift FINN's Python model computes.
  Like finn-hlslib's ``Pool_batch`` it consumes the depthwise sliding window's stream, where an
  output pixel arrives as ``C/PE`` channel folds of ``K`` consecutive words of ``PE`` elements
  (order ``(C/PE, K, PE)``); FINN's ``get_folded_input_shape`` (and the value of the input
  tensor) use the Im2Col order ``(K, C)`` instead, :func:`stream_order` converts.

These functions define what the RTL computes independently of FINN; the FINN custom ops
(:mod:`flows.rtl.accpool_op`) and the tests use them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .unit import HDL_DIR, stream_order  # noqa: F401 (stream_order: part of this API)

ACC_MODULE = "bnn_global_accpool"
AVG_MODULE = "bnn_quant_avgpool"
_FILES = {ACC_MODULE: "bnn_accpool.sv", AVG_MODULE: "bnn_avgpool.sv"}


def rtl_sources(module: str) -> list[Path]:
    """The SystemVerilog sources of ``module`` (ACC_MODULE or AVG_MODULE)."""
    return [HDL_DIR / _FILES[module]]


def quant_avgpool_shift(in_bits: int, out_bits: int, k: int) -> int:
    """FINN's QuantAvgPool shift: bit length of ``(2**in_bits - 1) * k`` minus ``out_bits``,
    at least 0 (the same for signed and unsigned inputs)."""
    return max(0, int((2 ** in_bits - 1) * k).bit_length() - out_bits)


def int_bits(lo: int, hi: int, signed: bool) -> int:
    """Width of the smallest two's complement (``signed``) or unsigned word holding lo .. hi."""
    if not signed:
        if lo < 0:
            raise ValueError(f"range {lo} .. {hi} is not unsigned")
        return max(1, int(hi).bit_length())
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def avgpool_params(pe: int, k: int, folds: int, in_bits: int, in_lo: int, in_hi: int,
                   signed: bool, out_bits: int) -> dict[str, str]:
    """Verilog parameters of a ``bnn_quant_avgpool`` for inputs in ``in_lo .. in_hi``."""
    acc = max(int_bits(k * in_lo, k * in_hi, signed), in_bits, out_bits)
    p = {"PE": pe, "K": k, "NUM_FOLDS": folds, "IN_BITS": in_bits, "SIGNED": int(signed),
         "ACC_BITS": acc, "SHIFT": quant_avgpool_shift(in_bits, out_bits, k),
         "OUT_BITS": out_bits}
    return {key: str(v) for key, v in p.items()}


def accpool_params(pe: int, folds: int, pixels: int, in_bits: int, signed: bool,
                   out_bits: int) -> dict[str, str]:
    """Verilog parameters of a ``bnn_global_accpool``."""
    p = {"PE": pe, "NUM_FOLDS": folds, "NUM_PIX": pixels, "IN_BITS": in_bits,
         "SIGNED": int(signed), "OUT_BITS": out_bits}
    return {key: str(v) for key, v in p.items()}


def reference_avgpool(stream: np.ndarray, k: int, pe: int, shift: int) -> np.ndarray:
    """What ``bnn_quant_avgpool`` outputs for ``stream`` (..., words*PE) in stream order:
    (..., words/K*PE), each element the floor of the window sum divided by ``2**shift``."""
    s = np.asarray(stream).astype(np.int64)
    lead, n = s.shape[:-1], s.shape[-1]
    win = s.reshape(*lead, n // (k * pe), k, pe).sum(axis=-2)
    return (win >> shift).reshape(*lead, n // k)


def reference_accpool(x: np.ndarray) -> np.ndarray:
    """What ``bnn_global_accpool`` outputs for frames ``x`` (N, H, W, C): (N, 1, 1, C) sums."""
    return np.asarray(x).astype(np.int64).sum(axis=(1, 2), keepdims=True)
