# SPDX-License-Identifier: BSD-3-Clause
"""A fast training path for the Brevitas layers that computes exactly the same values.

Brevitas runs every quantizer as a tree of small modules, wraps every result in a
``QuantTensor`` and masks gradients with ``torch.where``; on the CPU that bookkeeping, not the
arithmetic, is most of a training step (~60 % for ``bnext_nano_hw``). After
``enable_fast_train(model)`` each quantized layer of ``model`` computes, **in training mode
only**, the same forward values and the same gradients with one fused autograd function per
quantizer (``bnn_brevitas.fast_ops``):

====================================  ======================================================
Brevitas quantizer                    fast path
====================================  ======================================================
binary activation (clamped sign)      ``SignSte``, clipped STE (gradient where |x| ≤ s)
binary weight (in-place clamp, sign)  latent weights clamped in place, ``SignSte``, STE
k-bit activation, learned scale       ``ActQuant`` with s = max(|v|, min)/t from the
                                      ``ParameterFromRuntimeStatsScaling`` parameter v
k-bit activation, constant scale      ``ActQuant`` with Brevitas' constant s
k-bit weight, parameter statistics    Brevitas' statistic (abs-max), ``StatsScale``,
                                      ``WeightQuant`` (STE clamp)
====================================  ======================================================

and ``models.blocks.PReLU`` gets ``PReLUFn`` (the same formulas, a cheaper backward).

What does not change: the modules, their parameters, buffers and ``state_dict`` keys, bit
widths, and everything outside training mode: ``eval()``, export (``export_mode``), tracing
and ``QuantTensor`` inputs take the original Brevitas forward, so evaluation and the QONNX
export are untouched. A quantizer still collecting its runtime statistics (the first
``collect_stats_steps`` steps), a progressive binary weight at temperature τ > 0, and
quantizers of any other kind (``enable_fast_train`` returns how many layers it switched) also
run in Brevitas. Each layer's plan is read from its quantizer modules, and read again when
Brevitas replaces them (it does on ``load_state_dict``).

Outputs, every gradient and the parameters after several optimizer steps are checked with
``torch.equal`` against Brevitas in ``tests/bnn_brevitas/test_fast_train.py``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from brevitas.core.bit_width import BitWidthConst
from brevitas.core.function_wrapper import (
    Abs,
    InplaceTensorClampSte,
    RoundSte,
    ScalarSignedClampMinSte,
    TensorClamp,
    TensorClampSte,
)
from brevitas.core.function_wrapper import Identity as BrevitasIdentity
from brevitas.core.quant import BinaryQuant, ClampedBinaryQuant, RescalingIntQuant
from brevitas.core.quant.delay import _NoDelay
from brevitas.core.restrict_val import FloatRestrictValue
from brevitas.core.scaling.runtime import StatsFromParameterScaling
from brevitas.core.scaling.standalone import ConstScaling, ParameterFromRuntimeStatsScaling
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import Tensor, nn

from . import _compat  # noqa: F401  (torch 2.13 shim for brevitas, see _compat)
from .fast_ops import (
    EAGER,
    ActQuant,
    Kernels,
    PReLUFn,
    SignSte,
    StatsScale,
    WeightQuant,
    resolve_kernels,
)
from .models.blocks import PReLU
from .quant import ProgressiveBinaryQuant

__all__ = ["disable_fast_train", "enable_fast_train", "fast_train", "is_fast_train"]

log = logging.getLogger(__name__)

_ATTR = "_fast_train_plan"


# --------------------------------------------------------------------------------------------
# Plans: what each quantizer computes, read once from its Brevitas modules.


@dataclass
class _Plan:
    """How one layer runs on the fast path. ``kind``: "sign", "int_act", "int_weight" (scale
    from Brevitas' module), "int_weight_stats" (Brevitas' statistic, ``StatsScale``), "prelu"."""

    kind: str
    tensor_quant: nn.Module | None
    clip: bool = False  # sign: gradient masked to |x| ≤ s; int: non-STE clamp
    inplace_clamp: bool = False  # binary weights: clamp the latent weights to ±s in place
    lo: float = 0.0
    hi: float = 0.0
    threshold: Tensor | None = None  # int: Brevitas' integer threshold t (learned scale only)
    min_val: float | None = None
    const: dict[tuple, Tensor] = field(default_factory=dict)  # constant scale per device/dtype
    sign_scale: float | None = None
    relu: bool = False  # activations: a ReLU before the quantizer (QuantReLU)
    thresholds: dict[torch.device, Tensor] = field(default_factory=dict)
    kernels: Kernels = EAGER

    def threshold_on(self, device: torch.device) -> Tensor:
        """``threshold`` on ``device`` (a CPU scalar would take other kernels on an accelerator)."""
        if device not in self.thresholds:
            self.thresholds[device] = self.threshold.to(device)
        return self.thresholds[device]

    def sign_value(self, x: Tensor) -> float:
        """The constant scale of a binary quantizer, as a Python number."""
        if self.sign_scale is None:
            self.sign_scale = float(self.const_scale(x).reshape(-1)[0])
        return self.sign_scale

    def const_scale(self, x: Tensor) -> Tensor:
        """The constant scale of this quantizer (computed by Brevitas once per device/dtype)."""
        key = (x.device, x.dtype)
        if key not in self.const:
            with torch.no_grad():
                tq = self.tensor_quant
                if self.kind == "int_act":
                    t = tq.int_scaling_impl(tq.msb_clamp_bit_width_impl())
                    self.const[key] = tq.scaling_impl(x, t).detach()
                else:
                    self.const[key] = tq.scaling_impl(x).detach()
        return self.const[key]


def _int_range(tq: RescalingIntQuant) -> tuple[float, float, Tensor]:
    bw = tq.msb_clamp_bit_width_impl()
    iq = tq.int_quant
    return (float(iq.min_int(bw)), float(iq.max_int(bw)),
            tq.int_scaling_impl(bw).detach())


def _is_plain_int(tq: RescalingIntQuant) -> bool:
    """Constant bit width, zero point 0, round-half-even, no view, no quantization delay."""
    iq = tq.int_quant
    return (isinstance(tq.msb_clamp_bit_width_impl, BitWidthConst)
            and isinstance(tq.zero_point_impl, ZeroZeroPoint)
            and isinstance(iq.float_to_int_impl, RoundSte)
            and isinstance(iq.input_view_impl, (nn.Identity, BrevitasIdentity))
            and isinstance(iq.delay_wrapper.delay_impl, _NoDelay)
            and not tq.observer_only)


def _learned_threshold(sc: ParameterFromRuntimeStatsScaling, t: Tensor
                       ) -> tuple[Tensor, float | None] | None:
    """(t, min) if ``sc`` computes max(|v|, min)/t after its statistics, else None."""
    clamp = sc.clamp_scaling.clamp_min_ste
    if not (isinstance(sc.restrict_scaling.restrict_value_impl, FloatRestrictValue)
            and isinstance(sc.restrict_threshold.restrict_value_impl, FloatRestrictValue)
            and isinstance(sc.restrict_scale_threshold.restrict_value_impl,
                           (nn.Identity, BrevitasIdentity))
            and isinstance(clamp, (ScalarSignedClampMinSte, nn.Identity, BrevitasIdentity))
            and tuple(sc.value.shape) == ()):
        return None
    with torch.no_grad():
        t = sc.restrict_threshold(sc.restrict_threshold_pre(t)).detach()
    return t, (clamp.min_val if isinstance(clamp, ScalarSignedClampMinSte) else None)


def _is_identity(m: nn.Module) -> bool:
    return isinstance(m, (nn.Identity, BrevitasIdentity))


def _min_clamp(rc: nn.Module) -> float | None:
    """The ``min_val`` of a ``_RestrictClampValue`` that is FloatRestrictValue + min clamp."""
    if isinstance(rc.restrict_value_impl, FloatRestrictValue) and isinstance(
            rc.clamp_ste, ScalarSignedClampMinSte):
        return rc.clamp_ste.min_val
    return None


def _stats_threshold(ss: nn.Module, t: Tensor) -> tuple[Tensor, float] | None:
    """(t', min) if ``ss`` (a ``_StatsScaling``) computes max(m, min)/t' for m ≥ 0, else None:
    abs thresholds, the same min clamp before and after the abs restriction, no affine."""
    clamp = ss.clamp_scaling.clamp_min_ste
    min_val = _min_clamp(ss.restrict_clamp_scaling)
    rct, rcst = ss.restrict_clamp_threshold, ss.restrict_clamp_scale_threshold
    if not (min_val is not None and min_val > 0 and isinstance(clamp, ScalarSignedClampMinSte)
            and clamp.min_val == min_val and _is_identity(ss.affine_rescaling)
            and isinstance(ss.restrict_scaling_pre, Abs)
            and isinstance(ss.restrict_threshold_pre, Abs)
            and isinstance(rct.restrict_value_impl, FloatRestrictValue)
            and _is_identity(rct.clamp_ste) and _is_identity(rcst.restrict_value_impl)
            and _is_identity(rcst.clamp_ste)):
        return None
    with torch.no_grad():
        return rct(ss.restrict_threshold_pre(t)).detach(), min_val


def _binary_plan(tq: nn.Module, weight: bool) -> _Plan | None:
    if not isinstance(tq.scaling_impl, ConstScaling):
        return None
    if isinstance(tq, BinaryQuant):
        return _Plan("sign", tq)
    clamp = tq.tensor_clamp_impl
    if weight and isinstance(clamp, InplaceTensorClampSte):
        return _Plan("sign", tq, inplace_clamp=True)
    if isinstance(clamp, TensorClamp) and isinstance(tq, ClampedBinaryQuant):
        return _Plan("sign", tq, clip=True)
    return None


def _int_plan(tq: RescalingIntQuant, weight: bool) -> _Plan | None:
    if not _is_plain_int(tq):
        return None
    lo, hi, t = _int_range(tq)
    clamp, sc = tq.int_quant.tensor_clamp_impl, tq.scaling_impl
    if weight:
        if isinstance(clamp, TensorClampSte) and isinstance(sc, StatsFromParameterScaling):
            lean = _stats_threshold(sc.stats_scaling_impl, t)
            if lean is None:
                return _Plan("int_weight", tq, lo=lo, hi=hi, threshold=t)
            return _Plan("int_weight_stats", tq, lo=lo, hi=hi, threshold=lean[0],
                         min_val=lean[1])
        return None
    if not isinstance(clamp, TensorClamp):
        return None
    if isinstance(sc, ConstScaling):
        return _Plan("int_act", tq, clip=True, lo=lo, hi=hi)
    if isinstance(sc, ParameterFromRuntimeStatsScaling):
        learned = _learned_threshold(sc, t)
        if learned is not None:
            return _Plan("int_act", tq, clip=True, lo=lo, hi=hi, threshold=learned[0],
                         min_val=learned[1])
    return None


def _plan(proxy: nn.Module, weight: bool) -> _Plan | None:
    """The fast plan of a Brevitas weight or activation proxy, None if not supported."""
    if weight:
        tq = getattr(proxy, "tensor_quant", None)
    else:
        fused = getattr(proxy, "fused_activation_quant_proxy", None)
        tq = fused.tensor_quant if fused is not None else None
        act = fused.activation_impl if fused is not None else None
        relu = isinstance(act, nn.ReLU) and not act.inplace
        if not (act is None or relu or _is_identity(act)):
            return None
        plan = _plan_of(tq, weight)
        if plan is not None:
            plan.relu = relu
        return plan
    return _plan_of(tq, weight)


def _plan_of(tq: nn.Module | None, weight: bool) -> _Plan | None:
    """The fast plan of a Brevitas tensor quantizer, None if not supported."""
    if isinstance(tq, ProgressiveBinaryQuant):
        ok = (isinstance(tq.scaling_impl, ConstScaling)
              and isinstance(tq.tensor_clamp_impl, InplaceTensorClampSte))
        return _Plan("sign", tq, inplace_clamp=True) if ok else None
    if isinstance(tq, (BinaryQuant, ClampedBinaryQuant)):
        if not isinstance(tq.delay_wrapper.delay_impl, _NoDelay):
            return None
        return _binary_plan(tq, weight)
    if isinstance(tq, RescalingIntQuant):
        return _int_plan(tq, weight)
    return None


# --------------------------------------------------------------------------------------------
# Fast forwards, installed per module instance by ``enable_fast_train``.


def _training_fast(layer: nn.Module, x: object) -> bool:
    """True where the fast path applies: training, plain tensors, no export, no tracing."""
    return (layer.training and type(x) is Tensor and not torch._C._get_tracing_state()
            and not getattr(layer, "export_mode", False))


def _live_plan(layer: nn.Module, tq: nn.Module | None, weight: bool) -> _Plan | None:
    """The layer's plan for its current quantizer ``tq``. Brevitas re-creates quantizers on
    ``load_state_dict``; a plan made for the old one is replaced (None: not supported)."""
    plan: _Plan = layer.__dict__[_ATTR]
    if plan.tensor_quant is tq:
        return plan
    proxy = layer.weight_quant if weight else layer.act_quant
    new = _plan(proxy, weight)
    if new is None:
        return None
    new.kernels = plan.kernels
    layer.__dict__[_ATTR] = new
    return new


def _stats_done(plan: _Plan) -> bool:
    """False while a runtime-statistics scale still collects (then Brevitas runs)."""
    sc = plan.tensor_quant.scaling_impl
    return not isinstance(sc, ParameterFromRuntimeStatsScaling) or (
        sc.counter > sc.collect_stats_steps)


def _quant_act(plan: _Plan, x: Tensor) -> Tensor:
    k = plan.kernels
    if plan.kind == "sign":
        return SignSte.apply(x, plan.sign_value(x), plan.clip, k)
    if plan.threshold is None:
        return ActQuant.apply(x, plan.const_scale(x), None, None, plan.lo, plan.hi, k)
    value = plan.tensor_quant.scaling_impl.value
    return ActQuant.apply(x, value, plan.threshold_on(x.device), plan.min_val, plan.lo,
                           plan.hi, k)


def _act_forward(self: nn.Module, x: Tensor) -> Tensor:
    """QuantIdentity / QuantReLU: activation, then the fused quantizer."""
    if not _training_fast(self, x):
        return type(self).forward(self, x)
    proxy = self.act_quant
    fused = proxy.fused_activation_quant_proxy
    if not proxy.is_quant_enabled:  # --no-quantize: the activation alone, as in Brevitas
        return torch.relu(x) if isinstance(fused.activation_impl, nn.ReLU) else x
    plan = _live_plan(self, fused.tensor_quant, weight=False)
    if plan is None or not _stats_done(plan):
        return type(self).forward(self, x)
    return _quant_act(plan, torch.relu(x) if plan.relu else x)


def _quant_weight(layer: nn.Module, w: Tensor) -> Tensor | None:
    """The layer's quantized weight on the fast path; None where Brevitas must run."""
    proxy = layer.weight_quant
    if not proxy.is_quant_enabled:
        return None if hasattr(layer, "weight_orig") else w
    tq = proxy.tensor_quant
    plan = _live_plan(layer, tq, weight=True)
    if plan is None:
        return None
    if plan.kind == "sign":
        if isinstance(tq, ProgressiveBinaryQuant) and bool(tq.temperature > 0):
            return None  # soft clamp(w/τ) of progressive binarization: Brevitas' path
        s = plan.sign_value(w)
        if plan.inplace_clamp:
            with torch.no_grad():
                w.clamp_(-s, s)
        return SignSte.apply(w, s, plan.clip, EAGER)  # small tensors: eager
    t = plan.threshold_on(w.device)
    if plan.kind == "int_weight_stats":
        scale = StatsScale.apply(tq.scaling_impl.parameter_list_stats(w), plan.min_val, t)
    else:
        scale = tq.scaling_impl(w, t)
    return WeightQuant.apply(w, scale, plan.lo, plan.hi)


def _conv_forward(self: QuantConv2d, x: Tensor) -> Tensor:
    w = _quant_weight(self, self.weight) if _training_fast(self, x) else None
    if w is None:
        return type(self).forward(self, x)
    return self._conv_forward(x, w, self.bias)


def _linear_forward(self: QuantLinear, x: Tensor) -> Tensor:
    w = _quant_weight(self, self.weight) if _training_fast(self, x) else None
    if w is None:
        return type(self).forward(self, x)
    return torch.nn.functional.linear(x, w, self.bias)


def _prelu_forward(self: PReLU, x: Tensor) -> Tensor:
    if not (self.training and type(x) is Tensor and not torch._C._get_tracing_state()):
        return type(self).forward(self, x)
    w = self.weight.clamp(min=0.0) if self.nonneg else self.weight
    return PReLUFn.apply(x, w, self.__dict__[_ATTR].kernels)


# --------------------------------------------------------------------------------------------
# The switch.


def _no_io_quant(layer: nn.Module) -> bool:
    """A layer whose only quantizer is its weight (or act) quantizer and returns plain tensors."""
    if getattr(layer, "return_quant_tensor", False) or layer.input_quant.is_quant_enabled:
        return False
    if hasattr(layer, "output_quant") and layer.output_quant.is_quant_enabled:
        return False
    bias_quant = getattr(layer, "bias_quant", None)
    return getattr(layer, "bias", None) is None or not bias_quant.is_quant_enabled


def _fast_forward(m: nn.Module) -> tuple[object, _Plan] | None:
    """(forward, plan) for a module the fast path supports, else None."""
    if isinstance(m, PReLU):
        return _prelu_forward, _Plan("prelu", None)
    if isinstance(m, (QuantIdentity, QuantReLU)) and _no_io_quant(m):
        plan = _plan(m.act_quant, weight=False)
        return (_act_forward, plan) if plan is not None else None
    if isinstance(m, (QuantConv2d, QuantLinear)) and _no_io_quant(m):
        if getattr(m, "is_same_padded_strided", False):
            return None
        plan = _plan(m.weight_quant, weight=True)
        if plan is None:
            return None
        return (_conv_forward if isinstance(m, QuantConv2d) else _linear_forward), plan
    return None


def enable_fast_train(model: nn.Module, kernels: str | Kernels = "eager") -> int:
    """Switch every supported layer of ``model`` to the fast training path; return how many.

    Idempotent. Call it after the model is built (and its weights loaded); the switch holds
    until ``disable_fast_train``. Evaluation, export and tracing are unaffected (see above).
    ``kernels``: "eager", "compiled" (``torch.compile``-d elementwise kernels, same values,
    compiled on first use) or "auto" (compiled where inductor works, else eager).
    """
    k = resolve_kernels(kernels)
    n = skipped = 0
    for m in model.modules():
        if _ATTR in m.__dict__:
            continue
        found = _fast_forward(m)
        if found is None:
            skipped += isinstance(m, (QuantIdentity, QuantReLU, QuantConv2d, QuantLinear))
            continue
        fwd, plan = found
        plan.kernels = k
        m.__dict__[_ATTR] = plan
        m.forward = functools.partial(fwd, m)
        n += 1
    log.debug("fast training path (%s kernels): %d layers switched, %d quant layers left to "
              "Brevitas", k.name, n, skipped)
    return n


def disable_fast_train(model: nn.Module) -> int:
    """Undo ``enable_fast_train``; return how many layers were switched back."""
    n = 0
    for m in model.modules():
        if _ATTR in m.__dict__:
            del m.__dict__[_ATTR]
            m.__dict__.pop("forward", None)
            n += 1
    return n


def is_fast_train(model: nn.Module) -> bool:
    return any(_ATTR in m.__dict__ for m in model.modules())


@contextlib.contextmanager
def fast_train(model: nn.Module, kernels: str | Kernels = "eager") -> Iterator[nn.Module]:
    """``with fast_train(model): ...`` — the fast path inside the block, Brevitas' after."""
    was_on = is_fast_train(model)
    enable_fast_train(model, kernels)
    try:
        yield model
    finally:
        if not was_on:
            disable_fast_train(model)
