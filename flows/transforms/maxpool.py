# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS max pools for the project's RTL window max-pool (``WindowMaxPool_rtl``)."""

from __future__ import annotations

import logging

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from .rtl_node import replace_node

log = logging.getLogger(__name__)


class UseMaxPoolRTL(Transformation):
    """Every ``Pool_hls`` with Function MaxPool becomes a ``WindowMaxPool_rtl`` with the same
    attributes, tensors, folding and FIFO depths. Other pool functions stay HLS."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        count = 0
        for node in list(model.graph.node):
            if node.op_type != "Pool_hls":
                continue
            fxn = getCustomOp(node).get_nodeattr("Function")
            if fxn != "MaxPool":
                log.debug("%s: not a max pool (%s), left to the other swaps", node.name, fxn)
                continue
            replace_node(model, node, "WindowMaxPool_rtl", f"WindowMaxPool_rtl_{count}") \
                .check_supported()
            count += 1
        if count:
            log.info("%d max pool(s) now use the RTL window max-pool", count)
        return model, False
