# SPDX-License-Identifier: BSD-3-Clause
"""Every quantizer of the project, defined once.

Models never rely on a Brevitas default (``QuantConv2d`` silently defaults to 8-bit weights):
each quantized layer is built through the factories at the bottom of this module, which always
pass an explicit quantizer and bit width, and record the intended precision on the module as
``expected_weight_bits`` / ``expected_act_bits`` so a test can check what Brevitas really did.

Precision map (see ``bnn_brevitas.models.bnext`` for where each is used):

============================  ===========================================  ==================
quantizer                     meaning                                      FINN lowering
============================  ===========================================  ==================
``BinaryWeightQuant``         ±1 weights, scale exactly 1                   XNOR MVAU weights
``ProgressiveBinaryWeight``   same, plus BNext's soft clamp(w/τ) while       (exported as ±1)
                              training with temperature τ > 0
``BinaryActQuant``            sign(x) ∈ {−1, +1}, scale exactly 1 (FINN      1-threshold
                              rejects any other bipolar scale)              MultiThreshold
``InputQuant``                uint8 pixels, scale exactly 1/255            UINT8 graph input
``IntWeightPerChannel``       k-bit narrow signed weights, per channel      MVAU weights
``IntWeightPerTensor``        k-bit narrow signed weights, per tensor       MVAU weights
``SignedActQuant``            k-bit signed activations, learned scale       MultiThreshold
``UnsignedActQuant``          k-bit unsigned activations, learned scale     MultiThreshold
``GateQuant``                 k-bit unsigned on [0, 1), constant scale 2^-k MultiThreshold
============================  ===========================================  ==================
"""

from __future__ import annotations

import torch
from brevitas.core.bit_width import BitWidthConst
from brevitas.core.function_wrapper import InplaceTensorClampSte
from brevitas.core.scaling import ScalingImplType
from brevitas.core.utils import StatelessBuffer
from brevitas.function.ops_ste import binary_sign_ste
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import Tensor, nn

from . import _compat  # noqa: F401  (torch 2.13 shim for brevitas, see _compat)

__all__ = [
    "BinaryWeightQuant",
    "ProgressiveBinaryWeightQuant",
    "BinaryActQuant",
    "InputQuant",
    "IntWeightPerChannel",
    "IntWeightPerTensor",
    "SignedActQuant",
    "UnsignedActQuant",
    "GateQuant",
    "ProgressiveBinaryQuant",
    "binary_conv2d",
    "int_conv2d",
    "int_linear",
    "binary_act",
    "input_quant",
    "signed_act",
    "unsigned_act",
    "gate_act",
    "set_binarization_temperature",
]


class ProgressiveBinaryQuant(nn.Module):
    """Binary weight quantizer with BNext's progressive binarization.

    Forward value: ``sign(w)`` (exactly ±scale) in eval mode or when ``temperature == 0``;
    ``clamp(w / τ, -1, 1) · scale`` while training with ``τ = temperature > 0``. The gradient is
    the identity inside the clip range in both cases (BNext's straight-through estimator).
    Latent weights are clamped in place to ±scale, like Brevitas' binary weight quantizer.

    The export path always sees the eval-mode value, so an exported model is exactly binary
    whatever the temperature was.
    """

    def __init__(self, scaling_impl: nn.Module, tensor_clamp_impl: nn.Module = None) -> None:
        super().__init__()
        self.scaling_impl = scaling_impl
        self.tensor_clamp_impl = tensor_clamp_impl or InplaceTensorClampSte()
        self.bit_width = BitWidthConst(1)
        self.zero_point = StatelessBuffer(torch.tensor(0.0))
        self.register_buffer("temperature", torch.zeros(()))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        scale = self.scaling_impl(x)
        y = self.tensor_clamp_impl(x, -scale, scale)
        if self.training and bool(self.temperature > 0):
            soft = (y / (self.temperature * scale)).clamp(-1.0, 1.0) * scale
            out = soft.detach() - y.detach() + y
        else:
            out = binary_sign_ste(y) * scale
        return out, scale, self.zero_point(), self.bit_width()


class BinaryWeightQuant(SignedBinaryWeightPerTensorConst):
    """±1 weights (scale 1), latent weights clamped in place to [-1, 1]."""

    scaling_const = 1.0


class ProgressiveBinaryWeightQuant(BinaryWeightQuant):
    """``BinaryWeightQuant`` with a temperature buffer for progressive binarization."""

    tensor_quant = ProgressiveBinaryQuant


class BinaryActQuant(SignedBinaryActPerTensorConst):
    """sign(x) with outputs ±1 and scale exactly 1, as FINN's bipolar datatype requires."""

    min_val = -1.0
    max_val = 1.0


