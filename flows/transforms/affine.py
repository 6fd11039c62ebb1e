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

This module holds the Transformation (the driver of the pass); the per-op rules are in
``flows.transforms.affine_ops`` and the state they share in ``flows.transforms.affine_state``
(which also defines :class:`StreamlineError`; it is re-exported here for callers).
"""

from __future__ import annotations

import json

from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import SortGraph

from ..names import AFFINE_MAP_KEY
from .affine_ops import HANDLERS
from .affine_state import AffineState, StreamlineError

__all__ = ["AffineStreamline", "StreamlineError"]


class AffineStreamline(Transformation):
    """Absorb every scale/bias of a QONNX→FINN graph into thresholds (see the module docstring).

    The per-op rules are ``flows.transforms.affine_ops.HANDLERS``; the state they share is a
    :class:`~flows.transforms.affine_state.AffineState`.

    Args:
        layout: "NCHW" (after ConvertQONNXtoFINN) or "NHWC" (after the layout conversion):
            which axis of a 4-D tensor carries the channels.
    """

    def __init__(self, layout: str = "NCHW") -> None:
        super().__init__()
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be NCHW or NHWC, got {layout!r}")
        self.layout = layout

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        model = model.transform(SortGraph(), cleanup=False)
        st = AffineState(model, self.layout)
        for node in list(model.graph.node):
            HANDLERS.get(node.op_type, AffineState.keep)(st, node)
        outputs = model.graph.output
        for out in outputs:
            real = st.materialize(out.name)
            if real != out.name:
                producer = next(n for n in reversed(st.out_nodes) if real in n.output)
                producer.output[list(producer.output).index(real)] = out.name
        del model.graph.node[:]
        model.graph.node.extend(_live_nodes(st.out_nodes, [o.name for o in outputs]))
        _record_map(model, st)
        return model, False


def _record_map(model: ModelWrapper, st: AffineState) -> None:
    """Store value(name) = a · q[src] + b for every rewritten tensor in the model metadata,
    so that ``flows.divergence`` can compare this graph with the one before."""
    entries = {name: [rep.src, rep.scale.reshape(-1).tolist(), rep.bias.reshape(-1).tolist()]
               for name, rep in st.reps.items() if name != rep.src or not rep.identity}
    model.set_metadata_prop(AFFINE_MAP_KEY, json.dumps(entries))


def _live_nodes(nodes: list[NodeProto], outputs: list[str]) -> list[NodeProto]:
    """Drop nodes whose outputs nobody uses (dead code after absorption)."""
    needed, keep = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    return keep[::-1]
