# SPDX-License-Identifier: BSD-3-Clause
"""``EltwiseAdd_rtl`` / ``EltwiseMul_rtl`` / ``EltwiseSub_rtl``: FINN custom ops for the project's
RTL elementwise unit.

Each is FINN's ``ElementwiseAdd`` / ``ElementwiseMul`` / ``ElementwiseSub`` (same attributes,
shapes, folding, cycle model and Python execution) with an RTL backend that instantiates
``hdl/bnn_elementwise.sv`` instead of FINN's HLS ``ElementwiseBinaryOperation_hls``. Supported:
both operands streamed (``lhs_style`` and ``rhs_style`` "input"), integer datatypes, lhs of the
output shape and rhs either of the output shape or a per-channel vector broadcast over all
other axes (``[1, 1, 1, C]`` against ``[1, H, W, C]``: the squeeze-excitation gate).

The names avoid FINN's ``Elementwise*_rtl`` so that a future FINN RTL backend cannot collide.
The ops live in FINN's RTL domain (:func:`flows.rtl.registry.register_custom_ops`); node
attributes, execution and the zero BRAM/URAM estimates come from
:class:`flows.rtl.unit.RTLUnit`.
"""

from __future__ import annotations

import math

import numpy as np
from finn.custom_op.fpgadataflow.elementwise_binary import (
    ElementwiseAdd,
    ElementwiseMul,
    ElementwiseSub,
)
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType

from bnn_brevitas.errors import ToolkitError

from . import elementwise as ew
from .unit import RTLUnit, wrapper_verilog

#: LUTs per output bit of an adder/subtractor, and of the handshake; fitted to Yosys
#: ``synth_xilinx -family xcup`` counts of the unit (a multiplier lane maps to one DSP48E2)
LUT_PER_ADD_BIT = 1.0
LUT_HANDSHAKE = 2


def broadcast_kind(lhs_shape, rhs_shape, out_shape) -> str | None:
    """"same" (rhs of the output shape), "channel" (rhs a per-channel vector broadcast over all
    other axes of the output) or None (anything else) — for an lhs of the output shape."""
    lhs, rhs, out = (list(map(int, s)) for s in (lhs_shape, rhs_shape, out_shape))
    if lhs != out:
        return None
    if rhs == out:
        return "same"
    if len(rhs) <= len(out) and rhs[-1] == out[-1] and all(d == 1 for d in rhs[:-1]):
        return "channel"
    return None


