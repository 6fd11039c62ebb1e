# SPDX-License-Identifier: BSD-3-Clause
"""What the accelerator's input is, read from the model itself, and the graph made to take it.

A QONNX model takes floats; the accelerator takes integers. Which integers is a property of the
model, read by :func:`resolve_input_spec` in this order:

1. the graph input already carries an integer FINN datatype annotation: that is the input
   (scale 1; nothing is inserted);
2. ``FlowConfig.input_datatype`` and ``input_scale`` are set: the accelerator takes codes of
   that datatype, the model's float input is code × scale (a ``Mul`` is inserted; the model's
   own input quantizer, if any, then runs on the accelerator);
3. the model's input quantizer: a ``Quant`` / ``BipolarQuant`` on the graph input (through
   static ``Reshape``/``Flatten`` only). The accelerator takes its integer codes; the
   quantizer moves to the host (the driver metadata carries it as ``input_quant``), and the
   graph gets ``(q − z) · s`` in its place — exactly the quantizer's output;
4. a fallback the caller knows (the project's registry models take pixels / 255);
5. otherwise: a ``ConfigError`` that names the two options. Arithmetic before the quantizer
   (``brevitas_examples``' ``2x − 1``) is the model's, not the input's: such a model needs the
   options (FINN's own flow for these networks feeds UINT8 pixels × 1/255 the same way).

:class:`AbsorbInputReshape` moves a static reshape at the input to the host (the MLPs' exported
``view(N, -1)``), and :class:`QuantizedGraphInput` applies a resolved :class:`InputSpec`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from bnn_brevitas.errors import ConfigError

RESHAPE_OPS = ("Reshape", "Flatten")
QUANTIZER = "quantizer"  # InputSpec.source of a spec read from the model's input quantizer
QUANT_OPS = ("Quant", "BipolarQuant")
MISSING = ("say what the accelerator takes: --input-datatype (a FINN datatype, e.g. UINT8) and "
           "--input-scale (the model's float input = code × scale, e.g. 0.00392156862745098 "
           "for pixels/255), or --set input_datatype=… --set input_scale=…")


@dataclass(frozen=True)
class InputSpec:
    """The accelerator's input codes and how the host makes them from the model's float input:
    ``q = clip(round(x / scale + zero_point))`` (bipolar: the sign), and the model computes with
    ``(q − zero_point) · scale``."""

    datatype: str
    scale: float = 1.0
    zero_point: float = 0.0
    #: where it came from: "annotation", "config", "quantizer <node name>" or a fallback's why
    source: str = "config"
    #: a bipolar quantizer's sign sent as one BINARY bit: q = 1 iff the value is ≥ 0, and the
    #: model computes with (q − ½) · scale = ±scale/2 (FINN's XNOR layers take {0, 1} too)
    bipolar: bool = False

    @property
    def from_quantizer(self) -> bool:
        """Whether the model's own input quantizer defined it (and moves to the host)."""
        return self.source.startswith(QUANTIZER)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """The codes of float model inputs ``x`` (what the driver feeds the accelerator)."""
        dt = DataType[self.datatype]
        v = np.asarray(x, dtype=np.float64)
        if self.bipolar:
            return (v >= 0).astype(np.float32)
        if dt == DataType["BIPOLAR"]:
            return np.where(v >= 0, 1.0, -1.0).astype(np.float32)
        q = np.round(v / self.scale + self.zero_point)
        return np.clip(q, dt.min(), dt.max()).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> InputSpec:
        return cls(**json.loads(Path(path).read_text()))


def _single_consumer(model: ModelWrapper, tensor: str):
    consumers = model.find_consumers(tensor)
    return consumers[0] if consumers is not None and len(consumers) == 1 else None


def _input_quantizer(model: ModelWrapper) -> list | None:
    """The nodes from the graph input to its quantizer (reshapes, then the quantizer), or
    None when the input does not feed a quantizer that way."""
    chain, tensor = [], model.graph.input[0].name
    while (node := _single_consumer(model, tensor)) is not None and node.input[0] == tensor:
        chain.append(node)
        if node.op_type in QUANT_OPS:
            return chain
        if node.op_type not in RESHAPE_OPS:
            return None
        tensor = node.output[0]
    return None


