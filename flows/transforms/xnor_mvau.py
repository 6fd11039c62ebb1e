# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS binary MVAUs for the project's RTL XNOR-popcount MVAU (``XnorMVAU_rtl``)."""

from __future__ import annotations

import logging

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

log = logging.getLogger(__name__)

#: attributes that belong to the HLS node's generated code, not to the layer
_DROP = {"code_gen_dir_ipgen", "code_gen_dir_cppsim", "executable_path", "ipgen_path",
         "ip_path", "ip_vlnv", "rtlsim_so", "res_hls", "cycles_rtlsim", "gen_top_module"}


class UseXnorMvauRTL(Transformation):
    """Every ``MVAU_hls`` in binaryXnorMode with on-chip weights becomes an ``XnorMVAU_rtl``
    with the same attributes, tensors, folding and FIFO depths (weights embedded in the RTL).
    Binary MVAUs whose weights stream from DRAM (``mem_mode`` external) stay HLS."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from flows.rtl import RTL_DOMAIN, register_custom_ops

        register_custom_ops()
        graph, count = model.graph, 0
        for idx, node in enumerate(list(graph.node)):
            if node.op_type != "MVAU_hls" or not getCustomOp(node).get_nodeattr("binaryXnorMode"):
                continue
            mem_mode = getCustomOp(node).get_nodeattr("mem_mode")
            if mem_mode not in ("internal_embedded", "internal_decoupled"):
                log.info("%s keeps HLS: its weights are streamed (mem_mode %s)", node.name,
                         mem_mode)
                continue
            new = helper.make_node("XnorMVAU_rtl", list(node.input), list(node.output),
                                   name=node.name.replace("MVAU_hls", "XnorMVAU_rtl"),
                                   domain=RTL_DOMAIN)
            known = getCustomOp(new).get_nodeattr_types()
            new.attribute.extend(a for a in node.attribute
                                 if a.name in known and a.name not in _DROP)
            inst = getCustomOp(new)
            inst.set_nodeattr("mem_mode", "internal_embedded")
            if inst.get_nodeattr("ram_style") == "ultra":  # URAM has no power-up contents,
                inst.set_nodeattr("ram_style", "block")   # so embedded weights go to BRAM
            inst.set_nodeattr("runtime_writeable_weights", 0)
            inst.check_supported()
            graph.node.remove(node)
            graph.node.insert(idx, new)
            count += 1
        if count:
            log.info("%d binary MVAU(s) now use the RTL XNOR-popcount unit", count)
        return model, False
