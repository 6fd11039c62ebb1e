# SPDX-License-Identifier: BSD-3-Clause
"""``mvu_rtl_possible`` agrees with finn-plus's private ``_mvu_rtl_possible`` (which it mirrors).

If this fails after a finn-plus upgrade, FINN's rule for choosing MVAU_rtl changed: update
``flows.transforms.split_thresholds.mvu_rtl_possible`` to match it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.names import HW_DOMAIN
from flows.transforms.split_thresholds import mvu_rtl_possible

specialize_layers = pytest.importorskip("finn.transformation.fpgadataflow.specialize_layers")

#: a DSP48E2 (UltraScale+), a DSP48E1 (7-series) and a DSP58 (Versal) part
PARTS = ("xczu7ev-ffvc1156-2-e", "xc7z020clg400-1", "xcvc1902-vsva2197-2MP-e-S")
MW, MH = 4, 2


def _mvau(no_act: int, xnor: int, idt: str, wdt: str, odt: str, weights: str):
    """An MVAU node and a model holding its weights: full-range, narrow-range or none."""
    node = helper.make_node(
        "MVAU", ["x", "w"], ["y"], domain=HW_DOMAIN, name="MVAU_0", backend="fpgadataflow",
        MW=MW, MH=MH, PE=1, SIMD=1, inputDataType=idt, weightDataType=wdt, outputDataType=odt,
        binaryXnorMode=xnor, noActivation=no_act, numInputVectors=[1])
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    graph = helper.make_graph([node], "g", [vi("x", [1, MW])], [vi("y", [1, MH])])
    model = ModelWrapper(qonnx_make_model(graph))
    dt = DataType[wdt]
    if weights != "none":
        lo = dt.min() if weights == "full" else dt.min() + 1
        w = np.full((MW, MH), dt.max(), dtype=np.float32)
        w[0, 0] = lo
        model.set_initializer("w", w)
    return model, model.graph.node[0]


def test_agrees_with_finn():
    grid = itertools.product(
        (0, 1), (0, 1), ("INT4", "UINT4", "BINARY", "INT18", "UINT17", "UINT18", "INT25"),
        ("INT2", "INT4", "UINT4", "BIPOLAR", "INT26", "INT28"), ("INT16", "INT48", "INT50"),
        ("full", "narrow", "none"))
    outcomes = set()
    for no_act, xnor, idt, wdt, odt, weights in grid:
        model, node = _mvau(no_act, xnor, idt, wdt, odt, weights)
        for part in PARTS:
            ours = mvu_rtl_possible(node, part, model)
            finn = bool(specialize_layers._mvu_rtl_possible(node, part, model))
            assert ours == finn, (no_act, xnor, idt, wdt, odt, weights, part)
            outcomes.add(ours)
    assert outcomes == {True, False}
