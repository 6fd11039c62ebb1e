# SPDX-License-Identifier: BSD-3-Clause
"""flows/transforms/graph_input.py on tiny graphs: the input read from the model itself."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.infer_shapes import InferShapes

from bnn_brevitas.errors import ConfigError
from flows.transforms.graph_input import (
    AbsorbInputReshape,
    InputSpec,
    QuantizedGraphInput,
    resolve_input_spec,
)

from .graphs import make_model, run

GEN = "qonnx.custom_op.general"


def _quant(inp, out, scale, zp, bits, signed=0):
    return helper.make_node("Quant", [inp, f"{out}_s", f"{out}_z", f"{out}_b"], [out], domain=GEN,
                            signed=signed, narrow=0, rounding_mode="ROUND")


def _relu_tail(inp):
    return helper.make_node("Relu", [inp], ["y"])


def _model(nodes, shape, inits, out_shape=None):
    return make_model(nodes, [("x", shape)], [("y", out_shape or shape)], inits=inits)


def _apply(model, spec):
    return model.transform(AbsorbInputReshape()).transform(QuantizedGraphInput(spec))


def test_an_8bit_input_quantizer_becomes_the_uint8_input():
    nodes = [_quant("x", "q", 1 / 255, 0, 8), _relu_tail("q")]
    model = _model(nodes, (1, 4), {"q_s": 1 / 255, "q_z": 0.0, "q_b": 8.0})
    spec = resolve_input_spec(model)
    assert (spec.datatype, spec.source) == ("UINT8", "quantizer " + model.graph.node[0].name)
    assert spec.scale == pytest.approx(1 / 255)
    out = _apply(model, spec)
    assert out.get_tensor_datatype(out.graph.input[0].name) == DataType["UINT8"]
    assert [n.op_type for n in out.graph.node] == ["Mul", "Relu"]
    x = np.array([[0.0, 0.5, 0.2, 1.0]], np.float32)
    assert np.array_equal(run(out, spec.quantize(x)), run(model, x))


def test_zero_point_moves_to_the_host_and_arithmetic_before_a_quantizer_needs_the_options():
    model = _model([_quant("x", "q", 1 / 64, 3, 8, signed=1), _relu_tail("q")], (1, 6),
                   {"q_s": 1 / 64, "q_z": 3.0, "q_b": 8.0})
    spec = resolve_input_spec(model)
    assert (spec.datatype, spec.zero_point) == ("INT8", 3.0)
    out = _apply(model, spec)
    assert [n.op_type for n in out.graph.node] == ["Add", "Mul", "Relu"]
    x = np.random.default_rng(0).random((1, 6)).astype(np.float32) * 1.3 - 0.1
    assert np.array_equal(run(out, spec.quantize(x)), run(model, x))
    # brevitas_examples' 2x − 1 before the quantizer: the model's arithmetic, not its input
    pre = _model([helper.make_node("Mul", ["x", "two"], ["m"]),
                  _quant("m", "q", 1 / 64, 0, 8, signed=1), _relu_tail("q")], (1, 6),
                 {"two": 2.0, "q_s": 1 / 64, "q_z": 0.0, "q_b": 8.0})
    with pytest.raises(ConfigError, match="feeds a Mul node"):
        resolve_input_spec(pre)
    assert resolve_input_spec(pre, fallback=("UINT8", 1 / 255, "why")).source == "why"


def test_bipolar_input_after_a_reshape_is_one_bit_per_pixel():
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("BipolarQuant", ["r", "bq_s"], ["q"], domain=GEN), _relu_tail("q")]
    model = _model(nodes, (1, 1, 2, 2), {"bq_s": 1.0}, (1, 4))
    model.set_initializer("shape", np.array([1, -1], dtype=np.int64))  # make_model's are float
    model = model.transform(InferShapes())
    spec = resolve_input_spec(model.transform(AbsorbInputReshape()))
    assert (spec.datatype, spec.bipolar) == ("BINARY", True)
    out = _apply(model, spec)
    assert out.get_tensor_shape(out.graph.input[0].name) == [1, 4]
    x = np.array([[[[-0.5, 0.0], [0.25, -2.0]]]], np.float32)
    assert spec.quantize(x).reshape(-1).tolist() == [0, 1, 1, 0]  # sign(0) = +1, as Brevitas
    assert np.array_equal(run(out, spec.quantize(x).reshape(1, 4)), run(model, x))


def test_a_float_input_without_quantizer_needs_the_options_and_they_work():
    model = _model([_relu_tail("x")], (1, 4), {})
    with pytest.raises(ConfigError, match="feeds a Relu node .*--input-datatype .*--input-scale"):
        resolve_input_spec(model)
    with pytest.raises(ConfigError, match="give both or neither"):
        resolve_input_spec(model, "UINT8", None)
    spec = resolve_input_spec(model, "UINT8", 1 / 255)
    assert spec.source == "config"
    out = _apply(model, spec)
    codes = np.array([[0, 7, 128, 255]], np.float32)
    assert np.array_equal(run(out, codes), run(model, codes * np.float32(1 / 255)))


def test_an_annotated_integer_input_is_taken_as_is():
    model = _model([_relu_tail("x")], (1, 4), {})
    model.set_tensor_datatype("x", DataType["INT4"])
    spec = resolve_input_spec(model)
    assert (spec.datatype, spec.scale, spec.source) == ("INT4", 1.0, "annotation")
    assert len(_apply(model, spec).graph.node) == 1
    with pytest.raises(ConfigError, match="annotated INT4, but input_datatype is UINT8"):
        resolve_input_spec(model, "UINT8", 1.0)


def test_spec_round_trips_and_matches_the_driver(tmp_path):
    """The driver quantizes on the host with its own copy of the arithmetic: kept equal here."""
    from hw.driver.tensors import quantize_input
    from tests.hw.helpers import example_meta

    x = np.linspace(-1.3, 1.2, 301, dtype=np.float32)
    for spec in (InputSpec("UINT8", 1 / 255, source="quantizer q"),
                 InputSpec("INT8", 1 / 128, 3.0, "quantizer q"),
                 InputSpec("BIPOLAR", 1.0, source="config"),
                 InputSpec("BINARY", 2.0, 0.5, "quantizer q", bipolar=True)):
        spec.save(tmp_path / "s.json")
        assert InputSpec.load(tmp_path / "s.json") == spec
        meta = example_meta(input_quant=spec.to_dict())
        assert np.array_equal(quantize_input(meta, x), spec.quantize(x)), spec
