# SPDX-License-Identifier: BSD-3-Clause
"""Fused autograd functions of the fast training path (``bnn_brevitas.fast_train``).

Each function computes what autograd computes on Brevitas' graph of the same quantizer, with
the same IEEE operations in the same order, so forward values and gradients are bit-identical
(``torch.equal``; the one freedom taken is the sign of an exact zero in PReLU's input gradient,
which no later operation turns into a different number):

=================  ===========================================================================
``SignSte``        ±s = s·sign(clamp(x, −s, s)), sign(0) = +1; gradient g·s, masked to |x| ≤ s
                   (Brevitas' non-STE ``TensorClamp``) or straight through (weights)
``ActQuant``       clamp(round(x/s), lo, hi)·s with a constant s or s = max(|v|, min)/t from a
                   learned parameter v; gradient (g·s)/s where round(x/s) ∈ [lo, hi], and
                   Σ g·q − Σ (g·s)·(x/s)/s for s, each reduced with ``sum_to_size``
``WeightQuant``    the same for weights, straight through the clamp (``TensorClampSte``)
``StatsScale``     Brevitas' ``_StatsScaling`` of a weight statistic: max(m, min)/t
``PReLUFn``        ``F.prelu`` with a backward that avoids ATen's slow CPU kernel
=================  ===========================================================================

No bool tensors: on the CPU ``torch.where``, ``masked_fill`` and comparisons run 10-50× slower
per element than vectorised arithmetic, so gradient masks use ``hardtanh_backward`` /
``threshold_backward`` (one pass, exactly g or +0, like ``where(m, g, 0)``). The elementwise
parts live in ``Kernels`` (eager) or ``CompiledKernels`` (``torch.compile``, one fused loop
per kernel, checked against the eager ones before use).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor
from torch.autograd import Function

__all__ = [
    "EAGER",
    "ActQuant",
    "CompiledKernels",
    "Kernels",
    "PReLUFn",
    "SignSte",
    "StatsScale",
    "WeightQuant",
    "resolve_kernels",
]

log = logging.getLogger(__name__)

_aten = torch.ops.aten


_ABOVE: dict[tuple[float, torch.dtype], float] = {}


def _just_above(s: float, dtype: torch.dtype) -> float:
    """The next number above ``s`` in ``dtype``: x < that bound exactly when x ≤ s."""
    key = (s, dtype)
    if key not in _ABOVE:
        t = torch.tensor(s, dtype=dtype)
        _ABOVE[key] = float(torch.nextafter(t, torch.tensor(float("inf"), dtype=dtype)))
    return _ABOVE[key]


class Kernels:
    """The elementwise parts of the fused functions, eager (below) or ``torch.compile``-d.

    Every function is a fixed sequence of IEEE operations (division, round-half-even, clamp,
    products, exact selections) with no reduction, so a compiled kernel computes the same bits
    in one pass over memory instead of one pass per operation; the reductions stay in eager
    ``sum_to_size``. ``tests/bnn_brevitas/test_fast_train.py`` checks both variants.
    """

    name = "eager"

    @staticmethod
    def sign(x: Tensor) -> Tensor:
        """Brevitas' ``binary_sign``: +1 where x ≥ 0 (±0 included), −1 elsewhere."""
        return torch.sign(torch.sign(x) + 0.5)

    @staticmethod
    def act_fwd(x: Tensor, s: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor]:
        """(clamp(round(x/s), lo, hi)·s, x/s)."""
        y = x / s
        return torch.clamp(torch.round(y), lo, hi) * s, y

    @staticmethod
    def act_bwd(g: Tensor, y: Tensor, s: Tensor, lo: float, hi: float
                ) -> tuple[Tensor, Tensor, Tensor]:
        """(grad x, g·q, gm·(y/s)): gm = g·s where lo ≤ round(y) ≤ hi, else +0."""
        r = torch.round(y)
        gm = _aten.hardtanh_backward(g * s, r, lo - 0.5, hi + 0.5)  # r is an integer
        return gm / s, g * torch.clamp(r, lo, hi), gm * (y / s)

    @staticmethod
    def act_bwd_x(g: Tensor, y: Tensor, s: Tensor, lo: float, hi: float) -> Tensor:
        return _aten.hardtanh_backward(g * s, torch.round(y), lo - 0.5, hi + 0.5) / s

    @staticmethod
    def prelu_bwd(g: Tensor, x: Tensor, wv: Tensor) -> tuple[Tensor, Tensor]:
        """(g where x > 0 else w·g, x·g where x ≤ 0 else +0); each selection is exact."""
        g_pos = _aten.threshold_backward(g, x, 0.0)
        g_neg = g - g_pos
        return g_pos + g_neg * wv, x * g_neg


