# SPDX-License-Identifier: BSD-3-Clause
"""Tiny inline ONNX graphs for the transformation tests (qonnx test style)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model


def make_model(nodes, inputs, outputs, inits=None, dtypes=None, value_info=()):
    """inputs/outputs/value_info: (name, shape); inits: {name: array}; dtypes: {name: str}."""
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s))  # noqa: E731
    graph = helper.make_graph(nodes, "g", [vi(*i) for i in inputs], [vi(*o) for o in outputs],
                              value_info=[vi(*v) for v in value_info])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="tests"))
    for name, value in (inits or {}).items():
        model.set_initializer(name, np.asarray(value, dtype=np.float32))
    for name, dt in (dtypes or {}).items():
        model.set_tensor_datatype(name, DataType[dt])
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    return model.transform(InferShapes()).transform(InferDataTypes())


def mt(inp: str, thr: str, out: str, out_dtype: str, layout: str = "NCHW", **attrs):
    return helper.make_node("MultiThreshold", [inp, thr], [out], domain="qonnx.custom_op.general",
                            out_dtype=out_dtype, data_layout=layout, **attrs)


def run(model: ModelWrapper, x: np.ndarray) -> np.ndarray:
    import finn.core.onnx_exec as oxe

    return oxe.execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]


def ints(shape, lo, hi, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi + 1, size=shape).astype(np.float32)


def needs_verilator(test):
    """Mark a test ``rtl`` and skip it where no Verilator binary is installed."""
    from flows.tools import find_verilator

    return pytest.mark.rtl(pytest.mark.skipif(find_verilator() is None,
                                              reason="Verilator not installed")(test))
