# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS max pools for the project's RTL window max-pool (``WindowMaxPool_rtl``)."""

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


class UseMaxPoolRTL(Transformation):
    """Every ``Pool_hls`` with Function MaxPool becomes a ``WindowMaxPool_rtl`` with the same
    attributes, tensors, folding and FIFO depths. Other pool functions stay HLS."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from flows.rtl import RTL_DOMAIN, register_custom_ops

        register_custom_ops()
        graph, count = model.graph, 0
        for idx, node in enumerate(list(graph.node)):
            if node.op_type != "Pool_hls":
                continue
            fxn = getCustomOp(node).get_nodeattr("Function")
            if fxn != "MaxPool":
                log.info("%s keeps HLS: WindowMaxPool_rtl implements MaxPool, not %s",
                         node.name, fxn)
                continue
            new = helper.make_node("WindowMaxPool_rtl", list(node.input), list(node.output),
                                   name=f"WindowMaxPool_rtl_{count}", domain=RTL_DOMAIN)
            known = getCustomOp(new).get_nodeattr_types()
            new.attribute.extend(a for a in node.attribute
                                 if a.name in known and a.name not in _DROP)
            getCustomOp(new).check_supported()
            graph.node.remove(node)
            graph.node.insert(idx, new)
            count += 1
        if count:
            log.info("%d max pool(s) now use the RTL window max-pool", count)
        return model, False
