# SPDX-License-Identifier: BSD-3-Clause
"""Accelerator models behind the emulator: functions from packed bytes to packed bytes.

A model is any callable ``model(inputs) -> outputs`` where ``inputs`` holds one
``(n, frame_bytes)`` uint8 array per accelerator input (exactly the bytes the driver put in
DDR at the programmed DMA address) and ``outputs`` one such array per output.

* :class:`ReferenceModel` wraps an integer function (fast; used by the tests);
* :class:`OnnxModel` executes the HW-layer ONNX graph the compiler writes with
  ``finn.core.onnx_exec.execute_onnx`` (one sample at a time, FINN's convention);
* :class:`ReplayModel` answers the golden inputs with the golden outputs: it checks nothing
  (the CLI uses it for ``profile`` only, never to verify or run).

Each model's ``label`` says what it is, for the CLI's output and the profile report.

Bytes are decoded and encoded by a :class:`Codec`. The default is :class:`FinnCodec`, FINN's
own ``finn.util.data_packing``, so that the emulator checks the driver's numpy packing against
an independent implementation end to end; :class:`NumpyCodec` (the driver's packing) is the
fallback where FINN is not installed. finn/qonnx are imported lazily: this runs off-board only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..meta import AccelMeta, TensorSpec
from ..packing import check_values, pack_rows, unpack_rows
from .errors import SimModelError

log = logging.getLogger(__name__)


def _summary(e: BaseException) -> str:
    """``Type: first line of the message``."""
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


class AcceleratorModel(Protocol):
    """``(n, frame_bytes)`` uint8 arrays in, one per input -> one per output."""

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class Codec:
    """Packed rows <-> integer tensors of ``shape_normal`` (batch first)."""

    name = "abstract"

    def unpack(self, rows: np.ndarray, spec: TensorSpec) -> np.ndarray:
        raise NotImplementedError

    def pack(self, values: np.ndarray, spec: TensorSpec) -> np.ndarray:
        raise NotImplementedError


class NumpyCodec(Codec):
    """The driver's own packing (not independent of the code under test)."""

    name = "numpy (hw.driver.packing)"

    def unpack(self, rows: np.ndarray, spec: TensorSpec) -> np.ndarray:
        n = rows.shape[0]
        v = unpack_rows(rows.reshape(n, *spec.shape_packed[1:]), spec.dtype, spec.shape_folded[-1])
        return v.reshape(n, *spec.shape_normal[1:]).astype(np.int64)

    def pack(self, values: np.ndarray, spec: TensorSpec) -> np.ndarray:
        n = values.shape[0]
        rows = pack_rows(values.reshape(n, *spec.shape_folded[1:]), spec.dtype)
        return rows.reshape(n, spec.frame_bytes)


class FinnCodec(Codec):
    """FINN's ``finnpy_to_packed_bytearray``/``packed_bytearray_to_finnpy`` (driver flags)."""

    name = "finn.util.data_packing"

    def __init__(self) -> None:
        from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
        from qonnx.core.datatype import DataType

        self._pack, self._unpack, self._dt = (finnpy_to_packed_bytearray,
                                              packed_bytearray_to_finnpy, DataType)

    def unpack(self, rows: np.ndarray, spec: TensorSpec) -> np.ndarray:
        n = rows.shape[0]
        v = self._unpack(np.ascontiguousarray(rows.reshape(n, *spec.shape_packed[1:])),
                         self._dt[spec.dtype.name], (n, *spec.shape_folded[1:]),
                         reverse_inner=True, reverse_endian=True)
        return np.rint(v).astype(np.int64).reshape(n, *spec.shape_normal[1:])

    def pack(self, values: np.ndarray, spec: TensorSpec) -> np.ndarray:
        n, dt = values.shape[0], spec.dtype
        v = values.reshape(n, *spec.shape_folded[1:])
        if dt.bits in (8, 16, 32, 64) and not dt.bipolar:  # FINN's exact integer-container path
            v = v.astype(f"{'i' if dt.signed else 'u'}{dt.bits // 8}")
        else:
            v = v.astype(np.float32)
        rows = self._pack(v, self._dt[dt.name], reverse_inner=True, reverse_endian=True)
        return np.ascontiguousarray(rows).reshape(n, spec.frame_bytes)


def default_codec() -> Codec:
    """FINN's packing when importable, else the driver's (with a warning)."""
    try:
        return FinnCodec()
    except ImportError as e:
        log.warning("FINN not importable (%s): the emulator decodes with the driver's own "
                    "packing, so packing bugs would cancel out", e)
        return NumpyCodec()


class _IntegerModel:
    """Shared decode -> integer function -> check -> encode."""

    def __init__(self, meta: AccelMeta, codec: Codec | None) -> None:
        self.meta, self.codec = meta, codec or default_codec()

    def _encode(self, outs: Any, n: int) -> list[np.ndarray]:
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if len(outs) != len(self.meta.outputs):
            raise SimModelError(f"model returned {len(outs)} outputs, metadata has "
                                f"{len(self.meta.outputs)}")
        packed = []
        for spec, y in zip(self.meta.outputs, outs):
            y = np.asarray(y)
            want = (n, *spec.shape_normal[1:])
            if y.shape != want and y.size == int(np.prod(want)):
                y = y.reshape(want)
            if y.shape != want:
                raise SimModelError(f"model output {spec.name} has shape {y.shape}, "
                                    f"expected {want}")
            try:
                y = check_values(y, spec.dtype, what=f"model output {spec.name}")
            except ValueError as e:
                raise SimModelError(str(e)) from None
            packed.append(self.codec.pack(y, spec))
        return packed


