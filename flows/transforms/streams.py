# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS stream forks and joins (``DuplicateStreams_hls``, ``StreamingConcat_hls``) for
the project's RTL units (``DupStreams_rtl``, ``Concat_rtl``)."""

from __future__ import annotations

import logging

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_brevitas.errors import ToolkitError

from .rtl_node import make_rtl_node, put_in_place

log = logging.getLogger(__name__)

#: HLS op type → RTL op type
SWAPS = {"DuplicateStreams_hls": "DupStreams_rtl", "StreamingConcat_hls": "Concat_rtl"}


class UseStreamsRTL(Transformation):
    """Every ``DuplicateStreams_hls`` becomes a ``DupStreams_rtl`` and every
    ``StreamingConcat_hls`` a ``Concat_rtl``, with the same attributes, tensors, folding and
    FIFO depths. A node the RTL does not support (non-integer concat inputs) stays HLS."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        count = 0
        for node in list(model.graph.node):
            new_type = SWAPS.get(node.op_type)
            if new_type is None:
                continue
            name = node.name.replace(node.op_type, new_type) if node.op_type in node.name \
                else f"{new_type}_{count}"
            new = make_rtl_node(node, new_type, name)
            try:
                getCustomOp(new).check_supported()
            except ToolkitError as err:
                log.info("%s keeps HLS: %s", node.name, err)
                continue
            put_in_place(model, node, new)
            count += 1
        if count:
            log.info("%d stream fork(s)/join(s) now use the RTL units", count)
        return model, False
