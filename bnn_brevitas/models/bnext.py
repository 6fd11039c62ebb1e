# SPDX-License-Identifier: BSD-3-Clause
"""The BNext family (Guo et al. 2022) in Brevitas, sizes as data and ablations as config fields.

===========  =====================================  =========  ============================
name         widths (stem, block 1, stages)          input      notes
===========  =====================================  =========  ============================
bnext_t      32, 64, 128×2, 256×2, 512×6, 1024×2    224² RGB   ImageNet, 1000 classes
bnext_s      48, 96, 192×2, 384×2, 768×6, 1536×2    224² RGB
bnext_m      48, 96, 192×4, 384×4, 768×8, 1536×4    224² RGB
bnext_l      64, 128, 256×4, 512×4, 1024×16, 2048×4 224² RGB   the README's "Large"
bnext_18     ResNet-18 layout, 64/128/256/512       224² RGB   7×7 stem, FP 1×1 shortcuts
bnext_nano   16, 32, 64×2, 128×2                    28² gray   Fashion-MNIST, 6-bit trunk
bnext_micro  32, 64, 128×2, 256×2, 512×2            32² RGB    CIFAR-10 scale
===========  =====================================  =========  ============================

Each name has a ``*_hw`` twin with ``hw=True`` (see ``blocks.py`` for what hw mode changes).

Layout rules of the official code: a block's stride is 2 exactly when its width differs from
the previous block's, except block 1; even-indexed blocks use the ELM attention module as their
3×3 module, the others ``FFN_3x3``; where the width doubles, two 1×1 modules on the same input
are concatenated. The stem has no activation; the head is PReLU → GAP → FC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import quant as q
from .blocks import PReLU, Precision, Processor, check_input, identity_or


@dataclass(frozen=True)
class BNextConfig:
    """Architecture and precision of one BNext network. Every field is a valid override."""

    #: per-block output widths; entry 0 is the stem
    widths: tuple[int, ...]
    #: "bnext" (MobileNet/ReActNet layout) or "bnext18" (ResNet-18 layout of the official code)
    layout: str = "bnext"
    in_channels: int = 3
    img_size: int = 224
    num_classes: int = 1000
    stem_kernel: int = 3
    stem_stride: int = 2
    #: 3×3/2 max pool after the stem (BNext-18)
    stem_pool: bool = False
    #: ELM attention on every other block (ablation switch of the official code)
    elm_attention: bool = True
    #: infor-recoupling (α-mix + squeeze-and-excitation gate) in every module
    infor_recoupling: bool = True
    #: FPGA-friendly arithmetic, see ``blocks.py``
    hw: bool = False
    se_ratio: int = 8
    stem_bits: int = 8
    head_bits: int = 8
    trunk_bits: int = 4
    act_bits: int = 4
    gate_bits: int = 4
    se_bits: int = 4
    gap_bits: int = 4
    #: padding of the binary 3×3 convs: "auto" (hw → minus_one, faithful → zero), "zero", "minus_one"
    binary_pad: str = "auto"
    #: binary weights with BNext's progressive (temperature) binarization while training
    progressive: bool = True
    family: str = field(default="bnext", repr=False)

    def __post_init__(self) -> None:
        if self.layout not in ("bnext", "bnext18"):
            raise ValueError(f"layout must be 'bnext' or 'bnext18', got {self.layout!r}")
        if self.binary_pad not in ("auto", "zero", "minus_one"):
            raise ValueError(
                f"binary_pad must be one of 'auto', 'zero', 'minus_one', got {self.binary_pad!r}"
            )
        for name in ("stem_bits", "head_bits", "trunk_bits", "act_bits", "gate_bits", "se_bits",
                     "gap_bits"):
            bits = getattr(self, name)
            if not isinstance(bits, int) or not 2 <= bits <= 8:
                raise ValueError(f"{name} must be an integer in [2, 8], got {bits!r}")
        if self.img_size < 8 or self.in_channels < 1 or self.num_classes < 2:
            raise ValueError("img_size must be ≥ 8, in_channels ≥ 1 and num_classes ≥ 2")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.img_size, self.img_size)

    def precision(self) -> Precision:
        pad = self.binary_pad
        if pad == "auto":
            pad = "minus_one" if self.hw else "zero"
        return Precision(self.hw, self.trunk_bits, self.act_bits, self.gate_bits, self.se_bits,
                         self.gap_bits, pad, self.progressive)


class Stem(nn.Module):
    """8-bit input → k-bit conv → BN (no activation, as in the official code) [→ trunk quant]."""

    def __init__(self, cfg: BNextConfig, trunk: nn.Module) -> None:
        super().__init__()
        k = cfg.stem_kernel
        self.input_quant = q.input_quant()
        self.conv = q.int_conv2d(cfg.in_channels, cfg.widths[0], k, cfg.stem_bits,
                                 stride=cfg.stem_stride, padding=k // 2, input_bits=8)
        self.bn = nn.BatchNorm2d(cfg.widths[0])
        self.trunk = trunk
        self.pool = nn.MaxPool2d(3, 2, 1) if cfg.stem_pool else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.trunk(self.bn(self.conv(self.input_quant(x))))
        return self.pool(x) if self.pool is not None else x


class Head(nn.Module):
    """PReLU → [hw: k-bit quant] → GAP → 8-bit quant → 8-bit FC."""

    def __init__(self, channels: int, num_classes: int, bits: int, hw: bool) -> None:
        super().__init__()
        self.act = PReLU(channels, nonneg=hw)
        self.pre_quant = identity_or(hw, q.signed_act, bits)
        self.gap_quant = q.signed_act(bits)
        self.fc = q.int_linear(channels, num_classes, bits, bias=not hw, input_bits=bits)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(self.pre_quant(self.act(x)), 1)
        return self.fc(self.gap_quant(x.flatten(1)))


class BNextBlock(nn.Module):
    """A 3×3 module followed by one 1×1 module, or two concatenated ones where the width doubles."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, elm: bool, cfg: BNextConfig,
                 trunk: nn.Module | None, trunk_in: nn.Module | None) -> None:
        super().__init__()
        p, ir = cfg.precision(), cfg.infor_recoupling
        kw = dict(recouple=ir, trunk=trunk, se_ratio=cfg.se_ratio)
        self.conv3x3 = Processor(in_ch, in_ch, 3, stride, p, elm=elm, trunk_in=trunk_in, **kw)
        n_branches = out_ch // in_ch
        if n_branches * in_ch != out_ch or n_branches not in (1, 2):
            raise ValueError(f"block width {in_ch}→{out_ch}: must stay equal or double")
        self.conv1x1 = nn.ModuleList(
            Processor(in_ch, in_ch, 1, 1, p, elm=False, **kw) for _ in range(n_branches)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3x3(x)
        if len(self.conv1x1) == 1:
            return self.conv1x1[0](x)
        return torch.cat([m(x) for m in self.conv1x1], dim=1)


class BNext18Block(nn.Module):
    """BNext-18: ELM attention module (3×3, in→out) then an FFN_3x3 module (out→out)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, cfg: BNextConfig,
                 trunk: nn.Module | None, trunk_in: nn.Module | None) -> None:
        super().__init__()
        p = cfg.precision()
        shortcut = None
        if stride != 1 or in_ch != out_ch:
            if cfg.hw:
                conv = q.int_conv2d(in_ch, out_ch, 1, cfg.stem_bits, input_bits=cfg.trunk_bits)
                shortcut = nn.Sequential(nn.AvgPool2d(stride, stride), conv,
                                         nn.BatchNorm2d(out_ch), trunk)
            else:
                shortcut = nn.Sequential(nn.AvgPool2d(stride, stride),
                                         nn.Conv2d(in_ch, out_ch, 1, bias=False),
                                         nn.BatchNorm2d(out_ch))
        kw = dict(recouple=cfg.infor_recoupling, trunk=trunk, se_ratio=cfg.se_ratio,
                  mix_from_residual=True)
        self.attention = Processor(in_ch, out_ch, 3, stride, p, elm=cfg.elm_attention,
                                   shortcut=shortcut, trunk_in=trunk_in, **kw)
        self.ffn = Processor(out_ch, out_ch, 3, 1, p, elm=False, **kw)

    def forward(self, x: Tensor) -> Tensor:
        return self.ffn(self.attention(x))


class BNext(nn.Module):
    """A BNext network built from a :class:`BNextConfig`. Input: images in [0, 1], NCHW."""

    def __init__(self, cfg: BNextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        trunk_bits = cfg.trunk_bits
        self.trunks = nn.ModuleList()  # hw: one shared trunk quantizer per resolution level

        def new_trunk() -> nn.Module | None:
            if not cfg.hw:
                return None
            self.trunks.append(q.signed_act(trunk_bits))
            return self.trunks[-1]

        trunk = new_trunk()
        self.stem = Stem(cfg, trunk if trunk is not None else nn.Identity())
        self.blocks = nn.ModuleList()
        w = cfg.widths
        if cfg.layout == "bnext":
            for i in range(1, len(w)):
                stride = 2 if (i > 1 and w[i] != w[i - 1]) else 1
                trunk_in = trunk
                if stride == 2:
                    trunk = new_trunk()
                elm = cfg.elm_attention and i % 2 == 0
                self.blocks.append(BNextBlock(w[i - 1], w[i], stride, elm, cfg, trunk, trunk_in))
        else:
            for i in range(1, len(w)):
                stride = 2 if w[i] != w[i - 1] else 1
                trunk_in = trunk
                if stride == 2:
                    trunk = new_trunk()
                self.blocks.append(BNext18Block(w[i - 1], w[i], stride, cfg, trunk, trunk_in))
        self.head = Head(w[-1], cfg.num_classes, cfg.head_bits, cfg.hw)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.cfg.input_shape)
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)
