# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS accumulating pools for the project's RTL ones: ``GlobalAccPool_hls`` →
``GlobalSumPool_rtl`` and ``Pool_hls`` with Function QuantAvgPool → ``WindowAvgPool_rtl``."""

from __future__ import annotations

import logging

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from .rtl_node import replace_node

log = logging.getLogger(__name__)


class UseAccPoolRTL(Transformation):
    """Every ``GlobalAccPool_hls`` becomes a ``GlobalSumPool_rtl`` and every ``Pool_hls`` with
    Function QuantAvgPool a ``WindowAvgPool_rtl``, with the same attributes, tensors, folding
    and FIFO depths. Other pool functions (MaxPool: ``UseMaxPoolRTL``) stay as they are. A node
    the RTL cannot compute exactly raises ``ToolkitError`` naming the problem."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        counts = {"GlobalSumPool_rtl": 0, "WindowAvgPool_rtl": 0}
        for node in list(model.graph.node):
            if node.op_type == "GlobalAccPool_hls":
                new_op = "GlobalSumPool_rtl"
            elif node.op_type == "Pool_hls" and \
                    getCustomOp(node).get_nodeattr("Function") == "QuantAvgPool":
                new_op = "WindowAvgPool_rtl"
            else:
                continue
            inst = replace_node(model, node, new_op, f"{new_op}_{counts[new_op]}")
            inst.check_supported()
            if new_op == "WindowAvgPool_rtl" and inst.get_nodeattr("Size") != inst.shift():
                log.info("%s: the HLS kernel would shift by Size=%d; the RTL shifts by %d as "
                         "FINN's Python model does", node.name, inst.get_nodeattr("Size"),
                         inst.shift())
            counts[new_op] += 1
        for op, n in counts.items():
            if n:
                log.info("%d node(s) now use %s", n, op)
        return model, False
