"""FixXnorAccumulator: XNOR MVAU thresholds survive FINN's accumulator minimization."""

from __future__ import annotations

import numpy as np
from onnx import helper

from tests.flows.graphs import make_model, run


def _xnor_mvau():
    w = np.zeros((16, 2))
    w[:8, 0] = 1  # 8 and 12 ones: FINN sizes Σ(2w-1)·x ∈ -8..12 as INT5 (max 15), while
    w[:12, 1] = 1  # the popcount reaches 16, so a clip to 15 + 1 moves the threshold 17
    t = np.array([[3.0, 17.0, 17.0], [1.0, 16.0, 17.0]])
    node = helper.make_node(
        "MVAU", ["x", "w", "t"], ["y"], domain="finn.custom_op.fpgadataflow", name="MVAU_0",
        backend="fpgadataflow", MW=16, MH=2, PE=1, SIMD=1, inputDataType="BINARY",
        weightDataType="BINARY", outputDataType="UINT2", accDataType="INT32",
        binaryXnorMode=1, noActivation=0, ActVal=0, numInputVectors=[1, 1, 1])
    return make_model([node], [("x", (1, 1, 1, 16))], [("y", (1, 1, 1, 2))],
                      {"w": w, "t": t}, {"x": "BINARY", "w": "BINARY", "y": "UINT2"})


def test_thresholds_keep_their_meaning():
    from finn.transformation.fpgadataflow.minimize_accumulator_width import (
        MinimizeAccumulatorWidth,
    )
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.custom_op.registry import getCustomOp

    from flows.transforms.xnor_acc import FixXnorAccumulator

    model = _xnor_mvau()
    x = model.get_initializer("w")[:, 1].reshape(1, 1, 1, 16)
    before = run(model, x)  # popcounts 12 and 16: levels 1 (3 ≤ 12) and 2 (1, 16 ≤ 16 < 17)
    assert before.ravel().tolist() == [1.0, 2.0]
    fixed = model.transform(MinimizeAccumulatorWidth()).transform(FixXnorAccumulator())
    fixed = fixed.transform(RoundAndClipThresholds())
    assert getCustomOp(fixed.graph.node[0]).get_nodeattr("accDataType") == "UINT5"
    assert fixed.get_initializer("t")[1].tolist() == [1.0, 16.0, 17.0]  # 17 = MW + 1 kept
    assert np.array_equal(run(fixed, x), before)
