# SPDX-License-Identifier: BSD-3-Clause
"""Small rewrites of the integer datapath (the graph input: ``graph_input.py``).

* :class:`RemoveIdentityThresholds` — a thresholding of an integer tensor whose thresholds are
  exactly every step of the input range reproduces its input (BNext's 8-bit input quantizer on
  uint8 pixels); it is dropped instead of becoming a 255-threshold hardware layer.
* :class:`InferGlobalSum` — an integer ``ReduceSum`` over H, W of an NHWC tensor (what
  :class:`~flows.transforms.affine.AffineStreamline` makes of a global average pool) becomes
  FINN's ``GlobalAccPool`` hardware layer.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

from ..names import HW_DOMAIN


class RemoveIdentityThresholds(Transformation):
    """Drop MultiThresholds that map an integer input onto itself (see the module docstring)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.get_nodes_by_op_type("MultiThreshold")):
            idt = model.get_tensor_datatype(node.input[0])
            inst = getCustomOp(node)
            odt = DataType[inst.get_nodeattr("out_dtype")]
            if not idt.is_integer() or odt != idt or inst.get_nodeattr("out_scale") != 1:
                continue
            t = model.get_initializer(node.input[1])
            steps = np.arange(idt.min() + 1, idt.max() + 1, dtype=np.float64)
            if t.shape[-1] != steps.size or inst.get_nodeattr("out_bias") != idt.min():
                continue
            # x ≥ t exactly at the steps: thresholds anywhere in (k - 1, k] act the same
            if not (np.all(t > steps - 1) and np.all(t <= steps)):
                continue
            for consumer in model.find_consumers(node.output[0]):
                consumer.input[:] = [node.input[0] if i == node.output[0] else i
                                     for i in consumer.input]
            if node.output[0] in [o.name for o in model.graph.output]:
                continue
            model.graph.node.remove(node)
        return model, False


class InferGlobalSum(Transformation):
    """Integer ``ReduceSum`` over axes (1, 2) of an NHWC tensor → ``GlobalAccPool``."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            if node.op_type != "ReduceSum":
                continue
            axes = sorted(int(a) for a in reduce_axes(model, node))
            idt = model.get_tensor_datatype(node.input[0])
            shape = model.get_tensor_shape(node.input[0])
            if axes != [1, 2] or len(shape) != 4 or not idt.is_integer():
                continue
            n, h, w, c = shape
            new = helper.make_node(
                "GlobalAccPool", [node.input[0]], [node.output[0]],
                domain=HW_DOMAIN, backend="fpgadataflow", NumChannels=c,
                PE=1, inputDataType=idt.name, numInputVectors=[n, h, w],
                name="GlobalAccPool_" + node.name)
            index = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            model.graph.node.insert(index, new)
        return model, False


class NarrowIntegerDatatypes(Transformation):
    """Exact integer ranges for standard ops that qonnx annotates as INT32/FLOAT32.

    qonnx types every integer ``Add``/``Mul`` as INT32 and a ``ReduceSum`` as FLOAT32; the HW
    layers built from them (and the thresholds after them) would be needlessly wide, and float
    typing keeps thresholds from being rounded. Sums and products of integer operands get the
    smallest datatype that holds their exact range. Run after every ``InferDataTypes``.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            rng = self._range(model, node)
            if rng is not None:
                lo, hi = rng
                dt = DataType.get_smallest_possible(lo if lo < 0 else hi)
                if lo < 0 and not dt.allowed(hi):
                    dt = DataType.get_smallest_possible(-hi - 1)
                model.set_tensor_datatype(node.output[0], dt)
        return model, False

    @staticmethod
    def _range(model: ModelWrapper, node) -> tuple[int, int] | None:
        if node.op_type not in ("Add", "Mul", "ReduceSum"):
            return None
        dts = [model.get_tensor_datatype(i) for i in node.input[:2 if node.op_type != "ReduceSum"
                                                                   else 1]]
        if any(model.get_initializer(i) is not None for i in node.input[:len(dts)]):
            return None
        if not all(dt.is_integer() for dt in dts):
            return None
        (a0, a1) = (int(dts[0].min()), int(dts[0].max()))
        if node.op_type == "ReduceSum":
            shape = model.get_tensor_shape(node.input[0])
            axes = [int(a) % len(shape) for a in reduce_axes(model, node)]
            n = int(np.prod([shape[a] for a in axes]))
            return a0 * n, a1 * n
        b0, b1 = int(dts[1].min()), int(dts[1].max())
        if node.op_type == "Add":
            return a0 + b0, a1 + b1
        products = [a0 * b0, a0 * b1, a1 * b0, a1 * b1]
        return min(products), max(products)


def reduce_axes(model: ModelWrapper, node) -> list[int]:
    """The axes of a Reduce* node: an input from opset 13 on, an attribute before."""
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in model.get_initializer(node.input[1])]
    attr = get_by_name(node.attribute, "axes")
    return list(attr.ints) if attr is not None else []
