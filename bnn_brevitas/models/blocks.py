# SPDX-License-Identifier: BSD-3-Clause
"""Building blocks of the BNext family: the Processor module and its parts.

One ``Processor`` implements every BNext module kind (``FFN_3x3``, ``FFN_1x1`` and the ELM
``Attention`` module of the official code) in two numeric modes:

* **faithful** — the official arithmetic: float BN/PReLU/mix/sigmoid SE gate/residual trunk; only
  the binary convolution, its sign input and the stem/head are quantized.
* **hw** — every real-valued operation replaced by one a FINN dataflow implements exactly
  (the hardware operator each targets is in brackets):

  ===========================  ====================================================================
  part                         hw-mode form
  ===========================  ====================================================================
  residual trunk               signed k-bit quantizer, **one instance per resolution level**, shared
                               by every tensor that meets at an add or concat [MultiThreshold;
                               integer ElementwiseAdd; StreamingConcat]
  bias + sign                  bias add then sign [1-threshold MultiThreshold → BIPOLAR]
  binary conv padding          −1 (the bipolar 0-bit) instead of 0 [XNOR MVAU + FMPadding]
  BN₁ + PReLU₂                 PReLU slope clamped ≥ 0, then a k-bit quantizer: a monotone per-channel
                               function, so the three fold into MVAU thresholds
  α-mix → SE                   GAP is linear, so GAP(α·X + (1−α)·x) = FC-mix of [GAP(X), GAP(x)]:
                               two quantized GAPs, concatenated, and FC₁ on 2C inputs carries the
                               fixed-point mixing coefficients in its k-bit weights
                               [GlobalAccPool, StreamingConcat, MVAU]
  SE FCs                       k-bit weights, quantized ReLU [MVAU + thresholds]
  sigmoid gate                 quantized hard-sigmoid clamp(y/6 + ½, 0, 1) on a k-bit grid
                               [thresholds]
  gate / ELM multiplies        products of quantized operands [ElementwiseMul, integer]
  BN₂ + residual add           BN₂ with γ ≥ 0 (monotone), the shared trunk quantizer, add,
                               requantize [thresholds, ElementwiseAdd]
  2×2 average pool             plain average of trunk-quantized values, requantized
                               [sum pool + thresholds]
  ===========================  ====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import quant as q
from ..errors import UserError


def check_input(x: Tensor, shape: tuple[int, ...]) -> None:
    """Raise a clear ``UserError`` unless ``x`` is an (N, *shape) image batch."""
    if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != tuple(shape):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise UserError(f"expected an input batch of shape (N, {', '.join(map(str, shape))}) "
                        f"with values in [0, 1], got {got}")


class LearnableBias(nn.Module):
    """Per-channel additive bias (RSign-style shift before the sign)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias


class PReLU(nn.Module):
    """Per-channel PReLU; with ``nonneg`` the slope is clamped to ≥ 0 so the function is monotone.

    ``nonneg`` (hw mode) also changes the initial slope from PyTorch's 0.25 to 0.2. A PReLU whose
    input and output share one quantizer grid maps integer k to round(a·k); with a dyadic slope
    such as 0.25 every k ≡ 2 (mod 4) lands exactly on a rounding tie, where Brevitas (half to
    even) and FINN's thresholds (half up) disagree. 0.2·k is never a half-integer.
    """

    def __init__(self, channels: int, nonneg: bool = False) -> None:
        super().__init__()
        self.nonneg = nonneg
        self.weight = nn.Parameter(torch.full((channels,), 0.2 if nonneg else 0.25))

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.clamp(min=0.0) if self.nonneg else self.weight
        return F.prelu(x, w)


class PositiveBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose affine scale γ is clamped to ≥ 1e-4 (hw mode's BN₂).

    BN₂ follows an elementwise multiply, so a negative per-channel scale cannot be moved into
    any weights, and a decreasing function of the input is not a MultiThreshold; with γ > 0
    (and running variance > 0) BN₂ + quantizer is a monotone step function, i.e. thresholds.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight.clamp(min=1e-4),
                            self.bias, self.training, self.momentum, self.eps)


class Scale(nn.Module):
    """Multiply by a Python constant (exports as a constant Mul that FINN absorbs)."""

    def __init__(self, factor: float, offset: float = 0.0) -> None:
        super().__init__()
        self.factor, self.offset = factor, offset

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor + self.offset


@dataclass(frozen=True)
class Precision:
    """Bit widths and switches shared by all modules of one network."""

    hw: bool
    trunk_bits: int
    act_bits: int
    gate_bits: int
    se_bits: int
    gap_bits: int
    binary_pad: str  # "zero" | "minus_one"
    progressive: bool


def identity_or(hw: bool, factory, *args) -> nn.Module:
    """``factory(*args)`` in hw mode, ``nn.Identity()`` in faithful mode."""
    return factory(*args) if hw else nn.Identity()


