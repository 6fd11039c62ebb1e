# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN MVAUs with ±1 weights and multi-bit activations for the project's RTL
bipolar-weight MVAU (``BipolarMVAU_rtl``: add/subtract in LUTs, no DSPs)."""

from __future__ import annotations

import logging

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from flows.rtl.bipolar_mvau import is_bipolar

from .rtl_node import replace_node

log = logging.getLogger(__name__)

#: the MVAU variants the swap takes (an MVAU_rtl only where its weights are all ±1)
SWAPPABLE = ("MVAU_hls", "MVAU_rtl")


def bipolar_weight_mvau(model: ModelWrapper, node) -> bool:
    """Whether ``node`` is a FINN MVAU (any backend) with ±1 weights (an initializer, annotated
    BIPOLAR or, after ``MinimizeWeightBitWidth``, INT2) and integer activations that are not
    bipolar (binary XNOR MVAUs are :class:`~flows.transforms.xnor_mvau.UseXnorMvauRTL`'s)."""
    if not node.op_type.startswith("MVAU"):
        return False
    inst = getCustomOp(node)
    if inst.get_nodeattr("binaryXnorMode"):
        return False
    idt = inst.get_input_datatype(0)
    if not idt.is_integer() or idt == DataType["BIPOLAR"]:
        return False
    return is_bipolar(model.get_initializer(node.input[1]))


def _new_name(model: ModelWrapper, node) -> str:
    """``MVAU_hls_3`` → ``BipolarMVAU_rtl_3``, or the next free ``BipolarMVAU_rtl_<k>`` if an
    MVAU of the other backend had the same number."""
    name = node.name.replace(node.op_type, "BipolarMVAU_rtl")
    taken = {n.name for n in model.graph.node}
    k = 0
    while name in taken or not name.startswith("BipolarMVAU_rtl"):
        name, k = f"BipolarMVAU_rtl_{k}", k + 1
    return name


class UseBipolarMvauRTL(Transformation):
    """Every ``MVAU_hls``/``MVAU_rtl`` with ±1 weights, integer activations and on-chip weights
    becomes a ``BipolarMVAU_rtl`` with the same attributes, tensors, folding and FIFO depths
    (weights embedded in the RTL, annotated BIPOLAR: one bit each). Left as they are: MVAUs
    whose weights stream from DRAM (``mem_mode`` external), and those given ``resType: dsp``
    (e.g. in a folding file), a deliberate choice of multipliers."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        count = 0
        for node in list(model.graph.node):
            if node.op_type not in SWAPPABLE or not bipolar_weight_mvau(model, node):
                continue
            old = getCustomOp(node)
            mem_mode = old.get_nodeattr("mem_mode")
            if mem_mode not in ("internal_embedded", "internal_decoupled"):
                log.info("%s keeps %s: its weights are streamed (mem_mode %s)", node.name,
                         node.op_type, mem_mode)
                continue
            if old.get_nodeattr("resType") == "dsp":
                log.info("%s keeps %s: resType dsp", node.name, node.op_type)
                continue
            inst = replace_node(model, node, "BipolarMVAU_rtl", _new_name(model, node))
            inst.set_nodeattr("mem_mode", "internal_embedded")
            if inst.get_nodeattr("ram_style") == "ultra":  # URAM has no power-up contents,
                inst.set_nodeattr("ram_style", "block")   # so embedded weights go to BRAM
            inst.set_nodeattr("runtime_writeable_weights", 0)
            inst.set_nodeattr("resType", "lut")
            inst.set_nodeattr("weightDataType", "BIPOLAR")
            model.set_tensor_datatype(inst.onnx_node.input[1], DataType["BIPOLAR"])
            inst.check_supported()
            count += 1
        if count:
            log.info("%d bipolar-weight MVAU(s) now use the RTL bipolar MVAU (LUTs, no DSPs)",
                     count)
        return model, False