def _quant_spec(model: ModelWrapper, quant) -> InputSpec:
    params = [model.get_initializer(i) for i in quant.input[1:]]
    if any(p is None or np.asarray(p).size != 1 for p in params):
        raise ConfigError(f"the input quantizer {quant.name} has per-channel or non-constant "
                          f"parameters; {MISSING}")
    where = f"{QUANTIZER} {quant.name}"
    values = [float(np.asarray(p).reshape(())) for p in params]
    if quant.op_type == "BipolarQuant":  # ±s = (q − ½) · 2s for q ∈ {0, 1}
        return InputSpec("BINARY", 2 * values[0], 0.5, where, bipolar=True)
    scale, zp, bits = values
    attrs = {at.name: helper.get_attribute_value(at) for at in quant.attribute}
    if bits != round(bits) or not 2 <= bits <= 32:
        raise ConfigError(f"the input quantizer {quant.name} has {bits} bits; {MISSING}")
    dt = f"{'INT' if attrs.get('signed', 1) else 'UINT'}{int(bits)}"
    return InputSpec(dt, scale, zp, where)


def resolve_input_spec(model: ModelWrapper, datatype: str | None = None,
                       scale: float | None = None,
                       fallback: tuple[str, float, str] | None = None) -> InputSpec:
    """The accelerator's input (see the module docstring); ``datatype``/``scale`` are
    ``FlowConfig.input_datatype``/``input_scale``; ``fallback``: (datatype, scale, why) used
    when the model has no input quantizer."""
    inp = model.graph.input[0].name
    annotated = model.get_tensor_datatype(inp)
    if (datatype is None) != (scale is None):
        raise ConfigError("input_datatype and input_scale go together: give both or neither")
    if annotated.is_integer():
        if datatype is not None and DataType[datatype] != annotated:
            raise ConfigError(f"the graph input is annotated {annotated.name}, but "
                              f"input_datatype is {datatype}")
        return InputSpec(annotated.name, 1.0, source="annotation")
    if datatype is not None:
        return InputSpec(datatype, float(scale), source="config")
    chain = _input_quantizer(model)
    if chain is None and fallback is not None:
        return InputSpec(fallback[0], fallback[1], source=fallback[2])
    if chain is None:
        first = _single_consumer(model, inp)
        what = f"{first.op_type} node {first.name}" if first is not None else "several nodes"
        raise ConfigError(f"the model's float input feeds a {what}, not an input quantizer "
                          f"(Quant/BipolarQuant on the input): {MISSING}")
    return _quant_spec(model, chain[-1])


class AbsorbInputReshape(Transformation):
    """A static ``Reshape``/``Flatten`` right at the graph input moves to the host: the graph
    input takes its output shape (the data are the same in C order)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        inp = model.graph.input[0]
        node = _single_consumer(model, inp.name)
        if node is None or node.op_type not in RESHAPE_OPS or node.input[0] != inp.name:
            return model, False
        if node.op_type == "Reshape" and model.get_initializer(node.input[1]) is None:
            return model, False
        shape = model.get_tensor_shape(node.output[0])
        if shape is None:
            return model, False
        for consumer in model.find_consumers(node.output[0]) or []:
            consumer.input[:] = [inp.name if i == node.output[0] else i for i in consumer.input]
        model.graph.node.remove(node)
        model.set_tensor_shape(inp.name, shape)
        return model, True


class QuantizedGraphInput(Transformation):
    """Make the graph take ``spec``'s integer codes (see the module docstring)."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.spec = spec

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        spec, inp = self.spec, model.graph.input[0]
        if spec.source == "annotation" or model.get_tensor_datatype(inp.name).is_integer():
            return model, False
        if not spec.from_quantizer:
            tail = inp.name  # code × scale feeds what the float input fed
            shape = model.get_tensor_shape(inp.name)
        else:
            chain = _input_quantizer(model)
            tail = chain[-1].output[0]
            shape = model.get_tensor_shape(tail)  # a reshape in the chain moves to the host
            for node in chain:
                model.graph.node.remove(node)
        codes = inp.name + "_codes"
        inp.name = codes
        model.set_tensor_shape(codes, shape)
        model.set_tensor_shape(tail, shape)
        model.set_tensor_datatype(codes, DataType[spec.datatype])
        ops = [("Add", -spec.zero_point)] if spec.zero_point else []
        ops.append(("Mul", spec.scale))
        src, nodes = codes, []
        for k, (op, c) in enumerate(ops):
            const = model.make_new_valueinfo_name()
            model.set_initializer(const, np.asarray(c, dtype=np.float32))
            out = tail if k == len(ops) - 1 else model.make_new_valueinfo_name()
            model.set_tensor_shape(out, shape)
            nodes.append(helper.make_node(op, [src, const], [out], name=f"InputCodes_{op}"))
            src = out
        for n in reversed(nodes):
            model.graph.node.insert(0, n)
        return model, False
