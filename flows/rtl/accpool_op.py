# SPDX-License-Identifier: BSD-3-Clause
"""``GlobalSumPool_rtl`` and ``WindowAvgPool_rtl``: FINN custom ops for the project's RTL
accumulating pools.

* ``GlobalSumPool_rtl`` is FINN's ``GlobalAccPool`` (same attributes, shapes, folding, output
  datatype, cycle model and Python execution) with an RTL backend that instantiates
  ``hdl/bnn_accpool.sv`` instead of finn-hlslib's ``AccPool_Batch``.
* ``WindowAvgPool_rtl`` is FINN's ``Pool`` with Function ``QuantAvgPool`` with an RTL backend
  that instantiates ``hdl/bnn_avgpool.sv`` instead of ``Pool_batch``. It computes exactly
  FINN's Python model: window sum, then an arithmetic right shift by the shift that model
  derives from the datatypes (the HLS kernel shifts by the ``Size`` attribute instead, and its
  accumulator has ``AccumBits`` bits; the RTL sizes its accumulator for the exact sum). Like the
  HLS kernel it consumes the depthwise sliding window's stream, ``(C/PE, K, PE)`` per output
  pixel, not the Im2Col order ``(K, C)`` of the Python model (:func:`accpool.stream_order`).

Both are registered in FINN's RTL domain through qonnx's registry
(:func:`flows.rtl.registry.register_custom_ops`); node attributes, execution and the zero
BRAM/URAM/DSP estimates come from :class:`flows.rtl.unit.RTLUnit`.
"""

from __future__ import annotations

import math

from finn.custom_op.fpgadataflow.globalaccpool import GlobalAccPool
from finn.custom_op.fpgadataflow.pool import Pool
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from bnn_brevitas.errors import ToolkitError

from . import accpool as ap
from .unit import RTLUnit, wrapper_verilog

#: LUTs per accumulator bit (adder) and per accumulator-memory bit (LUTRAM, 64 deep)
LUT_PER_ACC_BIT = 1.0
LUT_PER_MEM_BIT = 1.0
LUT_CONTROL = 8


def _check_int_type(name: str, op: str, what: str, dt) -> None:
    if not dt.is_integer() or dt.name == "BIPOLAR":
        raise ToolkitError(f"{name}: {op} needs an integer {what} datatype (INTn, UINTn, "
                           f"BINARY), got {dt}")


def _generate(inst, params: dict[str, str]) -> None:
    """The unit's source and a wrapper with FINN's port names."""
    params["IN_WIDTH"] = str(inst.get_instream_width_padded(0))
    params["OUT_WIDTH"] = str(inst.get_outstream_width_padded(0))
    inst.write_unit(wrapper_verilog(inst.onnx_node.name, inst.MODULE, params,
                                    {"in0_V": params["IN_WIDTH"]}, {"out0_V": params["OUT_WIDTH"]},
                                    "flows/rtl/accpool_op.py"))


