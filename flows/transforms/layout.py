# SPDX-License-Identifier: BSD-3-Clause
"""Channels-last conversion of a streamlined graph, with convolutions lowered to Im2Col + MatMul.

FINN's dataflow layers stream NHWC data. Its own route there lowers each convolution with a
Transpose pair around it and then tries to move hundreds of transposes through every fork and
join until they cancel, which does not converge on BNext's concatenations and broadcast gates.
``ToChannelsLast`` instead rewrites the whole (already streamlined, integer) graph once:

* one ``Transpose`` NCHW→NHWC at the graph input (the host-side layout change) and one back at a
  4-D graph output; every other 4-D tensor simply becomes NHWC;
* ``Conv`` → ``Im2Col`` + ``MatMul`` with FINN's weight order ([k_h·k_w·C_in, C_out], the order of
  ``LowerConvsToMatMul``); a 1×1 stride-1 unpadded conv → ``MatMul`` only. A ``Pad`` feeding the
  conv (BNext's −1 padding of bipolar activations) is folded into the ``Im2Col`` pads and
  ``pad_value``; FINN pads with the binary 0 code, which *is* bipolar −1 after the XNOR
  conversion (see :class:`BinaryIm2ColPadValue`);
* ``MultiThreshold`` → ``data_layout = NHWC``; ``QuantAvgPool2d`` likewise; ``MaxPool`` →
  ``MaxPoolNHWC``; ``ReduceSum`` over H, W → axes (1, 2); channel ``Concat`` → last axis;
  ``Reshape`` of an [N, C, 1, 1] tensor is unchanged (NHWC [N, 1, 1, C] flattens the same).

The graph it accepts is what :class:`~flows.transforms.affine.AffineStreamline` produces; any
other 4-D op raises ``LayoutError`` with its name.
"""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import SortGraph
from qonnx.util.basic import get_by_name

from bnn_brevitas.errors import ToolkitError

from .graph_io import reduce_axes

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
_ELEMENTWISE = {"Add", "Mul", "Sub", "Identity"}


class LayoutError(ToolkitError):
    """A 4-D node this converter does not know how to express in NHWC."""


def _ints(node: NodeProto, name: str, default: list[int]) -> list[int]:
    a = get_by_name(node.attribute, name)
    return list(a.ints) if a is not None else default


