# SPDX-License-Identifier: BSD-3-Clause
"""Exact streamlining by affine propagation, in one pass over the graph.

FINN's ``Streamline`` moves scale and bias nodes around until a fixpoint: on a residual network
with squeeze-and-excitation gates and ELM multiplies that takes O(N³) time (each of hundreds of
iterations re-sorts and re-annotates the whole graph) and may not terminate at all
(``StreamlinePlus``). ``AffineStreamline`` instead walks the graph once in topological order and
represents every tensor as ``value = a·q + b``, where ``q`` is a tensor the rewritten graph really
computes and ``a``, ``b`` are per-channel (or scalar) constants:

* constant ``Mul``/``Add``/``Sub``/``Div`` and ``BatchNormalization`` only change (a, b): no node;
* ``MultiThreshold`` absorbs (a, b) into its thresholds, (t − b)/a per channel. A channel with
  a < 0 (a negative BN scale) is flipped in the weights of the convolution that produced q;
* ``Conv``/``MatMul`` with integer weights need a per-tensor ``a`` (and b = 0 when padded): the
  output is ``a·(W q) + W b``;
* joins: ``Add`` needs equal ``a`` on both sides (one shared quantizer), ``Mul`` needs b = 0,
  ``Concat`` on the channel axis concatenates the per-channel (a, b);
* ``ReduceMean`` becomes an integer ``ReduceSum`` (a/HW), a 2×2 ``AveragePool`` an exact
  ``QuantAvgPool2d`` window sum (a/4); ``Pad`` rescales its pad value, which must stay integer;
* a scalar integer ``Add`` right after a thresholding becomes its ``out_bias`` (signed outputs).

Whatever cannot be represented raises :class:`StreamlineError` naming the node and the reason.
At the graph outputs (a, b) is materialised as a final ``Mul``/``Add`` (host-side scaling).
Every rewrite is exact: the rewritten graph computes the same values up to float rounding of the
final scaling, and the integer tensors bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import SortGraph

from bnn_brevitas.errors import ToolkitError

#: model metadata key of the tensor map (read by flows.divergence)
AFFINE_MAP_KEY = "flows.affine_map"
#: threshold standing in for ±∞ (RoundAndClipThresholds clips it to the input range later)
BIG = 1e30


class StreamlineError(ToolkitError):
    """A node cannot be expressed on integers; the message names it and says why."""


@dataclass
class Affine:
    """value = scale · q[src] + bias, with scale/bias scalars or per-channel vectors."""

    src: str
    scale: np.ndarray
    bias: np.ndarray

    @property
    def identity(self) -> bool:
        return bool(np.all(self.scale == 1) and np.all(self.bias == 0))

    def is_scalar_scale(self) -> bool:
        return self.scale.size == 1 or bool(np.all(self.scale == self.scale.flat[0]))


def _vec(x) -> np.ndarray:
    """A scalar stays 0-d; a per-channel vector is flattened to 1-d (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(()) if x.size == 1 else x.reshape(-1)


def _expand(v: np.ndarray, channels: int) -> np.ndarray:
    return np.full(channels, float(v)) if v.size == 1 else v


def _simplify(v: np.ndarray) -> np.ndarray:
    """A per-channel vector whose entries are all equal becomes a scalar."""
    return v.reshape(-1)[:1].reshape(()).copy() if v.size and np.all(v == v.flat[0]) else v


class AffineStreamline(Transformation):
    """Absorb every scale/bias of a QONNX→FINN graph into thresholds (see the module docstring).

    Args:
        layout: "NCHW" (after ConvertQONNXtoFINN) or "NHWC" (after the layout conversion):
            which axis of a 4-D tensor carries the channels.
    """

    def __init__(self, layout: str = "NCHW") -> None:
        super().__init__()
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be NCHW or NHWC, got {layout!r}")
        self.layout = layout

    # -- helpers ------------------------------------------------------------------------------
    def _chan_axis(self, shape) -> int:
        return 1 if len(shape) != 4 or self.layout == "NCHW" else 3

    def _channels(self, tensor: str) -> int:
        shape = self.model.get_tensor_shape(tensor)
        return int(shape[self._chan_axis(shape)]) if len(shape) > 1 else 1

    def _const_channel_vector(self, c: np.ndarray, tensor: str) -> np.ndarray | None:
        """A constant operand as a scalar or per-channel vector of ``tensor``, else None."""
        if c.size == 1:
            return _vec(c)
        shape = self.model.get_tensor_shape(tensor)
        axis = self._chan_axis(shape)
        full = np.broadcast_shapes(c.shape, tuple(shape)) if c.ndim <= len(shape) else None
        if full != tuple(shape):
            return None
        cc = c.reshape((1,) * (len(shape) - c.ndim) + c.shape)
        if any(d != 1 for i, d in enumerate(cc.shape) if i != axis):
            return None
        return _vec(cc)

    def _rep(self, tensor: str) -> Affine:
        return self.reps.get(tensor) or Affine(tensor, _vec(1.0), _vec(0.0))

    def _new_tensor(self, like: str) -> str:
        name = self.model.make_new_valueinfo_name()
        self.model.set_tensor_shape(name, self.model.get_tensor_shape(like))
        return name

    def _make(self, op_type: str, inputs: list[str], outputs: list[str], *, emit: bool = False,
              **attrs) -> NodeProto:
        """A new node (appended to the output graph when ``emit``)."""
        node = helper.make_node(op_type, inputs, outputs, **attrs)
        if emit:
            self.out_nodes.append(node)
        return node

    def _emit(self, op_type: str, inputs: list[str], outputs: list[str], **attrs) -> NodeProto:
        return self._make(op_type, inputs, outputs, emit=True, **attrs)

    def _const(self, value, dtype=np.float32) -> str:
        name = self.model.make_new_valueinfo_name()
        self.model.set_initializer(name, np.asarray(value, dtype=dtype))
        return name

    def _channel_shaped(self, v: np.ndarray, tensor: str) -> np.ndarray:
        if v.size == 1:
            return np.asarray(v, dtype=np.float32).reshape(())
        shape = self.model.get_tensor_shape(tensor)
        target = [1] * len(shape)
        target[self._chan_axis(shape)] = v.size
        return v.astype(np.float32).reshape(target)

    def materialize(self, tensor: str) -> str:
        """A tensor name holding the real value of ``tensor`` (emits Mul/Add if needed)."""
        rep = self._rep(tensor)
        if rep.identity:
            return rep.src
        if tensor in self.materialized:
            return self.materialized[tensor]
        cur = rep.src
        if not np.all(rep.scale == 1):
            out = self._new_tensor(rep.src)
            self._emit("Mul", [cur, self._const(self._channel_shaped(rep.scale, rep.src))], [out])
            cur = out
        if not np.all(rep.bias == 0):
            out = self._new_tensor(rep.src)
            self._emit("Add", [cur, self._const(self._channel_shaped(rep.bias, rep.src))], [out])
            cur = out
        self.materialized[tensor] = cur
        return cur

    def _keep(self, node: NodeProto) -> None:
        """Emit ``node`` unchanged, on materialised inputs."""
        for i, name in enumerate(node.input):
            if name and self.model.get_initializer(name) is None:
                node.input[i] = self.materialize(name)
        self.out_nodes.append(node)

    def _fail(self, node: NodeProto, why: str) -> None:
        raise StreamlineError(f"{node.name} ({node.op_type}): {why}")

    # -- driver -------------------------------------------------------------------------------
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        model = model.transform(SortGraph(), cleanup=False)
        self.model, self.reps, self.materialized, self.out_nodes = model, {}, {}, []
        self.thresholds: dict[str, NodeProto] = {}  # MT output tensor → the emitted MT node
        self.consumers = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        from .affine_ops import HANDLERS  # local import: the handlers use this class

        for node in list(model.graph.node):
            HANDLERS.get(node.op_type, AffineStreamline._keep)(self, node)
        outputs = model.graph.output
        for out in outputs:
            real = self.materialize(out.name)
            if real != out.name:
                producer = next(n for n in reversed(self.out_nodes) if real in n.output)
                producer.output[list(producer.output).index(real)] = out.name
        del model.graph.node[:]
        model.graph.node.extend(_live_nodes(self.out_nodes, [o.name for o in outputs]))
        self._record_map(model)
        return model, False

    def _record_map(self, model: ModelWrapper) -> None:
        """Store value(name) = a · q[src] + b for every rewritten tensor in the model metadata,
        so that ``flows.divergence`` can compare this graph with the one before."""
        entries = {name: [rep.src, rep.scale.reshape(-1).tolist(), rep.bias.reshape(-1).tolist()]
                   for name, rep in self.reps.items() if name != rep.src or not rep.identity}
        model.set_metadata_prop(AFFINE_MAP_KEY, json.dumps(entries))


def _live_nodes(nodes: list[NodeProto], outputs: list[str]) -> list[NodeProto]:
    """Drop nodes whose outputs nobody uses (dead code after absorption)."""
    needed, keep = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    return keep[::-1]


