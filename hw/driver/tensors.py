# SPDX-License-Identifier: BSD-3-Clause
"""Host side of the data path, from the metadata alone (no overlay, no pynq).

``pack_inputs``: validate shape/dtype/range, fold (``shape_normal`` -> ``shape_folded``, a
reshape in FINN's convention) and pack to ``(n, frame_bytes)`` uint8 rows.
``unpack_outputs``: the inverse for the output DMAs. Used by ``FinnAccelerator`` and by the
packing benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .dtypes import parse_dtype
from .errors import InputError
from .meta import AccelMeta, TensorSpec
from .packing import check_values, pack_rows, unpack_rows


def as_input_list(meta: AccelMeta, x: Any) -> list[Any]:
    """One array per accelerator input (a bare array is accepted for one-input designs)."""
    if len(meta.inputs) == 1 and not isinstance(x, (list, tuple)):
        return [x]
    if not isinstance(x, (list, tuple)) or len(x) != len(meta.inputs):
        raise InputError(f"expected {len(meta.inputs)} input arrays")
    return list(x)


def normalise(x: Any, spec: TensorSpec) -> np.ndarray:
    """``(N, *shape_normal[1:])`` (or one sample without the batch dim) -> validated ints."""
    x = np.asarray(x)
    want = spec.shape_normal[1:]
    if x.shape == want:
        x = x[None]
    if x.ndim != len(want) + 1 or x.shape[1:] != want or x.shape[0] == 0:
        raise InputError(f"input {spec.name} has shape {x.shape}; expected (N, "
                         f"{', '.join(map(str, want))}) or one sample of shape {want}")
    return check_values(x, spec.dtype, what=f"input {spec.name}")


def quantize_input(meta: AccelMeta, x: Any) -> np.ndarray:
    """The model's float inputs ``x`` as the accelerator's input codes, by the metadata's
    ``input_quant`` (the same arithmetic as the flow's ``InputSpec.quantize``, which a test
    keeps equal): ``clip(round(x / scale + zero_point))``, or for a bipolar input the bit
    ``x ≥ 0``."""
    q = meta.input_quant
    if q is None:
        raise InputError("the metadata has no input_quant (built before it was recorded): "
                         "pass the accelerator's input codes, not floats")
    v = np.asarray(x, dtype=np.float64)
    if q["bipolar"]:
        return (v >= 0).astype(np.float32)
    if q["datatype"] == "BIPOLAR":
        return np.where(v >= 0, 1.0, -1.0).astype(np.float32)
    dt = parse_dtype(q["datatype"])
    codes = np.round(v / q["scale"] + q["zero_point"])
    return np.clip(codes, dt.min, dt.max).astype(np.float32)


def pack_inputs(meta: AccelMeta, x: Any) -> list[np.ndarray]:
    """Validate, fold and pack -> one ``(n, frame_bytes)`` uint8 array per input."""
    out = []
    for spec, xi in zip(meta.inputs, as_input_list(meta, x)):
        v = normalise(xi, spec)
        folded = v.reshape(v.shape[0], *spec.shape_folded[1:])
        out.append(pack_rows(folded, spec.dtype).reshape(v.shape[0], spec.frame_bytes))
    if len({p.shape[0] for p in out}) != 1:
        raise InputError("all inputs must have the same batch size")
    return out


def unpack_outputs(meta: AccelMeta, raw: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Unpack + unfold ``(n, frame_bytes)`` rows into integer arrays of ``shape_normal``."""
    out = []
    for spec, r in zip(meta.outputs, raw):
        n = r.shape[0]
        vals = unpack_rows(r.reshape(n, *spec.shape_packed[1:]), spec.dtype, spec.shape_folded[-1])
        out.append(vals.reshape(n, *spec.shape_normal[1:]))
    return out