class InputQuant(Uint8ActPerTensorFloat):
    """8-bit unsigned input at the constant scale 1/255: exactly the uint8 pixel grid."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0
    max_val = 1.0
    bit_width = 8


class IntWeightPerChannel(Int8WeightPerChannelFloat):
    """Narrow signed k-bit weights, per-output-channel float scale (``bit_width`` overridden)."""


class IntWeightPerTensor(Int8WeightPerTensorFloat):
    """Narrow signed k-bit weights, one float scale per tensor (``bit_width`` overridden)."""


#: training steps of percentile statistics before an activation scale becomes a learned
#: parameter. Brevitas uses 300; its statistics are an exponential moving average with
#: momentum 0.1 (a ~10-step window), so 30 steps already converge, and the percentile
#: (``kthvalue``) makes those steps ~1.7× slower than the rest on the CPU.
ACT_STATS_STEPS = 30


class SignedActQuant(Int8ActPerTensorFloat):
    """Signed k-bit activations, per-tensor scale initialised from runtime statistics."""

    collect_stats_steps = ACT_STATS_STEPS


class UnsignedActQuant(Uint8ActPerTensorFloat):
    """Unsigned k-bit activations, per-tensor scale initialised from runtime statistics."""

    collect_stats_steps = ACT_STATS_STEPS


class GateQuant(Uint8ActPerTensorFloat):
    """Unsigned k-bit gate on [0, 1) with the constant scale 2^-k: a quantized hard-sigmoid.

    The grid is k/2^k (not k/(2^k - 1)) so that ½, the gate of a zero input, is a grid point:
    on a k/15 grid it is an exact rounding tie, where Brevitas (half to even) and FINN's
    thresholds (half up) disagree. ``gate_act`` sets the constant for the bit width."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 15 / 16
    max_val = 15 / 16


# --------------------------------------------------------------------------------------------
# Factories. Every quantized layer of every model is created here.


def _tag(module: nn.Module, weight_bits: int | None = None, act_bits: int | None = None,
         input_bits: int | None = None):
    """Record the intended precision: ``expected_weight_bits`` / ``expected_act_bits`` are checked
    against Brevitas by the tests; ``input_bits`` (the bit width of the layer's input, None for
    float) is what the cost metrics use."""
    if weight_bits is not None:
        module.expected_weight_bits = weight_bits
    if act_bits is not None:
        module.expected_act_bits = act_bits
    if input_bits is not None:
        module.input_bits = input_bits
    return module


def binary_conv2d(
    in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
    progressive: bool = True,
) -> QuantConv2d:
    """Binary-weight convolution (no bias, scale 1). Its input must be binary too."""
    quant = ProgressiveBinaryWeightQuant if progressive else BinaryWeightQuant
    conv = QuantConv2d(
        in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False, weight_quant=quant
    )
    return _tag(conv, weight_bits=1, input_bits=1)


def int_conv2d(
    in_ch: int, out_ch: int, kernel_size: int, bits: int, stride: int = 1, padding: int = 0,
    per_channel: bool = True, input_bits: int | None = None,
) -> QuantConv2d:
    """k-bit weight convolution without bias (a following BN or bias module absorbs it).

    ``input_bits`` documents the bit width of the (already quantized) input, for the metrics."""
    quant = IntWeightPerChannel if per_channel else IntWeightPerTensor
    conv = QuantConv2d(
        in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False,
        weight_quant=quant, weight_bit_width=bits,
    )
    return _tag(conv, weight_bits=bits, input_bits=input_bits)


def int_linear(in_features: int, out_features: int, bits: int, bias: bool = False,
               input_bits: int | None = None) -> QuantLinear:
    """k-bit weight fully-connected layer; a bias, if any, is left in float (output scaling)."""
    fc = QuantLinear(
        in_features, out_features, bias=bias, weight_quant=IntWeightPerTensor,
        weight_bit_width=bits, bias_quant=None,
    )
    return _tag(fc, weight_bits=bits, input_bits=input_bits)


def binary_act(return_quant_tensor: bool = False) -> QuantIdentity:
    """sign(x) → {−1, +1}."""
    q = QuantIdentity(act_quant=BinaryActQuant, return_quant_tensor=return_quant_tensor)
    return _tag(q, act_bits=1)


def input_quant() -> QuantIdentity:
    """Quantize an input in [0, 1] to the uint8 grid (exact for pixel/255)."""
    return _tag(QuantIdentity(act_quant=InputQuant, return_quant_tensor=False), act_bits=8)


def signed_act(bits: int, return_quant_tensor: bool = False) -> QuantIdentity:
    """Signed k-bit activation quantizer (trunk, residual, GAP and head quantizers)."""
    q = QuantIdentity(
        act_quant=SignedActQuant, bit_width=bits, return_quant_tensor=return_quant_tensor
    )
    return _tag(q, act_bits=bits)


def unsigned_act(bits: int) -> QuantReLU:
    """ReLU followed by an unsigned k-bit quantizer."""
    return _tag(QuantReLU(act_quant=UnsignedActQuant, bit_width=bits), act_bits=bits)


def gate_act(bits: int) -> QuantReLU:
    """clamp(x, 0, 1 − 2^-k) on the grid 2^-k: the quantized hard-sigmoid."""
    top = (2**bits - 1) / 2**bits
    return _tag(QuantReLU(act_quant=GateQuant, bit_width=bits, scaling_const=top, max_val=top),
                act_bits=bits)


def set_binarization_temperature(model: nn.Module, temperature: float) -> int:
    """Set τ on every progressive binary weight quantizer of ``model``; return how many."""
    n = 0
    for m in model.modules():
        if isinstance(m, ProgressiveBinaryQuant):
            m.temperature.fill_(float(temperature))
            n += 1
    return n
