# SPDX-License-Identifier: BSD-3-Clause
"""Find the first node where a compilation stage stops computing what the previous one did.

Both graphs run on the same input with their full execution context. A tensor of the test graph
T is matched to the reference graph R when

* it has the same name and shape (most FINN rewrites keep tensor names),
* it has the same name and the NHWC permutation of R's NCHW shape (the layout conversion),
* it was rewritten by :class:`~flows.transforms.affine.AffineStreamline`, which records
  ``R[name] = a · T[src] + b`` in the model metadata (key ``flows.names.AFFINE_MAP_KEY``),
* and a BINARY tensor of T stands for a BIPOLAR one of R as ``2 · T − 1``.

T's nodes are walked in topological order; the first node with a matched output that differs
(exactly, for integer tensors) is reported with its op type, its inputs and the differences. If
every matched tensor agrees, the first node after the last agreeing one is reported instead.

A ``StreamingDataflowPartition`` is looked into: when its output differs, its child model (the
file its ``model`` attribute names, loaded as a build file: ``flows.finn_env.load_model``) is
executed on the same inputs and its nodes are walked the same way, against the same reference;
the layer found inside is reported, with ``partition`` naming the wrapper node and its file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from .build_dir import build_root
from .finn_env import load_model
from .names import AFFINE_MAP_KEY

#: FINN's wrapper node of a dataflow partition (its ``model`` attribute: the child graph)
PARTITION_OP = "StreamingDataflowPartition"


@dataclass
class Divergence:
    node: str
    op_type: str
    tensor: str
    inputs: list[dict]
    max_abs_diff: float
    mean_abs_diff: float
    how_matched: str
    checked_tensors: int = 0
    notes: list[str] = field(default_factory=list)
    #: the partition wrapper node (and its model file) the node was found in; "" outside one
    partition: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def execute_full(model: ModelWrapper, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of ``model`` executed (FINN's ``execute_onnx``) on ``x`` as its input."""
    return oxe_execute(model, {model.graph.input[0].name: x})


def _affine_map(model: ModelWrapper) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    raw = model.get_metadata_prop(AFFINE_MAP_KEY)
    if not raw:
        return {}
    return {k: (v[0], np.asarray(v[1]), np.asarray(v[2])) for k, v in json.loads(raw).items()}


def _channels_shaped(v: np.ndarray, like: np.ndarray, channel_axis: int) -> np.ndarray:
    if v.size == 1:
        return v.reshape(())
    shape = [1] * like.ndim
    shape[channel_axis] = v.size
    return v.reshape(shape)


class TensorMatcher:
    """Expresses tensors of T in R's terms (see the module docstring)."""

    def __init__(self, ref: ModelWrapper, ref_ctx: dict, test: ModelWrapper, test_ctx: dict):
        self.ref, self.rctx, self.test, self.tctx = ref, ref_ctx, test, test_ctx
        self.affine = _affine_map(test)
        self.inverse = {}
        for name, (src, a, b) in self.affine.items():
            self.inverse.setdefault(src, []).append((name, a, b))

    def candidates(self, tensor: str):
        """Yield (R tensor name, R value, T value in R's terms, how)."""
        t = self.tctx.get(tensor)
        if t is None:
            return
        for name, a, b in self.inverse.get(tensor, []):
            if name in self.rctx:
                r = self.rctx[name]
                tv = self._to_ref_layout(t, r.shape)
                if tv is not None:
                    axis = 1 if r.ndim > 1 else 0
                    yield name, r, tv * _channels_shaped(a, tv, axis) + \
                        _channels_shaped(b, tv, axis), "affine"
        if tensor in self.rctx and tensor not in self.affine:
            r = self.rctx[tensor]
            tv = self._to_ref_layout(t, r.shape)
            if tv is not None:
                how = "name"
                if (self.test.get_tensor_datatype(tensor).name == "BINARY"
                        and self.ref.get_tensor_datatype(tensor).name == "BIPOLAR"):
                    tv, how = 2 * tv - 1, "binary→bipolar"
                yield tensor, r, tv, how

    @staticmethod
    def _to_ref_layout(t: np.ndarray, ref_shape: tuple) -> np.ndarray | None:
        if t.shape == ref_shape:
            return t
        if t.ndim == 4 and (t.shape[0], t.shape[3], t.shape[1], t.shape[2]) == tuple(ref_shape):
            return t.transpose(0, 3, 1, 2)
        return None