def _c_sign(x: Tensor) -> Tensor:
    return torch.where(x >= 0, 1.0, -1.0)


def _c_act_fwd(x: Tensor, s: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    y = x / s
    return torch.clamp(torch.round(y), lo, hi) * s, y


def _c_masked(g: Tensor, y: Tensor, s: Tensor, lo: Tensor, hi: Tensor
              ) -> tuple[Tensor, Tensor]:
    r = torch.round(y)
    return torch.where((r >= lo) & (r <= hi), g * s, 0.0), r


def _c_act_bwd(g: Tensor, y: Tensor, s: Tensor, lo: Tensor, hi: Tensor
               ) -> tuple[Tensor, Tensor, Tensor]:
    gm, r = _c_masked(g, y, s, lo, hi)
    return gm / s, g * torch.clamp(r, lo, hi), gm * (y / s)


def _c_act_bwd_x(g: Tensor, y: Tensor, s: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    return _c_masked(g, y, s, lo, hi)[0] / s


def _c_prelu_bwd(g: Tensor, x: Tensor, wv: Tensor) -> tuple[Tensor, Tensor]:
    pos = x > 0
    return torch.where(pos, g, wv * g), torch.where(pos, 0.0, x * g)


class CompiledKernels(Kernels):
    """``Kernels`` as ``torch.compile``-d (inductor) loops, one fused pass each.

    Inside a compiled kernel ``where`` is cheap (no bool tensor is materialised), so these are
    the plain formulas; bounds are passed as tensors and shapes are dynamic so that one kernel
    serves every layer. Tensors below ``MIN_NUMEL`` elements, and tensors on other devices,
    take the eager kernels.
    """

    name = "compiled"
    MIN_NUMEL = 1 << 15

    def __init__(self) -> None:
        opts = {"dynamic": True, "fullgraph": True}
        self._sign = torch.compile(_c_sign, **opts)
        self._act_fwd = torch.compile(_c_act_fwd, **opts)
        self._act_bwd = torch.compile(_c_act_bwd, **opts)
        self._act_bwd_x = torch.compile(_c_act_bwd_x, **opts)
        self._prelu_bwd = torch.compile(_c_prelu_bwd, **opts)
        self._bounds: dict[tuple, tuple[Tensor, Tensor]] = {}

    def _lohi(self, lo: float, hi: float, like: Tensor) -> tuple[Tensor, Tensor]:
        key = (lo, hi, like.device, like.dtype)
        if key not in self._bounds:
            self._bounds[key] = (torch.tensor(lo, dtype=like.dtype, device=like.device),
                                 torch.tensor(hi, dtype=like.dtype, device=like.device))
        return self._bounds[key]

    def _big(self, x: Tensor) -> bool:
        """Compiled kernels for large CPU tensors only (inductor's GPU code is not checked)."""
        return x.numel() >= self.MIN_NUMEL and x.device.type == "cpu"

    @torch.no_grad()  # as inside autograd functions (grad mode is part of dynamo's guards)
    def self_check(self) -> bool:
        """Compile every kernel (4-D, as the models use them) and compare it with the eager
        one on values with rounding ties, range boundaries and signed zeros."""
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 3, 4, 8, generator=g) * 20
        x.view(-1)[:12] = torch.tensor([-32.5, -32.0, -31.5, -0.5, -0.0, 0.0, 0.5, 1.5, 2.5,
                                        30.5, 31.0, 31.5])
        s, gr, wv = torch.tensor(1.0), torch.randn(x.shape, generator=g), torch.rand(1, 3, 1, 1)
        lo, hi = self._lohi(-32.0, 31.0, x)
        x1 = x[:, :1].contiguous()  # one channel (a grey input image): its own kernel
        pairs = [(self._sign(x), Kernels.sign(x)),
                 (self._act_fwd(x, s, lo, hi), Kernels.act_fwd(x, s, -32.0, 31.0)),
                 (self._act_fwd(x1, s, lo, hi), Kernels.act_fwd(x1, s, -32.0, 31.0)),
                 (self._act_bwd(gr, x, s, lo, hi), Kernels.act_bwd(gr, x, s, -32.0, 31.0)),
                 (self._act_bwd_x(gr, x, s, lo, hi), Kernels.act_bwd_x(gr, x, s, -32.0, 31.0)),
                 (self._prelu_bwd(gr, x, wv), Kernels.prelu_bwd(gr, x, wv))]
        for a, b in pairs:
            a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
            if not all(torch.equal(u, v) for u, v in zip(a, b)):
                return False
        return True

    def sign(self, x: Tensor) -> Tensor:
        if not self._big(x):
            return Kernels.sign(x)
        return self._sign(x.detach().contiguous()).to(x.dtype)

    def act_fwd(self, x: Tensor, s: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor]:
        if not self._big(x):
            return Kernels.act_fwd(x, s, lo, hi)
        return self._act_fwd(x.detach().contiguous(), s.detach(), *self._lohi(lo, hi, x))

    def act_bwd(self, g: Tensor, y: Tensor, s: Tensor, lo: float, hi: float
                ) -> tuple[Tensor, Tensor, Tensor]:
        if not self._big(g):
            return Kernels.act_bwd(g, y, s, lo, hi)
        return self._act_bwd(g.contiguous(), y, s.detach(), *self._lohi(lo, hi, g))

    def act_bwd_x(self, g: Tensor, y: Tensor, s: Tensor, lo: float, hi: float) -> Tensor:
        if not self._big(g):
            return Kernels.act_bwd_x(g, y, s, lo, hi)
        return self._act_bwd_x(g.contiguous(), y, s.detach(), *self._lohi(lo, hi, g))

    def prelu_bwd(self, g: Tensor, x: Tensor, wv: Tensor) -> tuple[Tensor, Tensor]:
        if not self._big(g):
            return Kernels.prelu_bwd(g, x, wv)
        return self._prelu_bwd(g.contiguous(), x.detach().contiguous(), wv.detach())


EAGER = Kernels()
_COMPILED: CompiledKernels | None = None
_AUTO: Kernels | None = None  # what "auto" resolved to (checked once per process)


def compiled_kernels() -> Kernels:
    """The shared ``CompiledKernels`` (compiled on first use; inductor caches on disk)."""
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = CompiledKernels()
    return _COMPILED


def resolve_kernels(kernels: str | Kernels) -> Kernels:
    """``"eager"``, ``"compiled"`` or ``"auto"`` (compiled if inductor builds and checks a
    kernel on this machine, else eager) to a ``Kernels`` object."""
    if isinstance(kernels, Kernels):
        return kernels
    if kernels not in ("auto", "eager", "compiled"):
        raise ValueError(f"kernels must be 'auto', 'eager' or 'compiled', got {kernels!r}")
    if kernels == "eager":
        return EAGER
    if kernels == "compiled":
        return compiled_kernels()
    global _AUTO
    if _AUTO is None:
        _AUTO = EAGER
        try:
            if compiled_kernels().self_check():
                _AUTO = compiled_kernels()
            else:
                log.warning("compiled fast-train kernels disagree with eager ones; using eager")
        except Exception as e:  # noqa: BLE001 (no compiler, unsupported platform: eager works)
            log.info("torch.compile unavailable for the fast-train kernels (%s); using eager",
                     f"{type(e).__name__}: {e}".splitlines()[0])
    return _AUTO


class SignSte(Function):
    """±s = s·sign(clamp(x, −s, s)) with Brevitas' sign (0 → +1). Gradient g·s, masked to
    |x| ≤ s when ``clip`` (Brevitas' non-STE ``TensorClamp``), else straight through."""

    @staticmethod
    def forward(ctx, x: Tensor, s: float, clip: bool, k: Kernels) -> Tensor:
        ctx.s, ctx.clip = s, clip
        ctx.save_for_backward(x if clip else None)
        out = k.sign(x)
        return out if s == 1.0 else out.mul_(s)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None, None, None]:
        (x,) = ctx.saved_tensors
        gs = g if ctx.s == 1.0 else g * ctx.s  # g·1.0 is g, bit for bit
        if ctx.clip:
            b = _just_above(ctx.s, x.dtype)
            gs = _aten.hardtanh_backward(gs, x, -b, b)  # zero unless −s ≤ x ≤ s
        return gs, None, None, None


