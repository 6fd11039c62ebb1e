# SPDX-License-Identifier: BSD-3-Clause
"""Swap FINN's HLS stream forks and joins (``DuplicateStreams_hls``, ``StreamingConcat_hls``) for
the project's RTL units (``DupStreams_rtl``, ``Concat_rtl``)."""

from __future__ import annotations

import logging

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bnn_brevitas.errors import ToolkitError

log = logging.getLogger(__name__)

#: attributes that belong to the HLS node's generated code, not to the layer
_DROP = {"code_gen_dir_ipgen", "code_gen_dir_cppsim", "executable_path", "ipgen_path",
         "ip_path", "ip_vlnv", "rtlsim_so", "res_hls", "cycles_rtlsim", "gen_top_module"}

#: HLS op type → RTL op type
SWAPS = {"DuplicateStreams_hls": "DupStreams_rtl", "StreamingConcat_hls": "Concat_rtl"}


class UseStreamsRTL(Transformation):
    """Every ``DuplicateStreams_hls`` becomes a ``DupStreams_rtl`` and every
    ``StreamingConcat_hls`` a ``Concat_rtl``, with the same attributes, tensors, folding and
    FIFO depths. A node the RTL does not support (non-integer concat inputs) stays HLS."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from flows.rtl import RTL_DOMAIN
        from flows.rtl.streams_op import register

        register()
        graph, count = model.graph, 0
        for idx, node in enumerate(list(graph.node)):
            new_type = SWAPS.get(node.op_type)
            if new_type is None:
                continue
            name = node.name.replace(node.op_type, new_type) if node.op_type in node.name \
                else f"{new_type}_{count}"
            new = helper.make_node(new_type, list(node.input), list(node.output), name=name,
                                   domain=RTL_DOMAIN)
            known = getCustomOp(new).get_nodeattr_types()
            new.attribute.extend(a for a in node.attribute
                                 if a.name in known and a.name not in _DROP)
            try:
                getCustomOp(new).check_supported()
            except ToolkitError as err:
                log.info("%s keeps HLS: %s", node.name, err)
                continue
            graph.node.remove(node)
            graph.node.insert(idx, new)
            count += 1
        if count:
            log.info("%d stream fork(s)/join(s) now use the RTL units", count)
        return model, False
