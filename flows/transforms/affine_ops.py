# SPDX-License-Identifier: BSD-3-Clause
"""Per-op rules of :class:`~flows.transforms.affine.AffineStreamline` (one function per op type).

Each handler reads the affine representation (a, b) of its inputs, emits the integer node(s) the
rewritten graph needs, and records the representation of its output, all through the public
API of :class:`~flows.transforms.affine_state.AffineState`. :data:`HANDLERS` maps an op type to
its rule; an op type without one is kept unchanged (``AffineState.keep``). See ``affine.py``.
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import NodeProto
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import get_by_name

from .affine_state import BIG, Affine, AffineState, expand, simplify, vec

def _attr(node: NodeProto, name: str, default=None):
    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    if a.ints:
        return list(a.ints)
    if a.type == a.FLOAT:
        return a.f
    if a.type == a.STRING:
        return a.s.decode()
    return a.i


def _init(st: AffineState, name: str) -> np.ndarray | None:
    v = st.model.get_initializer(name)
    return None if v is None else np.asarray(v, dtype=np.float64)


def const_linear(st: AffineState, node: NodeProto) -> None:
    """Mul/Add/Sub/Div by a constant: compose into (a, b); two dynamic inputs are a join."""
    c0, c1 = _init(st, node.input[0]), _init(st, node.input[1])
    if c0 is None and c1 is None:
        return JOINS.get(node.op_type, AffineState.keep)(st, node)
    if c1 is not None:
        const, dyn, const_first = c1, node.input[0], False
    else:
        const, dyn, const_first = c0, node.input[1], True
    c = st.const_channel_vector(const, dyn)
    if c is None:
        return st.keep(node)
    x = st.rep(dyn)
    if node.op_type == "Add" and _absorb_into_out_bias(st, node, dyn, c):
        return
    a, b = x.scale, x.bias
    if node.op_type == "Mul":
        a, b = a * c, b * c
    elif node.op_type == "Add":
        b = b + c
    elif node.op_type == "Sub":
        a, b = (-a, c - b) if const_first else (a, b - c)
    elif node.op_type == "Div":
        if const_first:
            return st.keep(node)
        a, b = a / c, b / c
    st.reps[node.output[0]] = Affine(x.src, simplify(a), simplify(b))


def _absorb_into_out_bias(st: AffineState, node: NodeProto, dyn: str, c: np.ndarray) -> bool:
    """A scalar integer Add right after a thresholding becomes the thresholding's out_bias."""
    mt = st.thresholds.get(dyn)
    if mt is None or st.consumers.get(dyn, 0) != 1 or c.size != 1 or float(c) != round(float(c)):
        return False
    if not st.rep(dyn).identity:
        return False
    inst = getCustomOp(mt)
    inst.set_nodeattr("out_bias", float(inst.get_nodeattr("out_bias")) + float(c))
    mt.output[0] = node.output[0]  # the thresholding now computes the Add's output
    st.model.set_tensor_datatype(node.output[0], DataType[inst.get_nodeattr("out_dtype")])
    st.thresholds[node.output[0]] = st.thresholds.pop(dyn)
    st.reps[dyn] = Affine(node.output[0], vec(1.0), vec(-float(c)))
    return True


def batchnorm(st: AffineState, node: NodeProto) -> None:
    gamma, beta, mean, var = (_init(st, n) for n in node.input[1:5])
    eps = _attr(node, "epsilon", 1e-5)
    k = gamma / np.sqrt(var + eps)
    x = st.rep(node.input[0])
    st.reps[node.output[0]] = Affine(x.src, simplify(x.scale * k),
                                     simplify(x.bias * k + beta - mean * k))