def _learned_scale(v: Tensor, t: Tensor, min_val: float | None) -> Tensor:
    """Brevitas' ``ParameterFromRuntimeStatsScaling`` after its statistics: max(|v|, min) / t."""
    a = torch.abs(v)
    return (torch.clamp_min(a, min_val) if min_val is not None else a) / t


class StatsScale(Function):
    """Brevitas' ``_StatsScaling`` of a weight statistic m ≥ 0 (min clamps with STE, abs):
    max(m, min) / t; gradient g / t (every other factor of Brevitas' chain is exactly 1)."""

    @staticmethod
    def forward(ctx, m: Tensor, min_val: float, t: Tensor) -> Tensor:
        ctx.save_for_backward(t)
        return torch.clamp_min(m, min_val) / t

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None, None]:
        (t,) = ctx.saved_tensors
        return g / t, None, None


def _scale_grad(gs: Tensor, s: Tensor, v: Tensor, t: Tensor | None) -> Tensor:
    """The gradient of the scale parameter: s itself, or v with s = max(|v|, min)/t (the
    min clamp is a straight-through estimator and Brevitas' signs are exactly ±1)."""
    return gs if t is None else (gs / t) * torch.sgn(v)


class ActQuant(Function):
    """Brevitas' ``IntQuant`` of an activation (zero point 0, non-STE ``TensorClamp``):
    clamp(round(x/s), lo, hi)·s, gradient for x where round(x/s) ∈ [lo, hi].

    ``v`` is the scale (``t`` None) or a learned scale parameter, s = max(|v|, min)/t. Its
    gradient is what autograd computes on Brevitas' graph: Σ g·q (from q·s) − Σ gm·(x/s)/s
    (from x/s), each reduced with ``sum_to_size``; −Σ a·b equals Σ (−a)·b exactly.
    """

    @staticmethod
    def forward(ctx, x: Tensor, v: Tensor, t: Tensor | None, min_val: float | None,
                lo: float, hi: float, k: Kernels) -> Tensor:
        s = v if t is None else _learned_scale(v, t, min_val)
        out, y = k.act_fwd(x, s, lo, hi)
        ctx.lo, ctx.hi, ctx.k = lo, hi, k
        ctx.save_for_backward(y, s, v, t)
        return out

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, ...]:
        y, s, v, t = ctx.saved_tensors
        gv = None
        if ctx.needs_input_grad[1]:
            gx, ga, gb = ctx.k.act_bwd(g, y, s, ctx.lo, ctx.hi)
            gs = ga.sum_to_size(s.shape) - gb.sum_to_size(s.shape)
            gv = _scale_grad(gs, s, v, t)
        else:
            gx = ctx.k.act_bwd_x(g, y, s, ctx.lo, ctx.hi)
        return gx, gv, None, None, None, None, None


