# SPDX-License-Identifier: BSD-3-Clause
"""FINN's reference network CNV-W1A1, taken unchanged from ``brevitas_examples.bnn_pynq``.

The upstream class is used as is (6 binary 3×3 convs without padding, 2 max pools, 3 binary FCs,
an 8-bit Q1.7 input quantizer and a final ``TensorNorm``). The only adaptation is for inputs
smaller than 32×32: the first convolution gets zero padding ``(32 - img_size) / 2``, so a
28×28 image follows exactly the 30×30 → … → 1×1 geometry of the 32×32 original.
Inputs are images in [0, 1] (the upstream forward maps them to [-1, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas_examples.bnn_pynq.models.CNV import CNV
from torch import Tensor, nn

from .. import _compat  # noqa: F401  (torch 2.13 shim for brevitas, see _compat)
from .blocks import check_input


@dataclass(frozen=True)
class CNVConfig:
    """Configuration of the CNV baseline. Every field is a valid override."""

    in_channels: int = 3
    img_size: int = 32
    num_classes: int = 10
    weight_bits: int = 1
    act_bits: int = 1
    in_bits: int = 8
    family: str = field(default="cnv", repr=False)
    hw: bool = field(default=True, repr=False)  # CNV is FINN-ready as defined upstream

    def __post_init__(self) -> None:
        if self.img_size > 32 or self.img_size < 28 or (32 - self.img_size) % 2:
            raise ValueError(f"CNV supports img_size 28, 30 or 32, got {self.img_size}")
        if not 1 <= self.weight_bits <= 8 or not 1 <= self.act_bits <= 8:
            raise ValueError("weight_bits and act_bits must be in [1, 8]")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.img_size, self.img_size)


class CNVNet(nn.Module):
    """Thin wrapper around the upstream CNV that records the intended bit widths."""

    def __init__(self, cfg: CNVConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = CNV(num_classes=cfg.num_classes, weight_bit_width=cfg.weight_bits,
                       act_bit_width=cfg.act_bits, in_bit_width=cfg.in_bits, in_ch=cfg.in_channels)
        pad = (32 - cfg.img_size) // 2
        first = True
        for m in self.net.modules():
            if isinstance(m, (QuantConv2d, QuantLinear)):
                m.expected_weight_bits = cfg.weight_bits
                m.input_bits = cfg.in_bits if first else cfg.act_bits
                if first and pad:
                    m.padding = (pad, pad)
                first = False
            elif isinstance(m, QuantIdentity):
                m.expected_act_bits = cfg.act_bits
        self.net.conv_features[0].expected_act_bits = cfg.in_bits

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.cfg.input_shape)
        return self.net(x)
