# SPDX-License-Identifier: BSD-3-Clause
"""The values and the working state of one :class:`~flows.transforms.affine.AffineStreamline` pass.

* :class:`Affine` — ``value = scale · q[src] + bias``, how the pass represents every tensor;
* :class:`AffineState` — the graph being rewritten, the representation of every tensor seen so
  far and the output nodes emitted so far, with the operations the per-op rules
  (``flows.transforms.affine_ops``) build on: look up a representation, emit a node or a
  constant, materialise a tensor's real value, keep a node unchanged, fail on a node.

This module is the bottom of the three affine modules: ``affine_ops`` (the rules) imports it,
and ``affine`` (the Transformation) imports both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.modelwrapper import ModelWrapper

from bnn_brevitas.errors import ToolkitError

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


def vec(x) -> np.ndarray:
    """A scalar stays 0-d; a per-channel vector is flattened to 1-d (float64)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(()) if x.size == 1 else x.reshape(-1)


def expand(v: np.ndarray, channels: int) -> np.ndarray:
    """A scalar repeated ``channels`` times; a per-channel vector as it is."""
    return np.full(channels, float(v)) if v.size == 1 else v


def simplify(v: np.ndarray) -> np.ndarray:
    """A per-channel vector whose entries are all equal becomes a scalar."""
    return v.reshape(-1)[:1].reshape(()).copy() if v.size and np.all(v == v.flat[0]) else v


class AffineState:
    """One pass over ``model`` (sorted): what the rules read and write.

    Attributes:
        model: the graph being rewritten (new tensors and constants are added to it).
        layout: "NCHW" or "NHWC", which axis of a 4-D tensor carries the channels.
        reps: tensor name → its :class:`Affine` representation (absent: the tensor itself).
        out_nodes: the nodes of the rewritten graph, in order.
        thresholds: output tensor of an emitted MultiThreshold → that node.
        consumers: tensor name → how many nodes of the input graph read it.
    """

    def __init__(self, model: ModelWrapper, layout: str) -> None:
        self.model, self.layout = model, layout
        self.reps: dict[str, Affine] = {}
        self.out_nodes: list[NodeProto] = []
        self.thresholds: dict[str, NodeProto] = {}
        self.consumers: dict[str, int] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        self._materialized: dict[str, str] = {}  # tensor → the name holding its real value

    # -- shapes and constants -----------------------------------------------------------------
    def chan_axis(self, shape) -> int:
        """The channel axis of a tensor of ``shape``."""
        return 1 if len(shape) != 4 or self.layout == "NCHW" else 3

    def channels(self, tensor: str) -> int:
        """The number of channels of ``tensor`` (1 for a 1-D tensor)."""
        shape = self.model.get_tensor_shape(tensor)
        return int(shape[self.chan_axis(shape)]) if len(shape) > 1 else 1

    def const_channel_vector(self, c: np.ndarray, tensor: str) -> np.ndarray | None:
        """A constant operand as a scalar or per-channel vector of ``tensor``, else None."""
        if c.size == 1:
            return vec(c)
        shape = self.model.get_tensor_shape(tensor)
        axis = self.chan_axis(shape)
        full = np.broadcast_shapes(c.shape, tuple(shape)) if c.ndim <= len(shape) else None
        if full != tuple(shape):
            return None
        cc = c.reshape((1,) * (len(shape) - c.ndim) + c.shape)
        if any(d != 1 for i, d in enumerate(cc.shape) if i != axis):
            return None
        return vec(cc)

    def channel_shaped(self, v: np.ndarray, tensor: str) -> np.ndarray:
        """``v`` (scalar or per-channel) shaped to broadcast against ``tensor``, as float32."""
        if v.size == 1:
            return np.asarray(v, dtype=np.float32).reshape(())
        shape = self.model.get_tensor_shape(tensor)
        target = [1] * len(shape)
        target[self.chan_axis(shape)] = v.size
        return v.astype(np.float32).reshape(target)

    def const(self, value, dtype=np.float32) -> str:
        """A new initializer holding ``value``; its name."""
        name = self.model.make_new_valueinfo_name()
        self.model.set_initializer(name, np.asarray(value, dtype=dtype))
        return name

    def new_tensor(self, like: str) -> str:
        """A new tensor name with the shape of ``like``."""
        name = self.model.make_new_valueinfo_name()
        self.model.set_tensor_shape(name, self.model.get_tensor_shape(like))
        return name

    # -- representations and nodes ------------------------------------------------------------
    def rep(self, tensor: str) -> Affine:
        """The representation of ``tensor`` (the identity on itself if none was recorded)."""
        return self.reps.get(tensor) or Affine(tensor, vec(1.0), vec(0.0))

    def make(self, op_type: str, inputs: list[str], outputs: list[str], *, emit: bool = False,
             **attrs) -> NodeProto:
        """A new node (appended to the output graph when ``emit``)."""
        node = helper.make_node(op_type, inputs, outputs, **attrs)
        if emit:
            self.out_nodes.append(node)
        return node

    def emit(self, op_type: str, inputs: list[str], outputs: list[str], **attrs) -> NodeProto:
        """A new node, appended to the output graph."""
        return self.make(op_type, inputs, outputs, emit=True, **attrs)

    def materialize(self, tensor: str) -> str:
        """A tensor name holding the real value of ``tensor`` (emits Mul/Add if needed)."""
        rep = self.rep(tensor)
        if rep.identity:
            return rep.src
        if tensor in self._materialized:
            return self._materialized[tensor]
        cur = rep.src
        if not np.all(rep.scale == 1):
            out = self.new_tensor(rep.src)
            self.emit("Mul", [cur, self.const(self.channel_shaped(rep.scale, rep.src))], [out])
            cur = out
        if not np.all(rep.bias == 0):
            out = self.new_tensor(rep.src)
            self.emit("Add", [cur, self.const(self.channel_shaped(rep.bias, rep.src))], [out])
            cur = out
        self._materialized[tensor] = cur
        return cur

    def keep(self, node: NodeProto) -> None:
        """Emit ``node`` unchanged, on materialised inputs (the rule of every unknown op)."""
        for i, name in enumerate(node.input):
            if name and self.model.get_initializer(name) is None:
                node.input[i] = self.materialize(name)
        self.out_nodes.append(node)

    def fail(self, node: NodeProto, why: str) -> NoReturn:
        """Raise :class:`StreamlineError` naming ``node`` and saying ``why``."""
        raise StreamlineError(f"{node.name} ({node.op_type}): {why}")