class SqueezeExcite(nn.Module):
    """Infor-recoupling gate: a = gate(FC₂(ReLU(FC₁(GAP(mix))))).

    Faithful: mix = α·src + (1−α)·x at full resolution, float FCs with bias, sigmoid.
    hw: FC₁ acts on the concatenation of the two quantized GAPs (see the module docstring).
    """

    def __init__(self, channels: int, ratio: int, p: Precision) -> None:
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.hw = p.hw
        if p.hw:
            self.gap_quant = q.signed_act(p.gap_bits)  # shared by both GAPs (concat needs one scale)
            self.fc1 = q.int_conv2d(2 * channels, hidden, 1, p.se_bits, per_channel=False,
                                   input_bits=p.gap_bits)
            self.bias1 = LearnableBias(hidden)
            self.relu = q.unsigned_act(p.act_bits)
            self.fc2 = q.int_conv2d(hidden, channels, 1, p.se_bits, per_channel=False,
                                   input_bits=p.act_bits)
            self.bias2 = LearnableBias(channels)
            self.hard_sigmoid = Scale(1.0 / 6.0, 0.5)
            self.gate = q.gate_act(p.gate_bits)
        else:
            self.alpha = nn.Parameter(torch.full((1, channels, 1, 1), 0.5))
            self.fc1 = nn.Conv2d(channels, hidden, 1)
            self.relu = nn.ReLU()
            self.fc2 = nn.Conv2d(hidden, channels, 1)
            self.gate = nn.Sigmoid()

    def forward(self, src: Tensor, x: Tensor) -> Tensor:
        if self.hw:
            a = self.gap_quant(F.adaptive_avg_pool2d(src, 1))
            b = self.gap_quant(F.adaptive_avg_pool2d(x, 1))
            h = self.relu(self.bias1(self.fc1(torch.cat([a, b], dim=1))))
            return self.gate(self.hard_sigmoid(self.bias2(self.fc2(h))))
        if self.training:
            self.alpha.data.clamp_(0.0, 1.0)
        mix = self.alpha * src + (1.0 - self.alpha) * x
        h = self.relu(self.fc1(F.adaptive_avg_pool2d(mix, 1)))
        return self.gate(self.fc2(h))


class Processor(nn.Module):
    """One BNext module: bias → sign → binary conv → BN → PReLU, recoupled and added to a residual.

    Args:
        in_ch, out_ch: channels (equal except in BNext-18's first module of a stage).
        kernel: 3 or 1. stride: 1 or 2.
        elm: ELM attention (the official ``Attention`` module): residual R = PReLU₁(X), and the
            branch is multiplied by R before BN₂.
        recouple: the infor-recoupling SE gate.
        trunk: the shared trunk quantizer of the output resolution level (hw), else None.
        trunk_in: the trunk quantizer of the input level (differs from ``trunk`` only in a
            stride-2 module). The ELM residual is quantized with it *before* the 2×2 pool, so the
            pooled value (a multiple of s_in/4) is requantized to a different scale s_out: with
            one scale on both sides, every other pooled value would be an exact rounding tie,
            where Quant (half-to-even) and FINN's thresholds (half-up) disagree.
        shortcut: optional module applied to the residual after pooling (BNext-18's 1×1 conv);
            it replaces the 2×2 average pool.
        mix_from_residual: BNext-18 mixes the processed residual, BNext the (pooled) input.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, p: Precision, *, elm: bool,
        recouple: bool, trunk: nn.Module | None, trunk_in: nn.Module | None = None,
        se_ratio: int = 8,
        shortcut: nn.Module | None = None, mix_from_residual: bool = False,
    ) -> None:
        super().__init__()
        self.stride, self.kernel, self.elm, self.recouple = stride, kernel, elm, recouple
        self.hw, self.mix_from_residual = p.hw, mix_from_residual
        self.minus_one_pad = kernel > 1 and p.binary_pad == "minus_one"
        identity = nn.Identity()
        # shared quantizers are owned by the network, so they are not registered here
        self._trunk = [trunk or identity, trunk_in or trunk or identity]

        self.move = LearnableBias(in_ch)
        self.sign = q.binary_act()
        pad = 0 if self.minus_one_pad else kernel // 2
        self.binary_conv = q.binary_conv2d(in_ch, out_ch, kernel, stride, pad, p.progressive)
        self.norm1 = nn.BatchNorm2d(out_ch)
        self.act2 = PReLU(out_ch, nonneg=p.hw)
        self.act_quant = identity_or(p.hw, q.signed_act, p.act_bits)
        self.act1 = PReLU(in_ch, nonneg=p.hw) if elm else None
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 and shortcut is None else None
        self.shortcut = shortcut
        self.se = SqueezeExcite(out_ch, se_ratio, p) if recouple else None
        bn2 = PositiveBatchNorm2d if p.hw else nn.BatchNorm2d
        self.norm2 = bn2(out_ch) if (elm or recouple) else None

    @property
    def trunk(self) -> nn.Module:
        return self._trunk[0]

    @property
    def trunk_in(self) -> nn.Module:
        return self._trunk[1]

    def _residual(self, x: Tensor) -> Tensor:
        r = x
        if self.act1 is not None:
            r = self.trunk_in(self.act1(r))
        if self.pool is not None:
            r = self.trunk(self.pool(r))
        if self.shortcut is not None:
            r = self.shortcut(r)
        return r

    def forward(self, inp: Tensor) -> Tensor:
        r = self._residual(inp)
        x = self.sign(self.move(inp))
        if self.minus_one_pad:
            p = self.kernel // 2
            x = F.pad(x, (p, p, p, p), value=-1.0)
        x = self.act_quant(self.act2(self.norm1(self.binary_conv(x))))
        if self.se is not None:
            if self.mix_from_residual:
                src = r
            elif self.hw or self.pool is None:
                src = inp  # hw: GAP(AvgPool2(X)) == GAP(X) for even sizes, so no pooling needed
            else:
                src = self.pool(inp)
            x = x * self.se(src, x)
        if self.elm:
            x = x * r
        if self.norm2 is not None:
            x = self.norm2(x)
        return self.trunk(self.trunk(x) + r)