class ToChannelsLast(Transformation):
    """Rewrite an NCHW integer graph to NHWC, lowering convolutions (see the module docstring)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        model = model.transform(SortGraph(), cleanup=False)
        self.model = m = model
        names = [vi.name for vi in (*m.graph.value_info, *m.graph.input, *m.graph.output)]
        self.is4d = {n for n in names if len(m.get_tensor_shape(n) or []) == 4}
        self.consumers: dict[str, list[NodeProto]] = {}
        for n in m.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.pads: dict[str, tuple[list[int], float, str]] = {}  # folded Pad: out → (pads, v, in)
        head, tail = self._wrap_io()
        for name in self.is4d:
            shape = m.get_tensor_shape(name)
            m.set_tensor_shape(name, [shape[i] for i in NCHW_TO_NHWC])
            m.set_tensor_layout(name, ["N", "H", "W", "C"])
        self.new: list[NodeProto] = head
        for node in list(m.graph.node):
            CONVERT.get(node.op_type, ToChannelsLast._generic)(self, node)
        del m.graph.node[:]
        m.graph.node.extend(self.new + tail)
        return m, False

    def _wrap_io(self) -> tuple[list[NodeProto], list[NodeProto]]:
        """Transposes at 4-D graph inputs/outputs; the original names keep NCHW shapes."""
        m, head, tail = self.model, [], []
        for inp in m.graph.input:
            if inp.name in self.is4d:
                new = m.make_new_valueinfo_name()
                m.set_tensor_shape(new, m.get_tensor_shape(inp.name))
                m.set_tensor_datatype(new, m.get_tensor_datatype(inp.name))
                for n in self.consumers.get(inp.name, []):
                    n.input[:] = [new if i == inp.name else i for i in n.input]
                self.consumers[new] = self.consumers.pop(inp.name, [])
                head.append(helper.make_node("Transpose", [inp.name], [new],
                                             perm=list(NCHW_TO_NHWC)))
                self.is4d.discard(inp.name)
                self.is4d.add(new)
        for out in m.graph.output:
            if out.name in self.is4d:
                new = m.make_new_valueinfo_name()
                m.set_tensor_shape(new, m.get_tensor_shape(out.name))
                for n in m.graph.node:
                    n.output[:] = [new if o == out.name else o for o in n.output]
                tail.append(helper.make_node("Transpose", [new], [out.name],
                                             perm=list(NHWC_TO_NCHW)))
                self.is4d.discard(out.name)
                self.is4d.add(new)
        return head, tail

    def _const(self, value, dtype=np.float32) -> str:
        name = self.model.make_new_valueinfo_name()
        self.model.set_initializer(name, np.asarray(value, dtype=dtype))
        return name

    def _generic(self, node: NodeProto) -> None:
        for i, name in enumerate(node.input):
            c = self.model.get_initializer(name) if name else None
            if c is not None and c.ndim == 4 and node.op_type in _ELEMENTWISE:
                node.input[i] = self._const(c.transpose(NCHW_TO_NHWC))
            elif name in self.is4d and node.op_type not in _ELEMENTWISE:
                raise LayoutError(f"{node.name} ({node.op_type}): no channels-last rule for a "
                                  "4-D input")
        self.new.append(node)


def _set_layout_attr(st: ToChannelsLast, node: NodeProto) -> None:
    if node.input[0] in st.is4d:
        getCustomOp(node).set_nodeattr("data_layout", "NHWC")
    st.new.append(node)


def _max_pool(st: ToChannelsLast, node: NodeProto) -> None:
    new = helper.make_node(
        "MaxPoolNHWC", list(node.input), list(node.output), domain="qonnx.custom_op.general",
        name=node.name, kernel_shape=_ints(node, "kernel_shape", []),
        pads=_ints(node, "pads", [0, 0, 0, 0]), strides=_ints(node, "strides", [1, 1]))
    st.new.append(new)


def _reduce_sum(st: ToChannelsLast, node: NodeProto) -> None:
    axes = sorted(int(a) % 4 for a in reduce_axes(st.model, node))
    if node.input[0] in st.is4d:
        if axes != [2, 3]:
            raise LayoutError(f"{node.name}: only the global sum over H, W is supported")
        if len(node.input) > 1:
            node.input[1] = st._const([1, 2], dtype=np.int64)
        else:
            get_by_name(node.attribute, "axes").ints[:] = [1, 2]
    st.new.append(node)


def _concat(st: ToChannelsLast, node: NodeProto) -> None:
    if node.output[0] in st.is4d:
        axis = get_by_name(node.attribute, "axis").i % 4
        get_by_name(node.attribute, "axis").i = NCHW_TO_NHWC.index(axis)
    st.new.append(node)


def _pad(st: ToChannelsLast, node: NodeProto) -> None:
    users = st.consumers.get(node.output[0], [])
    if not users or any(u.op_type != "Conv" for u in users):
        raise LayoutError(f"{node.name}: a Pad must feed convolutions only (it is folded into "
                          "their sliding window)")
    pads = [int(p) for p in st.model.get_initializer(node.input[1])]
    if len(node.input) > 3 and node.input[3]:
        raise LayoutError(f"{node.name}: Pad with explicit axes is not supported")
    if pads[0] or pads[1] or pads[4] or pads[5]:
        raise LayoutError(f"{node.name}: padding of the batch or channel axis")
    value = st.model.get_initializer(node.input[2]) if len(node.input) > 2 else 0.0
    # ONNX [N, C, H, W begins, N, C, H, W ends] → Im2Col [top, left, bottom, right]
    st.pads[node.output[0]] = ([pads[2], pads[3], pads[6], pads[7]], float(value), node.input[0])


def _conv(st: ToChannelsLast, node: NodeProto) -> None:
    m = st.model
    src, pad, pad_value = node.input[0], _ints(node, "pads", [0, 0, 0, 0]), 0.0
    if src in st.pads:
        if any(pad):
            raise LayoutError(f"{node.name}: both a Pad node and conv padding")
        pad, pad_value, src = st.pads[src]
    group = get_by_name(node.attribute, "group")
    if group is not None and group.i != 1:
        raise LayoutError(f"{node.name}: grouped convolutions are not supported")
    w = m.get_initializer(node.input[1])
    ofm, ifm, kh, kw = w.shape
    w_mm = w.transpose(0, 2, 3, 1).reshape(ofm, kh * kw * ifm).T
    w_name = st._const(w_mm)
    m.set_tensor_datatype(w_name, m.get_tensor_datatype(node.input[1]))
    stride = _ints(node, "strides", [1, 1])
    _, h, wd, _ = m.get_tensor_shape(src)
    mm_in = src
    if (kh, kw) != (1, 1) or stride != [1, 1] or any(pad):
        _, oh, ow, _ = m.get_tensor_shape(node.output[0])
        mm_in = m.make_new_valueinfo_name()
        m.set_tensor_shape(mm_in, [1, oh, ow, kh * kw * ifm])
        m.set_tensor_datatype(mm_in, m.get_tensor_datatype(src))
        st.new.append(helper.make_node(
            "Im2Col", [src], [mm_in], domain="qonnx.custom_op.general",
            stride=stride, kernel_size=[kh, kw], pad_amount=pad, pad_value=int(pad_value),
            input_shape=f"(1,{h},{wd},{ifm})", depthwise=0,
            dilations=_ints(node, "dilations", [1, 1]), name=f"Im2Col_{node.name}"))
    st.new.append(helper.make_node("MatMul", [mm_in, w_name], [node.output[0]], name=node.name))


def _reshape(st: ToChannelsLast, node: NodeProto) -> None:
    src = node.input[0]
    if src in st.is4d:
        n, h, w, c = st.model.get_tensor_shape(src)
        if (h, w) != (1, 1):  # flatten in NCHW order: transpose back first
            nchw = st.model.make_new_valueinfo_name()
            st.model.set_tensor_shape(nchw, [n, c, h, w])
            st.model.set_tensor_datatype(nchw, st.model.get_tensor_datatype(src))
            st.new.append(helper.make_node("Transpose", [src], [nchw], perm=list(NHWC_TO_NCHW)))
            node.input[0] = nchw
    st.new.append(node)


CONVERT = {
    "MultiThreshold": _set_layout_attr, "QuantAvgPool2d": _set_layout_attr,
    "MaxPool": _max_pool, "ReduceSum": _reduce_sum, "Concat": _concat, "Pad": _pad,
    "Conv": _conv, "Reshape": _reshape, "Flatten": _reshape,
}


class BinaryIm2ColPadValue(Transformation):
    """After ``ConvertBipolarMatMulToXnorPopcount`` an Im2Col reading a BINARY tensor must pad
    with the binary code of bipolar −1, i.e. 0 (it padded the bipolar value −1 before)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.get_nodes_by_op_type("Im2Col"):
            inst = getCustomOp(node)
            padded = any(inst.get_nodeattr("pad_amount"))
            if model.get_tensor_datatype(node.input[0]).name != "BINARY" or not padded:
                continue
            if inst.get_nodeattr("pad_value") != -1:
                raise LayoutError(
                    f"{node.name}: pads a bipolar tensor with {inst.get_nodeattr('pad_value')}, "
                    "which has no binary code; train the model with binary_pad='minus_one' "
                    "(the hw mode default)")
            inst.set_nodeattr("pad_value", 0)
        return model, False