def _differs(r: np.ndarray, t: np.ndarray, integer: bool) -> bool:
    if integer:
        return not np.array_equal(np.round(r), np.round(t)) or np.abs(r - t).max() > 1e-3
    return bool(np.abs(r - t).max() > 1e-5 * (1 + np.abs(r).max()))


def first_divergence(ref: ModelWrapper, test: ModelWrapper, x_ref: np.ndarray,
                     x_test: np.ndarray) -> Divergence | None:
    """Locate the first diverging node of ``test`` w.r.t. ``ref`` (None if none is found);
    inside a dataflow partition of ``test`` when that is where it diverges."""
    rctx, tctx = execute_full(ref, x_ref), execute_full(test, x_test)
    return _walk(ref, rctx, test, tctx)


def _walk(ref: ModelWrapper, rctx: dict, test: ModelWrapper, tctx: dict,
          partition: str = "") -> Divergence | None:
    """:func:`first_divergence` on executed graphs (``partition``: the wrapper ``test`` is the
    child model of, for the report)."""
    m = TensorMatcher(ref, rctx, test, tctx)
    last_ok, checked = None, 0
    for node in test.graph.node:
        for out in node.output:
            for rname, r, tv, how in m.candidates(out):
                checked += 1
                integer = test.get_tensor_datatype(out).is_integer() or \
                    ref.get_tensor_datatype(rname).is_integer()
                if _differs(r, tv, integer):
                    inner = _inside_partition(ref, rctx, test, tctx, node)
                    if inner is not None:
                        inner.checked_tensors += checked
                        return inner
                    d = np.abs(r - tv)
                    return Divergence(node.name, node.op_type, out, _inputs(test, tctx, node),
                                      float(d.max()), float(d.mean()), how, checked,
                                      partition=partition)
                last_ok = node
    names = [n.name for n in test.graph.node]
    after = names.index(last_ok.name) + 1 if last_ok is not None else 0
    if after < len(names):
        node = test.graph.node[after]
        out = node.output[0]
        return Divergence(node.name, node.op_type, out, _inputs(test, tctx, node), float("nan"),
                          float("nan"), "unmatched", checked,
                          ["no tensor of the reference matches this node's output; it is the "
                           "first node after the last one that agreed"], partition)
    return None


def _inside_partition(ref: ModelWrapper, rctx: dict, test: ModelWrapper, tctx: dict,
                      node) -> Divergence | None:
    """The first diverging node inside ``node`` when it is a dataflow partition: its child
    model executed on the values of the node's inputs in ``tctx`` (positionally, as FINN
    executes it), walked against the same reference. None for any other node, or when nothing
    inside is found to differ."""
    if node.op_type != PARTITION_OP:
        return None
    path = next((a.s.decode() for a in node.attribute if a.name == "model"), "")
    child = load_model(path)  # a build file: relocated to where the build is now
    feed = {i.name: tctx[t] for i, t in zip(child.graph.input, node.input)}
    cctx = oxe_execute(child, feed)
    root = build_root(path)
    where = f"{node.name} ({node.op_type}, " \
        f"{Path(path).absolute().relative_to(root) if root else path})"
    inner = _walk(ref, rctx, child, cctx, where)
    if inner is not None:
        inner.notes.append(f"inside the dataflow partition {where}: the partition's own layer, "
                           "executed on the partition's inputs")
    return inner


def oxe_execute(model: ModelWrapper, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """FINN's ``execute_onnx`` with the full context, on named inputs."""
    import finn.core.onnx_exec as oxe

    return oxe.execute_onnx(model, feed, return_full_exec_context=True)


def _inputs(model: ModelWrapper, ctx: dict, node) -> list[dict]:
    out = []
    for name in node.input:
        if not name:
            continue
        v = ctx.get(name)
        out.append({"name": name, "datatype": model.get_tensor_datatype(name).name,
                    "initializer": model.get_initializer(name) is not None,
                    "shape": list(v.shape) if v is not None else None})
    return out


def annotation_violations(model: ModelWrapper, ctx: dict) -> list[dict]:
    """Tensors whose values are not allowed by their integer datatype annotation."""
    bad = []
    for node in model.graph.node:
        for out in node.output:
            dt = model.get_tensor_datatype(out)
            v = ctx.get(out)
            if v is None or not dt.is_integer() or dt.name in ("INT32", "UINT32"):
                continue
            allowed = dt.allowed(v)
            if not (np.all(allowed) if isinstance(allowed, np.ndarray) else allowed):
                bad.append({"node": node.name, "op_type": node.op_type, "tensor": out,
                            "datatype": dt.name, "min": float(v.min()), "max": float(v.max())})
    return bad
