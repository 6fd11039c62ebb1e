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


def _bipolar_mvau(n_thres=3, wdt="BIPOLAR", seed=0):
    rng = np.random.default_rng(seed)
    inputs = ["x", "w"] + (["t"] if n_thres else [])
    node = helper.make_node(
        "MVAU", inputs, ["y"], domain=HW, name="MVAU_0", backend="fpgadataflow",
        MW=8, MH=4, PE=1, SIMD=1, inputDataType="INT2", weightDataType=wdt,
        outputDataType="INT2" if n_thres else "INT8", accDataType="INT8", binaryXnorMode=0,
        noActivation=0 if n_thres else 1, ActVal=-2 if n_thres else 0, numInputVectors=[1])
    inits = {"w": rng.choice([-1, 1], (8, 4))}
    if n_thres:
        inits["t"] = np.sort(rng.integers(-10, 10, (4, n_thres)), axis=1)
    return make_model([node], [("x", (1, 8))], [("y", (1, 4))], inits,
                      {"x": "INT2", "w": wdt, "y": "INT2" if n_thres else "INT8"})


def test_bipolar_weight_mvau_keeps_its_thresholds():
    # ±1 weights go to BipolarMVAU_rtl (LUTs), not to MVAU_rtl with INT2 weights (DSPs)
    for wdt in ("BIPOLAR", "INT2"):  # the annotation, or the values after MinimizeWeightBitWidth
        model = _bipolar_mvau(wdt=wdt)
        split = model.transform(SplitMVAUThresholds("rtl", "xczu7ev-ffvc1156-2-e"))
        assert [n.op_type for n in split.graph.node] == ["MVAU"]
    x = ints((1, 8), -2, 1, seed=2)
    model = _bipolar_mvau()
    split = model.transform(SplitMVAUThresholds("rtl", bipolar=True))  # the old DSP way
    assert [n.op_type for n in split.graph.node] == ["MVAU", "Thresholding"]
    assert split.get_tensor_datatype("w").name == "INT2"
    assert np.array_equal(run(split, x), run(model, x))


def test_mvau_without_thresholds_prefers_rtl_where_finn_allows():
    from qonnx.custom_op.registry import getCustomOp

    model = _mvau()
    getCustomOp(model.graph.node[0]).set_nodeattr("noActivation", 1)
    model.graph.node[0].input.pop()  # no threshold input
    out = model.transform(SplitMVAUThresholds("rtl", "xczu7ev-ffvc1156-2-e"))
    inst = getCustomOp(out.graph.node[0])
    assert [n.op_type for n in out.graph.node] == ["MVAU"]
    assert inst.get_nodeattr("preferred_impl_style") == "rtl"
    bip = _bipolar_mvau(n_thres=0).transform(SplitMVAUThresholds("rtl", "xczu7ev-ffvc1156-2-e"))
    assert getCustomOp(bip.graph.node[0]).get_nodeattr("preferred_impl_style") != "rtl"