class GlobalSumPool_rtl(RTLUnit, GlobalAccPool, RTLBackend):  # noqa: N801 (FINN's <Op>_rtl naming)
    """Per-channel sum over all pixels of a frame (FINN's GlobalAccPool) in project RTL."""

    MODULE = ap.ACC_MODULE
    SOURCE = ap.rtl_sources(ap.ACC_MODULE)[0].name

    def check_supported(self) -> None:
        """Raise unless the node is an integer global sum over [N, H, W] pixels."""
        name, op = self.onnx_node.name, "GlobalSumPool_rtl"
        vecs = list(self.get_nodeattr("numInputVectors"))
        if len(vecs) != 3:
            raise ToolkitError(f"{name}: {op} needs numInputVectors [N, H, W], got {vecs}")
        ch, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        if pe < 1 or ch % pe:
            raise ToolkitError(f"{name}: PE={pe} must divide NumChannels={ch}")
        _check_int_type(name, op, "input", self.get_input_datatype())
        _check_int_type(name, op, "output", self.get_output_datatype())

    def rtl_params(self) -> dict[str, str]:
        """Parameters of the RTL instance (without the stream widths)."""
        self.check_supported()
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        pe = self.get_nodeattr("PE")
        vecs = self.get_nodeattr("numInputVectors")
        return ap.accpool_params(pe, self.get_nodeattr("NumChannels") // pe,
                                 int(vecs[1] * vecs[2]), idt.bitwidth(), idt.signed(),
                                 odt.bitwidth())

    def generate_hdl(self, model, fpgapart, clk):
        _generate(self, self.rtl_params())

    def lut_estimation(self, fpgapart=None) -> int:
        """An adder per accumulator bit, the accumulators in LUTRAM (64 words per LUT), the
        pixel/fold counters."""
        p = {k: int(v) for k, v in self.rtl_params().items()}
        acc = max(p["OUT_BITS"], p["IN_BITS"])
        mem = p["PE"] * acc * math.ceil(p["NUM_FOLDS"] / 64) if p["NUM_FOLDS"] > 1 else 0
        ctr = max(1, math.ceil(math.log2(max(p["NUM_PIX"], 2)))) \
            + max(1, math.ceil(math.log2(max(p["NUM_FOLDS"], 2))))
        return int(math.ceil(LUT_PER_ACC_BIT * p["PE"] * acc + LUT_PER_MEM_BIT * mem
                             + LUT_CONTROL + ctr))


class WindowAvgPool_rtl(RTLUnit, Pool, RTLBackend):  # noqa: N801 (FINN's <Op>_rtl naming)
    """Quantized average pooling (FINN's Pool, Function QuantAvgPool) in project RTL."""

    MODULE = ap.AVG_MODULE
    SOURCE = ap.rtl_sources(ap.AVG_MODULE)[0].name

    def kernel_size(self) -> int:
        return int(math.prod(self.get_nodeattr("KernelSize")))

    def shift(self) -> int:
        """The right shift of FINN's Python model of QuantAvgPool."""
        return ap.quant_avgpool_shift(self.get_input_datatype().bitwidth(),
                                      self.get_output_datatype().bitwidth(), self.kernel_size())

    def check_supported(self) -> None:
        """Raise unless the node is an integer QuantAvgPool whose results all fit the output
        datatype (FINN's Python model does not wrap them; the RTL would)."""
        name, op = self.onnx_node.name, "WindowAvgPool_rtl"
        fxn = self.get_nodeattr("Function")
        if fxn != "QuantAvgPool":
            raise ToolkitError(f"{name}: {op} implements QuantAvgPool only, got {fxn!r}")
        ch, pe = self.get_nodeattr("Channels"), self.get_nodeattr("PE")
        if pe < 1 or ch % pe:
            raise ToolkitError(f"{name}: PE={pe} must divide Channels={ch}")
        idt = self.get_input_datatype()
        _check_int_type(name, op, "input", idt)
        odt = self.get_output_datatype()  # asserts that the signedness matches
        _check_int_type(name, op, "output", odt)
        k, s = self.kernel_size(), self.shift()
        lo, hi = (k * int(idt.min())) >> s, (k * int(idt.max())) >> s
        if not (odt.allowed(lo) and odt.allowed(hi)):
            raise ToolkitError(f"{name}: {op}: results {lo} .. {hi} (window sums of {k} {idt} "
                               f"values >> {s}) do not fit OutputDataType {odt}")

    def rtl_params(self) -> dict[str, str]:
        """Parameters of the RTL instance (without the stream widths)."""
        self.check_supported()
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        pe = self.get_nodeattr("PE")
        return ap.avgpool_params(pe, self.kernel_size(), self.get_nodeattr("Channels") // pe,
                                 idt.bitwidth(), int(idt.min()), int(idt.max()), idt.signed(),
                                 odt.bitwidth())

    def generate_hdl(self, model, fpgapart, clk):
        _generate(self, self.rtl_params())

    def lut_estimation(self, fpgapart=None) -> int:
        """An adder per accumulator bit of each PE lane, plus the window counter."""
        p = {k: int(v) for k, v in self.rtl_params().items()}
        return int(math.ceil(LUT_PER_ACC_BIT * p["PE"] * p["ACC_BITS"] + LUT_CONTROL
                             + max(1, math.ceil(math.log2(max(p["K"], 2))))))