class WeightQuant(Function):
    """Brevitas' ``IntQuant`` of a weight (``TensorClampSte``: straight through the clamp):
    clamp(round(w/s), lo, hi)·s; gradients (g·s)/s for w and Σ g·q − Σ (g·s)·(w/s)/s for s."""

    @staticmethod
    def forward(ctx, w: Tensor, s: Tensor, lo: float, hi: float) -> Tensor:
        y = w / s
        q = torch.clamp(torch.round(y), lo, hi)
        ctx.save_for_backward(y, q, s)
        return q * s

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor | None, None, None]:
        y, q, s = ctx.saved_tensors
        gm = g * s
        gs = None
        if ctx.needs_input_grad[1]:
            gs = (g * q).sum_to_size(s.shape) - (gm * (y / s)).sum_to_size(s.shape)
        return gm / s, gs, None, None


class PReLUFn(Function):
    """``F.prelu`` with a per-channel weight; the backward without the slow CPU kernel.

    grad_x = g (x > 0) or w·g (x ≤ 0), grad_w = Σ x·g over x ≤ 0, reduced by the same
    ``sum_to_size`` as autograd; the selections are exact (one operand is always +0).
    """

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, k: Kernels) -> Tensor:
        wv = w.view((1, -1) + (1,) * (x.dim() - 2))
        ctx.save_for_backward(x, wv)
        ctx.w_shape, ctx.k = w.shape, k
        return torch.nn.functional.prelu(x, w)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor, None]:
        x, wv = ctx.saved_tensors
        gx, gw = ctx.k.prelu_bwd(g, x, wv)
        return gx, gw.sum_to_size(wv.shape).view(ctx.w_shape), None