class _EltwiseRTL(RTLUnit):
    """The RTL backend shared by the elementwise ops (mixed in before FINN's op class)."""

    MODULE = ew.MODULE

    OP_NAME = ""  # "add" | "mul" | "sub"

    # -- shape of the RTL instance --------------------------------------------------------
    def unsupported_reason(self) -> str | None:
        """Why the node cannot use the RTL unit, or None."""
        kind = type(self).__name__
        if self.get_nodeattr("lhs_style") != "input" or self.get_nodeattr("rhs_style") != "input":
            return (f"{kind} needs both operands streamed (lhs_style/rhs_style 'input'), got "
                    f"{self.get_nodeattr('lhs_style')!r}/{self.get_nodeattr('rhs_style')!r}")
        if self.get_nodeattr("mlo_max_iter"):
            return f"{kind} does not support loop-rolled layers (mlo_max_iter)"
        dts = {"lhs": self.lhs_dtype, "rhs": self.rhs_dtype, "out": self.out_dtype}
        for which, dt in dts.items():
            if not dt.is_integer() or dt == DataType["BIPOLAR"]:
                return f"{kind} needs integer datatypes, got {which}_dtype {dt.name}"
        if broadcast_kind(self.lhs_shape, self.rhs_shape, self.out_shape) is None:
            return (f"{kind} needs lhs of the output shape and rhs of the output shape or "
                    f"[1,..,1,C]; got lhs {list(self.lhs_shape)}, rhs {list(self.rhs_shape)}, "
                    f"out {list(self.out_shape)}")
        c, pe = int(self.out_shape[-1]), self.pe
        if c % pe:
            return f"{kind}: PE={pe} must divide the channels C={c}"
        lo, hi = ew.output_range(self.OP_NAME, (int(self.lhs_dtype.min()),
                                                int(self.lhs_dtype.max())),
                                 (int(self.rhs_dtype.min()), int(self.rhs_dtype.max())))
        if lo < self.out_dtype.min() or hi > self.out_dtype.max():
            return (f"{kind}: out_dtype {self.out_dtype.name} cannot hold {self.lhs_dtype.name} "
                    f"{self.OP_NAME} {self.rhs_dtype.name} (range {lo}..{hi})")
        return None

    def check_supported(self) -> None:
        """Raise unless the RTL unit implements the node bit-exactly."""
        reason = self.unsupported_reason()
        if reason:
            raise ToolkitError(f"{self.onnx_node.name}: {reason}")

    def rtl_shape(self) -> ew.EltwiseShape:
        """Parameters of the RTL instance."""
        self.check_supported()
        out = [int(d) for d in self.out_shape]
        pe = self.pe
        return ew.EltwiseShape(
            self.OP_NAME, pe, out[-1] // pe, int(np.prod(out[:-1])), self.lhs_dtype.bitwidth(),
            self.rhs_dtype.bitwidth(), self.out_dtype.bitwidth(), self.lhs_dtype.signed(),
            self.rhs_dtype.signed(), self.out_dtype.signed(),
            broadcast_kind(self.lhs_shape, self.rhs_shape, self.out_shape) == "channel")

    def rtl_params(self) -> dict[str, str]:
        p = self.rtl_shape().params()
        p["IN0_WIDTH"] = str(self.get_instream_width_padded(0))
        p["IN1_WIDTH"] = str(self.get_instream_width_padded(1))
        p["OUT_WIDTH"] = str(self.get_outstream_width_padded(0))
        return p

    # -- code generation ------------------------------------------------------------------
    def generate_hdl(self, model, fpgapart, clk):
        """The unit's source and a wrapper with FINN's port names."""
        p = self.rtl_params()
        self.write_unit(wrapper_verilog(
            self.onnx_node.name, self.MODULE, p,
            {"in0_V": p["IN0_WIDTH"], "in1_V": p["IN1_WIDTH"]}, {"out0_V": p["OUT_WIDTH"]},
            "flows/rtl/elementwise_op.py"))

    # -- estimates ------------------------------------------------------------------------
    def lut_estimation(self, fpgapart=None) -> int:
        """Per PE an adder of OUT_BITS (a product goes to a DSP); with a broadcast rhs the
        gate buffer in LUTRAM (about one LUT per bit and 64 words) and its fold/pixel
        counters; the handshake."""
        s = self.rtl_shape()
        lanes = 0 if s.op == "mul" else s.pe * LUT_PER_ADD_BIT * s.out_bits
        bcast = 0
        if s.broadcast:
            counters = max(1, (s.folds - 1).bit_length()) + max(1, (s.pixels - 1).bit_length())
            bcast = s.pe * s.rhs_bits * math.ceil(s.folds / 64) + counters + 4
        return int(math.ceil(lanes + bcast + LUT_HANDSHAKE))

    def dsp_estimation(self, fpgapart=None) -> int:
        """A product lane is a signed (LHS_BITS+1) x (RHS_BITS+1) multiply: one DSP48E2
        (27 x 18) while it fits, tiled beyond."""
        s = self.rtl_shape()
        if s.op != "mul":
            return 0
        wide, narrow = sorted((s.lhs_bits + 1, s.rhs_bits + 1), reverse=True)
        return s.pe * math.ceil(wide / 27) * math.ceil(narrow / 18)


class EltwiseAdd_rtl(_EltwiseRTL, ElementwiseAdd, RTLBackend):  # noqa: N801 (FINN's naming)
    """FINN's ElementwiseAdd in project-owned RTL."""

    OP_NAME = "add"


class EltwiseMul_rtl(_EltwiseRTL, ElementwiseMul, RTLBackend):  # noqa: N801
    """FINN's ElementwiseMul in project-owned RTL."""

    OP_NAME = "mul"


class EltwiseSub_rtl(_EltwiseRTL, ElementwiseSub, RTLBackend):  # noqa: N801
    """FINN's ElementwiseSub in project-owned RTL."""

    OP_NAME = "sub"


#: FINN HLS op type → project RTL op class
RTL_OPS = {"ElementwiseAdd_hls": EltwiseAdd_rtl, "ElementwiseMul_hls": EltwiseMul_rtl,
           "ElementwiseSub_hls": EltwiseSub_rtl}
