# SPDX-License-Identifier: BSD-3-Clause
"""``XnorMVAU_rtl``: FINN custom op for the project's RTL XNOR-popcount MVAU.

It is FINN's ``MVAU`` (same attributes, shapes, folding, cycle model and Python execution) with
an RTL backend that instantiates ``hdl/bnn_xnor_mvau.sv`` instead of FINN's HLS
``Matrix_Vector_Activate_Batch``. Weights (and thresholds) are embedded in the module as
``$readmemh`` images, so the layer has FINN's MVAU stream interface (``in0_V`` → ``out0_V``)
and no weight stream. The op is registered in FINN's RTL domain through qonnx's registry
(:func:`flows.rtl.registry.register_custom_ops`), so every FINN pass that handles RTL layers
(PrepareIP, CreateStitchedIP, resource and cycle analyses) handles it too; nothing in finn-plus
is edited. Node attributes and execution come from :class:`flows.rtl.unit.RTLUnit`.
"""

from __future__ import annotations

import math
from pathlib import Path

from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType

from bnn_brevitas.errors import ToolkitError

from . import xnor_mvau as xm
from .unit import WeightRomUnit, wrapper_verilog

#: LUT cost model, least-squares fit to Yosys ``synth_xilinx -family xcup`` counts of the unit at
#: six folding points (``python -m flows.rtl.synth``; docs/RESULTS.md, "RTL XNOR MVAU"): LUTs per
#: XNOR-popcount input bit, per 64 bits of weight ROM kept in logic (at most 128 words), per
#: threshold-comparator bit and per accumulator / input-buffer bit
LUT_PER_XNOR_BIT = 1.73
LUT_PER_ROM_64BITS = 4.75
LUT_PER_CMP_BIT = 1.64
LUT_PER_REG_BIT = 1.75


class XnorMVAU_rtl(WeightRomUnit, MVAU, RTLBackend):  # noqa: N801 (FINN's <Op>_rtl naming)
    """Binary MVAU (binaryXnorMode, BINARY inputs and weights) in project-owned RTL."""

    MODULE = xm.MODULE

    # -- shape of the RTL instance --------------------------------------------------------
    def rtl_shape(self, n_thres: int | None = None) -> xm.XnorMvauShape:
        """Parameters of the RTL instance (``n_thres`` from the threshold tensor)."""
        self.check_supported()
        odt = self.get_output_datatype()
        if self.get_nodeattr("noActivation"):
            n_thres, bias = 0, 0
        else:
            n_thres = n_thres if n_thres is not None else max(1, odt.get_num_possible_values() - 1)
            bias = 0 if odt == DataType["BIPOLAR"] else int(self.get_nodeattr("ActVal"))
        return xm.XnorMvauShape(self.get_nodeattr("MW"), self.get_nodeattr("MH"),
                                self.get_nodeattr("PE"), self.get_nodeattr("SIMD"), n_thres,
                                odt.bitwidth(), bias)

    def check_supported(self) -> None:
        """Raise unless the node is a binary (XNOR) MVAU with on-chip weights."""
        name = self.onnx_node.name
        if not self.get_nodeattr("binaryXnorMode") or \
                self.get_input_datatype(0) != DataType["BINARY"] or \
                self.get_input_datatype(1) != DataType["BINARY"]:
            raise ToolkitError(f"{name}: XnorMVAU_rtl needs binaryXnorMode=1 with BINARY inputs"
                               " and weights; use MVAU_hls/MVAU_rtl for other datatypes")
        if self.get_nodeattr("mem_mode") != "internal_embedded":
            raise ToolkitError(f"{name}: XnorMVAU_rtl embeds its weights: mem_mode must be "
                               f"internal_embedded, got {self.get_nodeattr('mem_mode')!r}")

    # -- code generation ------------------------------------------------------------------
    def generate_hdl(self, model, fpgapart, clk):
        """Memory images, the unit's source and a wrapper with FINN's port names."""
        node = self.onnx_node
        gen = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        thr = None if self.get_nodeattr("noActivation") else model.get_initializer(node.input[2])
        shape = self.rtl_shape(None if thr is None else thr.shape[1])
        need = (shape.mw).bit_length()
        if shape.n_thres == 0 and shape.obits < need:
            raise ToolkitError(f"{node.name}: output datatype {self.get_output_datatype()} "
                               f"cannot hold a popcount up to {shape.mw}")
        w = model.get_initializer(node.input[1])
        wf = xm.write_hex(gen / f"{node.name}_weights.hex", xm.weight_words(w, shape),
                          shape.pe * shape.simd)
        tf = None
        if thr is not None:
            tf = xm.write_hex(gen / f"{node.name}_thresholds.hex", xm.threshold_words(thr, shape),
                              shape.pe * shape.n_thres * xm.count_bits(shape.mw))
        params = shape.params(wf.absolute(), tf.absolute() if tf else None,
                              self.get_nodeattr("ram_style"))
        iw, ow = self.get_instream_width_padded(0), self.get_outstream_width_padded(0)
        params.update(IN_WIDTH=str(iw), OUT_WIDTH=str(ow))
        self.write_unit(wrapper_verilog(node.name, self.MODULE, params, {"in0_V": iw},
                                        {"out0_V": ow}, "flows/rtl/xnor_mvau_op.py"))

    # -- estimates ------------------------------------------------------------------------
    def lut_estimation(self, fpgapart=None) -> int:
        """XNOR + popcount per PE, the weight ROM when it is in logic
        (:meth:`~flows.rtl.unit.WeightRomUnit.weight_rom`), threshold comparators, accumulators
        and the input buffer; coefficients fitted to Yosys (see the constants above)."""
        s = self.rtl_shape()
        cb = xm.count_bits(s.mw)
        rom_bits = self.weight_rom_logic_bits()
        luts = (LUT_PER_XNOR_BIT * s.pe * s.simd + LUT_PER_ROM_64BITS * rom_bits / 64
                + LUT_PER_CMP_BIT * s.pe * s.n_thres * cb
                + LUT_PER_REG_BIT * (s.pe * cb + (s.simd if s.nf > 1 else 0)))
        return int(math.ceil(luts))