class ReferenceModel(_IntegerModel):
    """An integer reference ``fn(*inputs) -> output(s)`` on ``shape_normal`` tensors."""

    label = "integer reference function"

    def __init__(self, meta: AccelMeta, fn: Callable[..., Any], codec: Codec | None = None):
        super().__init__(meta, codec)
        self.fn = fn

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        xs = [self.codec.unpack(r, s) for r, s in zip(inputs, self.meta.inputs)]
        return self._encode(self.fn(*xs), inputs[0].shape[0])


class OnnxModel(_IntegerModel):
    """The HW-layer ONNX graph (``files.hw_onnx``) through FINN's ``execute_onnx``."""

    label = "the HW-layer ONNX graph through FINN's execute_onnx"

    def __init__(self, meta: AccelMeta, path: str | Path, codec: Codec | None = None):
        super().__init__(meta, codec)
        from finn.core.onnx_exec import execute_onnx
        from qonnx.core.modelwrapper import ModelWrapper

        self._exec, self.path = execute_onnx, Path(path)
        try:
            self.model = ModelWrapper(str(path))
            self.model.graph.input[0], self.model.graph.output[0]  # noqa: B018 (must exist)
        except Exception as e:  # noqa: BLE001 (protobuf/onnx raise many types for a bad file)
            raise SimModelError(f"cannot read {path} as an ONNX model ({_summary(e)}); "
                                "rebuild the bundle") from None
        graph_ins = [t.name for t in self.model.graph.input]
        graph_outs = [t.name for t in self.model.graph.output]
        # FINN deploy folders name no tensors (finn_compat.py): matching by position is expected
        level = logging.INFO if "finn" in meta.raw else logging.WARNING
        self.in_names = self._match(graph_ins, [s.name for s in meta.inputs], "input", level)
        self.out_names = self._match(graph_outs, [s.name for s in meta.outputs], "output", level)

    @staticmethod
    def _match(graph: list[str], meta: list[str], kind: str,
               level: int = logging.WARNING) -> list[str]:
        if graph == meta or set(meta) <= set(graph):
            return meta
        if len(graph) == len(meta) == 1:
            log.log(level, "ONNX %s %r used for metadata %s %r", kind, graph[0], kind, meta[0])
            return graph
        raise SimModelError(f"ONNX graph {kind}s {graph} do not match the metadata's {meta}")

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        n = inputs[0].shape[0]
        xs = [self.codec.unpack(r, s).astype(np.float32) for r, s in zip(inputs, self.meta.inputs)]
        per_out: list[list[np.ndarray]] = [[] for _ in self.out_names]
        for i in range(n):
            ctx = {name: x[i:i + 1] for name, x in zip(self.in_names, xs)}
            try:
                res = self._exec(self.model, ctx)
            except Exception as e:  # noqa: BLE001 (any failure of the graph is the bundle's)
                raise SimModelError(f"FINN cannot execute {self.path.name}: {_summary(e)}") \
                    from None
            for j, name in enumerate(self.out_names):
                per_out[j].append(np.asarray(res[name]))
        outs = [np.concatenate(p).reshape(n, *s.shape_normal[1:])
                for p, s in zip(per_out, self.meta.outputs)]
        return self._encode(outs, n)


class ReplayModel:
    """Golden input rows -> golden output rows; any other input is an error. It checks
    nothing (its outputs are the golden file), so it may only drive profiling."""

    label = ("golden replay: answers the golden inputs with the golden outputs; it drives "
             "profiling only and checks nothing")

    def __init__(self, meta: AccelMeta, golden_in: np.ndarray, golden_out: np.ndarray,
                 codec: Codec | None = None) -> None:
        self.codec = codec = codec or default_codec()
        if len(meta.inputs) != 1 or len(meta.outputs) != 1:
            raise SimModelError("ReplayModel supports one input and one output")
        si, so = meta.inputs[0], meta.outputs[0]
        gi = np.asarray(golden_in).reshape(-1, *si.shape_normal[1:])
        go = np.asarray(golden_out).reshape(-1, *so.shape_normal[1:])
        if gi.shape[0] != go.shape[0]:
            raise SimModelError(f"golden input has {gi.shape[0]} samples, output {go.shape[0]}")
        pi = codec.pack(check_values(gi, si.dtype, "golden input"), si)
        po = codec.pack(check_values(go, so.dtype, "golden output"), so)
        self.table = {a.tobytes(): b for a, b in zip(pi, po)}
        self.inputs = gi

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        rows = []
        for row in inputs[0]:
            hit = self.table.get(row.tobytes())
            if hit is None:
                raise SimModelError("ReplayModel only knows the golden inputs; use an ONNX or "
                                    "reference model for other data")
            rows.append(hit)
        return [np.stack(rows)]
