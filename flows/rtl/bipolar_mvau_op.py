# SPDX-License-Identifier: BSD-3-Clause
"""``BipolarMVAU_rtl``: FINN custom op for the project's RTL bipolar-weight MVAU.

It is FINN's ``MVAU`` (same attributes, shapes, folding, cycle model and Python execution) with
an RTL backend that instantiates ``hdl/bnn_bipolar_mvau.sv``: ±1 weights times multi-bit
integer activations by add/subtract in LUTs, where FINN's ``MVAU_rtl`` would need the weights
as INT2 on DSPs. Weights (and thresholds) are embedded as ``$readmemh`` images, so the layer
has FINN's MVAU stream interface (``in0_V`` → ``out0_V``) and no weight stream. Registered in
FINN's RTL domain by :func:`flows.rtl.registry.register_custom_ops`, like the XNOR unit.
"""

from __future__ import annotations

import math
from pathlib import Path

from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType

from bnn_brevitas.errors import ToolkitError

from . import bipolar_mvau as bm
from .unit import WeightRomUnit, wrapper_verilog

#: LUT cost model, least-squares fit to Yosys 0.70 ``synth_xilinx -family xcup`` counts of the
#: unit at the first six of ``flows.rtl.synth.BIPOLAR_POINTS`` (``python -m flows.rtl.synth
#: --unit bipolar``: INT2 inputs with 0 or 2 thresholds, PE 1..8, SIMD 32..96, and the 8-bit
#: first layer; within ±7 % of Yosys there, −4 % and +7 % on the two held-out points with 4-bit
#: inputs and 15 thresholds): LUTs per adder-tree input bit (the PE AND-gated trees plus the
#: shared input sum), per 64 bits of weight ROM kept in logic (at most 128 words), per
#: threshold-comparator bit and per accumulator / input-buffer bit. Yosys, not Vivado: the
#: estimate is approximate (Vivado packs adders into CARRY8 differently).
LUT_PER_TREE_BIT = 2.01
LUT_PER_ROM_64BITS = 5.92
LUT_PER_CMP_BIT = 2.27
LUT_PER_REG_BIT = 1.50


class BipolarMVAU_rtl(WeightRomUnit, MVAU, RTLBackend):  # noqa: N801 (FINN's <Op>_rtl naming)
    """MVAU with ±1 weights and integer activations of any width, in project-owned RTL."""

    MODULE = bm.MODULE

    # -- shape of the RTL instance --------------------------------------------------------
    def rtl_shape(self, n_thres: int | None = None) -> bm.BipolarMvauShape:
        """Parameters of the RTL instance (``n_thres`` from the threshold tensor)."""
        self.check_supported()
        odt, idt = self.get_output_datatype(), self.get_input_datatype(0)
        if self.get_nodeattr("noActivation"):
            n_thres, bias = 0, 0
        else:
            n_thres = n_thres if n_thres is not None else max(1, odt.get_num_possible_values() - 1)
            bias = 0 if odt == DataType["BIPOLAR"] else int(self.get_nodeattr("ActVal"))
        return bm.BipolarMvauShape(self.get_nodeattr("MW"), self.get_nodeattr("MH"),
                                   self.get_nodeattr("PE"), self.get_nodeattr("SIMD"),
                                   idt.bitwidth(), idt.signed(), n_thres, odt.bitwidth(), bias)

    def check_supported(self) -> None:
        """Raise unless the node is a non-XNOR MVAU with integer (not bipolar) inputs and
        on-chip weights; the weights' ±1 values are checked when the RTL is generated."""
        name = self.onnx_node.name
        idt = self.get_input_datatype(0)
        if self.get_nodeattr("binaryXnorMode") or not idt.is_integer() or \
                idt == DataType["BIPOLAR"]:
            raise ToolkitError(f"{name}: BipolarMVAU_rtl needs integer (non-bipolar) inputs "
                               f"and binaryXnorMode=0, got {idt}; binary MVAUs use XnorMVAU_rtl")
        if self.get_nodeattr("mem_mode") != "internal_embedded":
            raise ToolkitError(f"{name}: BipolarMVAU_rtl embeds its weights: mem_mode must be "
                               f"internal_embedded, got {self.get_nodeattr('mem_mode')!r}")

    # -- code generation ------------------------------------------------------------------
    def generate_hdl(self, model, fpgapart, clk):
        """Memory images, the unit's source and a wrapper with FINN's port names."""
        node = self.onnx_node
        gen = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        thr = None if self.get_nodeattr("noActivation") else model.get_initializer(node.input[2])
        shape = self.rtl_shape(None if thr is None else thr.shape[1])
        w = model.get_initializer(node.input[1])
        if not bm.is_bipolar(w):
            raise ToolkitError(f"{node.name}: BipolarMVAU_rtl needs weights that are all -1 or "
                               "+1")
        wf = bm.write_hex(gen / f"{node.name}_weights.hex", bm.weight_words(w, shape),
                          shape.pe * shape.simd)
        tf = None
        if thr is not None:
            tf = bm.write_hex(gen / f"{node.name}_thresholds.hex", bm.threshold_words(thr, shape),
                              shape.pe * shape.n_thres * shape.acc_bits)
        params = shape.params(wf.absolute(), tf.absolute() if tf else None,
                              self.get_nodeattr("ram_style"))
        iw, ow = self.get_instream_width_padded(0), self.get_outstream_width_padded(0)
        if (iw, ow) != (shape.in_width, shape.out_width):
            raise ToolkitError(f"{node.name}: stream widths {iw}/{ow} differ from the unit's "
                               f"{shape.in_width}/{shape.out_width}")
        self.write_unit(wrapper_verilog(node.name, self.MODULE, params, {"in0_V": iw},
                                        {"out0_V": ow}, "flows/rtl/bipolar_mvau_op.py"))

    # -- estimates ------------------------------------------------------------------------
    def lut_estimation(self, fpgapart=None) -> int:
        """Adder trees (PE gated ones and the shared input sum), the weight ROM when it is in
        logic (:meth:`~flows.rtl.unit.WeightRomUnit.weight_rom`), threshold comparators,
        accumulators and the input buffer; coefficients fitted to Yosys (see the constants
        above). Approximate: Vivado's counts differ from Yosys's."""
        s = self.rtl_shape()
        rom_bits = self.weight_rom_logic_bits()
        luts = (LUT_PER_TREE_BIT * (s.pe + 1) * s.simd * s.in_bits
                + LUT_PER_ROM_64BITS * rom_bits / 64
                + LUT_PER_CMP_BIT * s.pe * s.n_thres * s.acc_bits
                + LUT_PER_REG_BIT * (s.pe * s.acc_bits + (s.simd * s.in_bits if s.nf > 1 else 0)))
        return int(math.ceil(luts))
