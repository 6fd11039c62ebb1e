# SPDX-License-Identifier: BSD-3-Clause
"""``DupStreams_rtl`` and ``Concat_rtl``: FINN custom ops for the project's RTL stream fork and
join.

They are FINN's ``DuplicateStreams`` and ``StreamingConcat`` (same attributes, shapes, folding,
cycle model and Python execution) with an RTL backend that instantiates
``hdl/bnn_dup_streams.sv`` / ``hdl/bnn_concat.sv`` instead of finn-hlslib's ``StreamingDup`` /
``StreamingConcat``. The generated wrapper, named after the node, has FINN's port names
(``in0_V`` → ``out0_V`` .. ``out{N-1}_V``; ``in0_V`` .. ``in{N-1}_V`` → ``out0_V``). Registered in
FINN's RTL domain through qonnx's registry (:func:`flows.rtl.registry.register_custom_ops`);
node attributes, execution and the zero BRAM/URAM/DSP estimates come from
:class:`flows.rtl.unit.RTLUnit`.
"""

from __future__ import annotations

import math

from finn.custom_op.fpgadataflow.concat import StreamingConcat
from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from bnn_brevitas.errors import ToolkitError

from . import streams as st
from .unit import RTLUnit

#: LUTs per output per data bit (valid/ready logic is a few LUTs); the data register is shared
LUT_DUP_PER_OUT = 2
#: LUTs per output bit per extra input (the input mux), and for the fold/select counters
LUT_CONCAT_PER_BIT = 1.0
LUT_CONCAT_CONTROL = 8


class DupStreams_rtl(RTLUnit, DuplicateStreams, RTLBackend):  # noqa: N801 (FINN naming)
    """FINN's DuplicateStreams (one stream to NumOutputStreams copies) in project-owned RTL."""

    MODULE = st.DUP_MODULE

    def check_supported(self) -> None:
        """Raise unless PE folds the channels evenly and there are at least 2 outputs."""
        name = self.onnx_node.name
        n_out, pe = self.get_nodeattr("NumOutputStreams"), self.get_nodeattr("PE")
        if n_out < 2 or n_out != len(self.onnx_node.output):
            raise ToolkitError(f"{name}: DupStreams_rtl needs NumOutputStreams >= 2 equal to "
                               f"its {len(self.onnx_node.output)} outputs, got {n_out}")
        if pe < 1 or self.get_nodeattr("NumChannels") % pe:
            raise ToolkitError(f"{name}: PE={pe} must divide NumChannels="
                               f"{self.get_nodeattr('NumChannels')}")

    def generate_hdl(self, model, fpgapart, clk):
        """The fork's source and a wrapper with FINN's port names."""
        self.check_supported()
        self.write_unit(st.dup_wrapper(
            self.onnx_node.name, self.get_nodeattr("NumOutputStreams"),
            self.get_instream_width_padded(0), origin="flows/rtl/streams_op.py"))

    def lut_estimation(self, fpgapart=None) -> int:
        """Per output a valid bit with its ready logic, plus the input ready AND tree."""
        n_out = self.get_nodeattr("NumOutputStreams")
        return int(LUT_DUP_PER_OUT * n_out + math.ceil(n_out / 6))


class Concat_rtl(RTLUnit, StreamingConcat, RTLBackend):  # noqa: N801 (FINN naming)
    """FINN's StreamingConcat (channel-axis join of 2+ integer streams) in project-owned RTL."""

    MODULE = st.CONCAT_MODULE

    def check_supported(self) -> None:
        """Raise unless every input is an integer stream that SIMD folds evenly."""
        name = self.onnx_node.name
        chans, simd = self.get_nodeattr("ChannelsPerStream"), self.get_nodeattr("SIMD")
        n = len(chans)
        if n < 2 or n != len(self.onnx_node.input) or \
                n != len(self.get_nodeattr("inputDataTypes")):
            raise ToolkitError(f"{name}: Concat_rtl needs >= 2 inputs with one ChannelsPerStream "
                               f"and inputDataTypes entry each, got {len(self.onnx_node.input)} "
                               f"inputs, ChannelsPerStream {list(chans)}")
        if simd < 1 or any(c % simd for c in chans):
            raise ToolkitError(f"{name}: SIMD={simd} must divide every ChannelsPerStream "
                               f"{list(chans)}")
        for i in range(n):
            dt = self.get_input_datatype(i)
            if not dt.is_integer():
                raise ToolkitError(f"{name}: Concat_rtl needs integer input datatypes, input "
                                   f"{i} is {dt}")

    def rtl_params(self) -> dict[str, str]:
        """Parameters of the RTL instance."""
        self.check_supported()
        simd = self.get_nodeattr("SIMD")
        n = self.get_n_inputs()
        dts = [self.get_input_datatype(i) for i in range(n)]
        return st.concat_params([c // simd for c in self.get_nodeattr("ChannelsPerStream")],
                                [dt.bitwidth() for dt in dts], [st.dtype_mode(dt) for dt in dts],
                                simd, self.get_output_datatype().bitwidth())

    def generate_hdl(self, model, fpgapart, clk):
        """The join's source and a wrapper with FINN's port names."""
        params = self.rtl_params()
        assert int(params["OUT_WIDTH"]) == self.get_outstream_width_padded(0)
        widths = [self.get_instream_width_padded(i) for i in range(self.get_n_inputs())]
        self.write_unit(st.concat_wrapper(
            self.onnx_node.name, params, widths, origin="flows/rtl/streams_op.py"))

    def lut_estimation(self, fpgapart=None) -> int:
        """The input mux (N-1 LUT levels per output bit, 6-input LUTs) and the counters."""
        n = self.get_n_inputs()
        bits = self.get_nodeattr("SIMD") * self.get_output_datatype().bitwidth()
        return int(math.ceil(LUT_CONCAT_PER_BIT * bits * math.ceil((n - 1) / 2)
                             + LUT_CONCAT_CONTROL))
