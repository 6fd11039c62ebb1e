# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS binary MVAUs for the project's RTL XNOR-popcount MVAU (``XnorMVAU_rtl``)."""

from __future__ import annotations

import logging

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from .rtl_node import replace_node

log = logging.getLogger(__name__)


class UseXnorMvauRTL(Transformation):
    """Every ``MVAU_hls`` in binaryXnorMode with on-chip weights becomes an ``XnorMVAU_rtl``
    with the same attributes, tensors, folding and FIFO depths (weights embedded in the RTL).
    Binary MVAUs whose weights stream from DRAM (``mem_mode`` external) stay HLS."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        count = 0
        for node in list(model.graph.node):
            if node.op_type != "MVAU_hls" or not getCustomOp(node).get_nodeattr("binaryXnorMode"):
                continue
            mem_mode = getCustomOp(node).get_nodeattr("mem_mode")
            if mem_mode not in ("internal_embedded", "internal_decoupled"):
                log.info("%s keeps HLS: its weights are streamed (mem_mode %s)", node.name,
                         mem_mode)
                continue
            inst = replace_node(model, node, "XnorMVAU_rtl",
                                node.name.replace("MVAU_hls", "XnorMVAU_rtl"))
            inst.set_nodeattr("mem_mode", "internal_embedded")
            if inst.get_nodeattr("ram_style") == "ultra":  # URAM has no power-up contents,
                inst.set_nodeattr("ram_style", "block")   # so embedded weights go to BRAM
            inst.set_nodeattr("runtime_writeable_weights", 0)
            inst.check_supported()
            count += 1
        if count:
            log.info("%d binary MVAU(s) now use the RTL XNOR-popcount unit", count)
        return model, False