class BipolarMatMulToXnorPopcount(Transformation):
    """Bipolar MatMul → ``XnorPopcountMatMul`` + ``2·P − K`` correction, like qonnx's
    ``ConvertBipolarMatMulToXnorPopcount``, but also when several MatMuls share one bipolar
    thresholding (qonnx converts the shared thresholding to BINARY for the first MatMul and then
    no longer recognises the others as bipolar; BNext's two 1×1 branches share their sign).
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        bipolar = DataType["BIPOLAR"]
        todo = [n for n in model.graph.node if n.op_type == "MatMul"
                and model.get_tensor_datatype(n.input[0]) == bipolar
                and model.get_tensor_datatype(n.input[1]) == bipolar]
        for node in todo:
            self._binary_source(model, node)
            w = model.get_initializer(node.input[1])
            k = w.shape[0]
            w_name = model.make_new_valueinfo_name()
            model.set_initializer(w_name, ((w + 1) / 2).astype(np.float32))
            model.set_tensor_datatype(w_name, DataType["BINARY"])
            node.input[1] = w_name
            node.op_type, node.domain = "XnorPopcountMatMul", "qonnx.custom_op.general"
            out = node.output[0]
            popcount, doubled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            for t in (popcount, doubled):
                model.set_tensor_shape(t, model.get_tensor_shape(out))
            node.output[0] = popcount
            model.set_tensor_datatype(popcount, DataType["UINT32"])
            two, minus_k = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_initializer(two, np.asarray(2.0, dtype=np.float32))
            model.set_initializer(minus_k, np.asarray(-float(k), dtype=np.float32))
            i = list(model.graph.node).index(node)
            model.graph.node.insert(i + 1, helper.make_node("Mul", [popcount, two], [doubled]))
            model.graph.node.insert(i + 2, helper.make_node("Add", [doubled, minus_k], [out]))
        return model, False

    @staticmethod
    def _binary_source(model: ModelWrapper, node: NodeProto) -> None:
        """Make the thresholding that feeds ``node`` emit {0, 1}; type the path BINARY (max
        pooling commutes with the monotone map −1 → 0, +1 → 1)."""
        t = node.input[0]
        path = [t]
        producer = model.find_producer(t)
        while producer is not None and producer.op_type != "MultiThreshold":
            if producer.op_type not in ("Im2Col", "Transpose", "Reshape", "Identity",
                                        "MaxPoolNHWC"):
                raise LayoutError(f"{node.name}: bipolar input not produced by a thresholding "
                                  f"(found {producer.op_type})")
            t = producer.input[0]
            path.append(t)
            producer = model.find_producer(t)
        if producer is None:
            raise LayoutError(f"{node.name}: bipolar graph input cannot become binary")
        inst = getCustomOp(producer)
        if inst.get_nodeattr("out_dtype") == "BIPOLAR":
            if inst.get_nodeattr("out_scale") != 2.0 or inst.get_nodeattr("out_bias") != -1.0:
                raise LayoutError(f"{producer.name}: unexpected bipolar scale/bias")
            inst.set_nodeattr("out_dtype", "BINARY")
            inst.set_nodeattr("out_scale", 1.0)
            inst.set_nodeattr("out_bias", 0.0)
        for tensor in path:
            model.set_tensor_datatype(tensor, DataType["BINARY"])