def multithreshold(st: AffineState, node: NodeProto) -> None:
    x = st.rep(node.input[0])
    t = _init(st, node.input[1])
    channels = st.channels(node.input[0])
    per_channel = x.scale.size > 1 or x.bias.size > 1 or t.shape[0] > 1
    a = expand(x.scale, channels) if per_channel else x.scale.reshape(1)
    b = expand(x.bias, channels) if per_channel else x.bias.reshape(1)
    t = np.broadcast_to(t, (a.size, t.shape[1])).astype(np.float64)
    src = x.src
    if (a < 0).any():
        src = _flip_channels(st, node, src, a < 0)
        a = np.abs(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        new_t = (t - b[:, None]) / a[:, None]
    zero = a == 0  # constant input: every threshold is passed or none is
    new_t[zero] = np.where(b[zero, None] >= t[zero], -BIG, BIG)
    new = copy.deepcopy(node)
    new.input[0] = src
    new.input[1] = st.const(new_t.astype(np.float32))
    st.out_nodes.append(new)
    st.thresholds[node.output[0]] = new


def _flip_channels(st: AffineState, node: NodeProto, src: str, neg: np.ndarray) -> str:
    """Negate output channels ``neg`` of the conv/matmul producing ``src``; return the new
    tensor."""
    prod = next((n for n in reversed(st.out_nodes) if src in n.output), None)
    w = None if prod is None else _init(st, prod.input[1])
    if prod is None or prod.op_type not in ("Conv", "MatMul") or w is None:
        st.fail(node, "a decreasing per-channel function (negative BN scale) of a tensor that "
                      "is not produced by a convolution or matmul cannot become thresholds")
    sign = np.where(neg, -1.0, 1.0)
    w = w * (sign[:, None, None, None] if prod.op_type == "Conv" else sign[None, :])
    flipped = copy.deepcopy(prod)
    flipped.input[1] = st.const(w.astype(np.float32))
    # a sign flip keeps the weights' datatype (bipolar stays bipolar, INTk stays INTk)
    st.model.set_tensor_datatype(flipped.input[1], st.model.get_tensor_datatype(prod.input[1]))
    flipped.output[0] = st.new_tensor(src)
    st.out_nodes.append(flipped)
    return flipped.output[0]


def _integer_weights(st: AffineState, node: NodeProto) -> np.ndarray:
    w = _init(st, node.input[1])
    if not np.array_equal(w, np.round(w)):
        st.fail(node, "weights are not integers (a weight quantizer scale was not factored out)")
    return w


def _scalar_input(st: AffineState, node: NodeProto) -> Affine:
    x = st.rep(node.input[0])
    if not x.is_scalar_scale():
        st.fail(node, "its input has a per-channel scale; a matrix unit needs one scale per "
                      "tensor (use per-tensor activation quantizers)")
    return x


def conv(st: AffineState, node: NodeProto) -> None:
    x, w = _scalar_input(st, node), _integer_weights(st, node)
    bias = vec(0.0)
    if np.any(x.bias != 0):
        if any(_attr(node, "pads", [0])) or _attr(node, "group", 1) != 1:
            st.fail(node, "a padded or grouped convolution of a tensor with an offset")
        bias = vec(np.einsum("oikl,i->o", w, expand(x.bias, w.shape[1])))
    if len(node.input) > 2 and node.input[2]:
        bias = bias + vec(_init(st, node.input[2]))
    new = copy.deepcopy(node)
    new.input[0] = x.src
    del new.input[2:]
    st.out_nodes.append(new)
    st.reps[node.output[0]] = Affine(node.output[0], vec(x.scale.flat[0]), simplify(bias))


def matmul(st: AffineState, node: NodeProto) -> None:
    if node.op_type == "Gemm":
        if _attr(node, "transA", 0):
            return st.keep(node)
        w = _init(st, node.input[1])
        w = w.T if _attr(node, "transB", 0) else w
        w = w * _attr(node, "alpha", 1.0)
        name = st.const(w.astype(np.float32))
        extra = _init(st, node.input[2]) * _attr(node, "beta", 1.0) if len(node.input) > 2 else None
        node = st.make("MatMul", [node.input[0], name], [node.output[0]], name=node.name)
    else:
        extra = None
    x, w = _scalar_input(st, node), _integer_weights(st, node)
    bias = vec(expand(x.bias, w.shape[0]) @ w) if np.any(x.bias != 0) else vec(0.0)
    if extra is not None:
        bias = bias + vec(extra)
    new = copy.deepcopy(node)
    new.input[0] = x.src
    st.out_nodes.append(new)
    st.reps[node.output[0]] = Affine(node.output[0], vec(x.scale.flat[0]), simplify(bias))


def reduce_mean(st: AffineState, node: NodeProto) -> None:
    """Global average over H, W → integer ReduceSum, scale a/HW."""
    shape = st.model.get_tensor_shape(node.input[0])
    spatial = [1, 2] if st.layout == "NHWC" else [2, 3]
    axes = _attr(node, "axes") if node.op_type == "ReduceMean" else spatial
    if axes is None and len(node.input) > 1:
        axes = [int(v) for v in _init(st, node.input[1])]
    axes = sorted(a % len(shape) for a in axes)
    if axes != spatial or (node.op_type == "ReduceMean" and not _attr(node, "keepdims", 1)):
        return st.keep(node)
    x = st.rep(node.input[0])
    count = int(np.prod([shape[a] for a in axes]))
    opset = next((o.version for o in st.model.model.opset_import if o.domain in ("", "ai.onnx")),
                 18)
    if opset >= 13:  # axes became an input of ReduceSum in opset 13
        st.make("ReduceSum", [x.src, st.const(axes, dtype=np.int64)], [node.output[0]],
                keepdims=1, name=node.name, emit=True)
    else:
        st.make("ReduceSum", [x.src], [node.output[0]], axes=axes, keepdims=1, name=node.name,
                emit=True)
    st.reps[node.output[0]] = Affine(node.output[0], simplify(x.scale / count), x.bias)


def average_pool(st: AffineState, node: NodeProto) -> None:
    """k×k/k average pool of an integer tensor → exact window sum (QuantAvgPool2d, shift 0)."""
    k, s = _attr(node, "kernel_shape"), _attr(node, "strides", None)
    x = st.rep(node.input[0])
    dt = st.model.get_tensor_datatype(x.src)
    if (len(set(k)) != 1 or s != k or any(_attr(node, "pads", [0])) or not dt.is_integer()
            or _attr(node, "ceil_mode", 0)):
        return st.keep(node)
    k = k[0]
    max_sum = (2 ** dt.bitwidth() - 1) * k * k
    st.make("QuantAvgPool2d", [x.src], [node.output[0]], domain="qonnx.custom_op.general",
            stride=k, kernel=k, ibits=dt.bitwidth(), obits=int(max_sum).bit_length(),
            signed=int(dt.signed()), data_layout=st.layout, name=node.name, emit=True)
    st.reps[node.output[0]] = Affine(node.output[0], simplify(x.scale / (k * k)), x.bias)


def max_pool(st: AffineState, node: NodeProto) -> None:
    x = st.rep(node.input[0])
    if (x.scale <= 0).any():
        st.fail(node, "max pooling of a tensor with a non-positive scale")
    new = copy.deepcopy(node)
    new.input[0] = x.src
    st.out_nodes.append(new)
    st.reps[node.output[0]] = Affine(node.output[0], x.scale, x.bias)


def pad(st: AffineState, node: NodeProto) -> None:
    x = st.rep(node.input[0])
    value = _init(st, node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(())
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (float(value) - x.bias) / x.scale
    v = np.unique(np.asarray(v).reshape(-1))
    if v.size != 1 or v[0] != round(v[0]):
        st.fail(node, f"pad value {float(value)} is not one integer on the quantized grid")
    new = copy.deepcopy(node)
    new.input[0] = x.src
    new.input[2] = st.const(np.asarray(v[0], dtype=np.float32))
    st.out_nodes.append(new)
    st.reps[node.output[0]] = Affine(node.output[0], x.scale, x.bias)


def concat(st: AffineState, node: NodeProto) -> None:
    reps = [st.rep(i) for i in node.input]
    shape = st.model.get_tensor_shape(node.output[0])
    axis = _attr(node, "axis", 0) % len(shape)
    if axis == st.chan_axis(shape):
        sizes = [st.channels(i) for i in node.input]
        scale = simplify(np.concatenate([expand(r.scale, n) for r, n in zip(reps, sizes)]))
        bias = simplify(np.concatenate([expand(r.bias, n) for r, n in zip(reps, sizes)]))
    elif all(np.array_equal(r.scale, reps[0].scale) and np.array_equal(r.bias, reps[0].bias)
             for r in reps):
        scale, bias = reps[0].scale, reps[0].bias
    else:
        st.fail(node, "inputs have different scales and the concatenation is not on channels")
    new = copy.deepcopy(node)
    new.input[:] = [r.src for r in reps]
    st.out_nodes.append(new)
    st.reps[node.output[0]] = Affine(node.output[0], scale, bias)


def join_add(st: AffineState, node: NodeProto) -> None:
    x, y = st.rep(node.input[0]), st.rep(node.input[1])
    c = st.channels(node.output[0])
    if not np.array_equal(expand(x.scale, c), expand(y.scale, c)):
        st.fail(node, f"adds tensors of different scales {x.scale} and {y.scale}; the two "
                      "branches must share one quantizer")
    st.make("Add", [x.src, y.src], [node.output[0]], name=node.name, emit=True)
    st.reps[node.output[0]] = Affine(node.output[0], x.scale, simplify(x.bias + y.bias))


def join_mul(st: AffineState, node: NodeProto) -> None:
    x, y = st.rep(node.input[0]), st.rep(node.input[1])
    if np.any(x.bias != 0) or np.any(y.bias != 0):
        st.fail(node, "multiplies tensors with an offset (zero point); both operands must be "
                      "symmetric quantizer outputs")
    st.make("Mul", [x.src, y.src], [node.output[0]], name=node.name, emit=True)
    st.reps[node.output[0]] = Affine(node.output[0], simplify(x.scale * y.scale), vec(0.0))


def reshape(st: AffineState, node: NodeProto) -> None:
    x = st.rep(node.input[0])
    ishape = st.model.get_tensor_shape(node.input[0])
    per_channel = x.scale.size > 1 or x.bias.size > 1
    if per_channel and not (len(ishape) == 4 and np.prod(ishape[1:]) == st.channels(node.input[0])):
        return st.keep(node)
    new = copy.deepcopy(node)
    new.input[0] = x.src
    st.out_nodes.append(new)
    st.reps[node.output[0]] = Affine(node.output[0], x.scale, x.bias)


def identity(st: AffineState, node: NodeProto) -> None:
    st.reps[node.output[0]] = st.rep(node.input[0])


def im2col(st: AffineState, node: NodeProto) -> None:
    x = st.rep(node.input[0])
    if not x.is_scalar_scale() or x.bias.size > 1:
        st.fail(node, "Im2Col of a tensor with per-channel scale or offset")
    inst_pad = float(_attr(node, "pad_value", 0))
    v = (inst_pad - float(x.bias)) / float(x.scale.flat[0])
    if v != round(v):
        st.fail(node, f"pad value {inst_pad} is not an integer on the quantized grid")
    new = copy.deepcopy(node)
    new.input[0] = x.src
    getCustomOp(new).set_nodeattr("pad_value", int(round(v)))
    st.out_nodes.append(new)
    st.reps[node.output[0]] = Affine(node.output[0], x.scale.reshape(()), x.bias.reshape(()))


JOINS = {"Add": join_add, "Mul": join_mul}
HANDLERS = {
    "Mul": const_linear, "Add": const_linear, "Sub": const_linear, "Div": const_linear,
    "BatchNormalization": batchnorm,
    "MultiThreshold": multithreshold,
    "Conv": conv, "MatMul": matmul, "Gemm": matmul,
    "ReduceMean": reduce_mean, "GlobalAveragePool": reduce_mean,
    "AveragePool": average_pool,
    "MaxPool": max_pool, "MaxPoolNHWC": max_pool,
    "Pad": pad,
    "Concat": concat,
    "Reshape": reshape, "Flatten": reshape,
    "Identity": identity,
    "Im2Col": im2col,
}
