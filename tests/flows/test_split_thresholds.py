"""SplitMVAUThresholds: an MVAU with thresholds becomes MVAU(noActivation) + Thresholding."""

from __future__ import annotations

import numpy as np
from onnx import helper

from flows.transforms.split_thresholds import SplitMVAUThresholds
from tests.flows.graphs import ints, make_model, run

HW = "finn.custom_op.fpgadataflow"


def _mvau(idt="INT4", wdt="INT4", xnor=0, seed=0):
    rng = np.random.default_rng(seed)
    node = helper.make_node(
        "MVAU", ["x", "w", "t"], ["y"], domain=HW, name="MVAU_0", backend="fpgadataflow",
        MW=8, MH=4, PE=1, SIMD=1, inputDataType=idt, weightDataType=wdt, outputDataType="INT2",
        accDataType="INT32", binaryXnorMode=xnor, noActivation=0, ActVal=-2,
        numInputVectors=[1, 3, 3])
    w = rng.integers(-8, 8, (8, 4)) if wdt == "INT4" else rng.integers(0, 2, (8, 4))
    t = np.sort(rng.integers(-60, 60, (4, 3)), axis=1)
    return make_model([node], [("x", (1, 3, 3, 8))], [("y", (1, 3, 3, 4))], {"w": w, "t": t},
                      {"x": idt, "w": wdt, "t": "INT32", "y": "INT2"})


def test_split_is_exact_and_typed():
    model = _mvau()
    x = ints((1, 3, 3, 8), -8, 7, seed=1)
    before = run(model, x)
    split = model.transform(SplitMVAUThresholds("rtl"))
    kinds = [(n.op_type, n.name) for n in split.graph.node]
    assert kinds == [("MVAU", "MVAU_0"), ("Thresholding", "Thresholding_MVAU_0")]
    from qonnx.custom_op.registry import getCustomOp

    mv, th = (getCustomOp(n) for n in split.graph.node)
    assert mv.get_nodeattr("noActivation") == 1
    # the narrowest signed type holding every accumulator value these weights can produce
    w = model.get_initializer("w")
    hi = np.maximum(w * -8, w * 7).sum(0).max()
    lo = np.minimum(w * -8, w * 7).sum(0).min()
    bits = int(split.get_tensor_datatype(split.graph.node[0].output[0]).name[3:])
    assert -(2 ** (bits - 1)) <= lo and hi < 2 ** (bits - 1)
    assert not (-(2 ** (bits - 2)) <= lo and hi < 2 ** (bits - 2))
    assert (th.get_nodeattr("ActVal"), th.get_nodeattr("numSteps")) == (-2, 3)
    assert np.array_equal(run(split, x), before)


def test_binary_xnor_mvau_keeps_its_thresholds():
    model = _mvau(idt="BINARY", wdt="BINARY", xnor=1)
    assert [n.op_type for n in model.transform(SplitMVAUThresholds()).graph.node] == ["MVAU"]
