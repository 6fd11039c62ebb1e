# SPDX-License-Identifier: BSD-3-Clause
"""One tiny graph per graph rewrite in flows/transforms/: executed before and after."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from flows.transforms.affine import AffineStreamline, StreamlineError
from flows.transforms.graph_io import (
    InferGlobalSum,
    NarrowIntegerDatatypes,
    RemoveIdentityThresholds,
)
from flows.transforms.layout import BinaryIm2ColPadValue, BipolarMatMulToXnorPopcount, \
    LayoutError, ToChannelsLast

from .graphs import ints, make_model, mt, run

SHAPE = (1, 2, 4, 4)


def _ops(model):
    return [n.op_type for n in model.graph.node]


def test_affine_absorbs_scale_bias_and_batchnorm_into_thresholds():
    nodes = [
        helper.make_node("Mul", ["x", "s"], ["a"]),
        helper.make_node("Add", ["a", "b"], ["c"]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["d"]),
        mt("d", "t", "y", "INT2", out_bias=-2.0),
    ]
    model = make_model(nodes, [("x", SHAPE)], [("y", SHAPE)], inits={
        "s": 0.5, "b": np.array([0.25, -1.0]).reshape(1, 2, 1, 1),
        "g": [2.0, 0.5], "be": [0.1, -0.2], "m": [0.0, 1.0], "v": [1.0, 4.0],
        "t": [[-1.0, 0.0, 1.5]]}, dtypes={"x": "INT4"})
    x = ints(SHAPE, -8, 7)
    out = model.transform(AffineStreamline())
    assert _ops(out) == ["MultiThreshold"]
    assert np.array_equal(run(model, x), run(out, x))


def test_affine_flips_negative_batchnorm_channels_into_the_conv_weights():
    w = np.where(np.random.default_rng(1).random((2, 2, 3, 3)) > 0.5, 1.0, -1.0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["d"]),
        mt("d", "t", "y", "UINT2"),
    ]
    model = make_model(nodes, [("x", SHAPE)], [("y", SHAPE)], inits={
        "w": w, "g": [-1.5, 0.7], "be": [0.3, 0.1], "m": [0.5, -2.0], "v": [2.0, 1.0],
        "t": [[-2.0, 0.0, 2.0]]}, dtypes={"x": "BIPOLAR", "w": "BIPOLAR"})
    x = np.where(ints(SHAPE, 0, 1, seed=3) > 0, 1.0, -1.0).astype(np.float32)
    out = model.transform(AffineStreamline())
    assert _ops(out) == ["Conv", "MultiThreshold"]
    w_new = out.get_initializer(out.graph.node[0].input[1])
    assert np.array_equal(w_new[0], -w[0]) and np.array_equal(w_new[1], w[1])
    assert out.get_tensor_datatype(out.graph.node[0].input[1]) == DataType["BIPOLAR"]
    assert np.array_equal(run(model, x), run(out, x))


def test_affine_join_of_different_scales_is_an_error_naming_the_node():
    nodes = [
        helper.make_node("Mul", ["x", "s1"], ["a"]),
        helper.make_node("Mul", ["x", "s2"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"], name="ResidualAdd"),
    ]
    model = make_model(nodes, [("x", SHAPE)], [("y", SHAPE)], inits={"s1": 0.5, "s2": 0.25},
                       dtypes={"x": "INT4"})
    with pytest.raises(StreamlineError, match=r"ResidualAdd \(Add\): adds tensors of different"):
        model.transform(AffineStreamline())


def test_affine_global_and_window_pools_become_integer_sums():
    nodes = [
        helper.make_node("Mul", ["x", "s"], ["a"]),
        helper.make_node("AveragePool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("ReduceMean", ["p"], ["g"], axes=[2, 3], keepdims=1),
        mt("g", "t", "y", "UINT3"),
    ]
    inits = {"s": 0.3, "t": [[-1.0, -0.5, 0.0, 0.2, 0.5, 1.0, 1.5]]}
    model = make_model(nodes, [("x", SHAPE)], [("y", (1, 2, 1, 1))], inits=inits,
                       dtypes={"x": "INT4"})
    out = model.transform(AffineStreamline())
    assert _ops(out) == ["QuantAvgPool2d", "ReduceSum", "MultiThreshold"]
    for seed in range(5):
        x = ints(SHAPE, -8, 7, seed)
        assert np.array_equal(run(model, x), run(out, x))


def _bipolar_conv_graph(pad_value: float):
    w = np.where(np.random.default_rng(2).random((3, 2, 3, 3)) > 0.5, 1.0, -1.0)
    nodes = [
        mt("x", "t0", "s", "BIPOLAR", out_scale=2.0, out_bias=-1.0),
        helper.make_node("Pad", ["s", "pads", "pv"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3]),
        mt("c", "t1", "y", "UINT2"),
    ]
    model = make_model(nodes, [("x", SHAPE)], [("y", (1, 3, 4, 4))], inits={
        "t0": [[0.0]], "pv": pad_value, "w": w, "t1": [[-3.0, 0.0, 3.0]]},
        dtypes={"x": "INT4", "w": "BIPOLAR"})
    model.set_initializer("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    return model.transform(InferShapes()).transform(InferDataTypes())


def test_channels_last_lowers_conv_and_folds_minus_one_padding_exactly():
    model = _bipolar_conv_graph(-1.0)
    out = model.transform(ToChannelsLast())
    assert _ops(out) == ["Transpose", "MultiThreshold", "Im2Col", "MatMul", "MultiThreshold",
                         "Transpose"]
    im2col = getCustomOp(out.get_nodes_by_op_type("Im2Col")[0])
    assert im2col.get_nodeattr("pad_amount") == [1, 1, 1, 1]
    assert im2col.get_nodeattr("pad_value") == -1
    for seed in range(3):
        x = ints(SHAPE, -8, 7, seed)
        assert np.array_equal(run(model, x), run(out, x))
    # XNOR conversion: the bipolar −1 pad becomes the binary 0 code, still exact
    out = out.transform(BipolarMatMulToXnorPopcount()).transform(BinaryIm2ColPadValue())
    assert "XnorPopcountMatMul" in _ops(out)
    assert getCustomOp(out.get_nodes_by_op_type("Im2Col")[0]).get_nodeattr("pad_value") == 0
    x = ints(SHAPE, -8, 7, 9)
    assert np.array_equal(run(model, x), run(out, x))


def test_zero_padding_of_bipolar_data_has_no_binary_code():
    out = _bipolar_conv_graph(0.0).transform(ToChannelsLast())
    out = out.transform(BipolarMatMulToXnorPopcount())
    with pytest.raises(LayoutError, match="binary_pad='minus_one'"):
        out.transform(BinaryIm2ColPadValue())


def test_channels_last_rejects_a_pad_that_feeds_no_conv():
    nodes = [helper.make_node("Pad", ["x", "pads", "pv"], ["y"], mode="constant", name="P")]
    model = make_model(nodes, [("x", SHAPE)], [("y", (1, 2, 6, 6))], inits={"pv": 0.0})
    model.set_initializer("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))
    with pytest.raises(LayoutError, match="P: a Pad must feed convolutions only"):
        model.transform(ToChannelsLast())


def test_xnor_conversion_handles_matmuls_sharing_one_bipolar_source():
    w1 = np.where(np.random.default_rng(4).random((6, 3)) > 0.5, 1.0, -1.0)
    w2 = -w1[:, ::-1]
    nodes = [
        mt("x", "t", "s", "BIPOLAR", layout="NC", out_scale=2.0, out_bias=-1.0),
        helper.make_node("MatMul", ["s", "w1"], ["a"]),
        helper.make_node("MatMul", ["s", "w2"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    model = make_model(nodes, [("x", (1, 6))], [("y", (1, 3))],
                       inits={"t": [[0.0]], "w1": w1, "w2": w2},
                       dtypes={"x": "INT4", "w1": "BIPOLAR", "w2": "BIPOLAR"},
                       value_info=[("s", (1, 6)), ("a", (1, 3)), ("b", (1, 3))])
    model.set_tensor_datatype("s", DataType["BIPOLAR"])
    out = model.transform(BipolarMatMulToXnorPopcount())
    assert _ops(out).count("XnorPopcountMatMul") == 2
    x = ints((1, 6), -8, 7, 1)
    assert np.array_equal(run(model, x), run(out, x))


def test_identity_thresholds_on_uint8_are_removed():
    steps = np.arange(1, 256, dtype=np.float32) - 0.5
    nodes = [mt("x", "t", "a", "UINT8"), mt("a", "t2", "y", "UINT2")]
    model = make_model(nodes, [("x", SHAPE)], [("y", SHAPE)],
                       inits={"t": steps[None, :], "t2": [[10.0, 100.0, 200.0]]},
                       dtypes={"x": "UINT8"})
    out = model.transform(RemoveIdentityThresholds())
    assert _ops(out) == ["MultiThreshold"]  # the identity is gone, the real one stays
    x = ints(SHAPE, 0, 255)
    assert np.array_equal(run(model, x), run(out, x))


def test_global_sum_becomes_global_acc_pool():
    nodes = [helper.make_node("ReduceSum", ["x"], ["y"], axes=[1, 2], keepdims=1)]
    model = make_model(nodes, [("x", (1, 4, 4, 3))], [("y", (1, 1, 1, 3))], dtypes={"x": "INT4"})
    out = model.transform(InferGlobalSum())
    assert _ops(out) == ["GlobalAccPool"]
    x = ints((1, 4, 4, 3), -8, 7)
    assert np.array_equal(run(model, x), run(out, x))


@pytest.mark.parametrize("op,dts,expected", [
    ("Add", ("INT4", "INT4"), "INT5"),
    ("Mul", ("INT4", "UINT4"), "INT8"),
    ("Mul", ("UINT4", "UINT4"), "UINT8"),
])
def test_integer_ranges_are_exact(op, dts, expected):
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])],
                       [("a", (1, 4)), ("b", (1, 4))], [("y", (1, 4))],
                       dtypes={"a": dts[0], "b": dts[1]})
    model.graph.input.append(model.graph.input[0])
    out = model.transform(NarrowIntegerDatatypes())
    assert out.get_tensor_datatype("y") == DataType[expected]


def test_quantized_prelu_becomes_per_channel_thresholds():
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    import flows.transforms.prelu_handler  # noqa: F401  (registers the handler)

    nodes = [
        helper.make_node("PRelu", ["x", "slope"], ["p"]),
        helper.make_node("Quant", ["p", "scale", "zp", "bits"], ["y"],
                         domain="qonnx.custom_op.general", signed=1, narrow=0,
                         rounding_mode="ROUND"),
    ]
    model = make_model(nodes, [("x", SHAPE)], [("y", SHAPE)], inits={
        "slope": np.array([0.2, 0.0]).reshape(2, 1, 1), "scale": 0.37, "zp": 0.0, "bits": 4.0})
    out = model.transform(ConvertQONNXtoFINN())
    assert "PRelu" not in _ops(out) and "MultiThreshold" in _ops(out)
    x = np.random.default_rng(0).normal(0, 2, SHAPE).astype(np.float32)
    assert np.allclose(run(model, x), run(out, x), atol=1e-6)


def test_negative_prelu_slope_is_rejected():
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    import flows.transforms.prelu_handler  # noqa: F401

    nodes = [
        helper.make_node("PRelu", ["x", "slope"], ["p"], name="Act"),
        helper.make_node("Quant", ["p", "scale", "zp", "bits"], ["y"],
                         domain="qonnx.custom_op.general", signed=1, narrow=0,
                         rounding_mode="ROUND"),
    ]
    model = make_model(nodes, [("x", SHAPE)], [("y", SHAPE)], inits={
        "slope": np.array([-0.2, 0.1]).reshape(2, 1, 1), "scale": 0.37, "zp": 0.0, "bits": 4.0})
    with pytest.raises(ValueError, match="Act: PRelu slopes must be ≥ 0"):
        model.transform(ConvertQONNXtoFINN())
