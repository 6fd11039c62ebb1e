# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS elementwise add/mul/sub for the project's RTL elementwise unit
(``EltwiseAdd_rtl`` / ``EltwiseMul_rtl`` / ``EltwiseSub_rtl``)."""

from __future__ import annotations

import logging

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from flows.rtl.elementwise_op import RTL_OPS

from .rtl_node import make_rtl_node, put_in_place

log = logging.getLogger(__name__)


class UseElementwiseRTL(Transformation):
    """Every ``ElementwiseAdd_hls`` / ``ElementwiseMul_hls`` / ``ElementwiseSub_hls`` whose
    operands are both streams (no initializer), integer, with the lhs of the output shape and
    the rhs of the output shape or broadcast over all but the channel axis, becomes the RTL op
    with the same attributes, tensors, folding and FIFO depths. Others stay HLS (logged)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        counts = {}
        for node in list(model.graph.node):
            cls = RTL_OPS.get(node.op_type)
            if cls is None:
                continue
            consts = [i for i in node.input if model.get_initializer(i) is not None]
            if consts:
                log.info("%s keeps HLS: operand(s) %s are initializers, %s streams both",
                         node.name, consts, cls.__name__)
                continue
            op_type = cls.__name__
            k = counts.get(op_type, 0)
            new = make_rtl_node(node, op_type, f"{op_type}_{k}")
            reason = getCustomOp(new).unsupported_reason()
            if reason:
                log.info("%s keeps HLS: %s", node.name, reason)
                continue
            put_in_place(model, node, new)
            counts[op_type] = k + 1
        if counts:
            log.info("elementwise layers now in RTL: %s",
                     ", ".join(f"{n} {t}" for t, n in counts.items()))
        return model, False
