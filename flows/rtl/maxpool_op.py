# SPDX-License-Identifier: BSD-3-Clause
"""``WindowMaxPool_rtl``: FINN custom op for the project's RTL window max-pool.

It is FINN's ``Pool`` with Function MaxPool (same attributes, shapes, folding, cycle model and
Python execution) with an RTL backend that instantiates ``hdl/bnn_maxpool.sv`` instead of
finn-hlslib's ``Pool_batch``. Like the HLS kernel it consumes the depthwise sliding window's
stream, ``(C/PE, K, PE)`` per output pixel, not the Im2Col order ``(K, C)`` of the Python model
(:func:`flows.rtl.maxpool.stream_order`). Registered in FINN's RTL domain through qonnx's
registry (:func:`flows.rtl.registry.register_custom_ops`); node attributes, execution and the
zero BRAM/URAM/DSP estimates come from :class:`flows.rtl.unit.RTLUnit`.
"""

from __future__ import annotations

import math

from finn.custom_op.fpgadataflow.pool import Pool
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from bnn_brevitas.errors import ToolkitError

from . import maxpool as mp
from .unit import RTLUnit, wrapper_verilog

#: LUTs per element bit (comparator carry chain plus the select mux) and for the window counter
LUT_PER_ELEM_BIT = 2.0
LUT_CONTROL = 4


class WindowMaxPool_rtl(RTLUnit, Pool, RTLBackend):  # noqa: N801 (FINN's <Op>_rtl naming)
    """Max pooling over a sliding window's stream in project-owned RTL."""

    MODULE = mp.MODULE

    def check_supported(self) -> None:
        """Raise unless the node is an integer max pool that PE folds evenly."""
        name = self.onnx_node.name
        if self.get_nodeattr("Function") != "MaxPool":
            raise ToolkitError(f"{name}: WindowMaxPool_rtl implements MaxPool only, got "
                               f"{self.get_nodeattr('Function')!r}")
        if not self.get_input_datatype().is_integer():
            raise ToolkitError(f"{name}: WindowMaxPool_rtl needs an integer input datatype, "
                               f"got {self.get_input_datatype()}")
        if self.get_nodeattr("Channels") % self.get_nodeattr("PE"):
            raise ToolkitError(f"{name}: PE={self.get_nodeattr('PE')} must divide Channels="
                               f"{self.get_nodeattr('Channels')}")

    def rtl_params(self) -> dict[str, str]:
        """Parameters of the RTL instance."""
        self.check_supported()
        idt = self.get_input_datatype()
        pe = self.get_nodeattr("PE")
        p = mp.params(pe, int(math.prod(self.get_nodeattr("KernelSize"))),
                      self.get_nodeattr("Channels") // pe, idt.bitwidth(), idt.signed())
        p["IN_WIDTH"] = str(self.get_instream_width_padded(0))
        p["OUT_WIDTH"] = str(self.get_outstream_width_padded(0))
        return p

    # -- code generation ------------------------------------------------------------------
    def generate_hdl(self, model, fpgapart, clk):
        """The unit's source and a wrapper with FINN's port names."""
        p = self.rtl_params()
        self.write_unit(wrapper_verilog(
            self.onnx_node.name, self.MODULE, p, {"in0_V": p["IN_WIDTH"]},
            {"out0_V": p["OUT_WIDTH"]}, "flows/rtl/maxpool_op.py"))

    def lut_estimation(self, fpgapart=None) -> int:
        """A comparator and a select mux per element bit of each PE lane, plus the counter."""
        bits = self.get_input_datatype().bitwidth()
        k = int(math.prod(self.get_nodeattr("KernelSize")))
        return int(math.ceil(LUT_PER_ELEM_BIT * self.get_nodeattr("PE") * bits + LUT_CONTROL
                             + max(1, math.ceil(math.log2(max(k, 2))))))
