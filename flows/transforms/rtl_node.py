# SPDX-License-Identifier: BSD-3-Clause
"""The node surgery every swap to the project's RTL units (``flows/rtl``) shares: an HLS node's
tensors and layer attributes on a new node of FINN's RTL domain, put in the old one's place."""

from __future__ import annotations

from onnx import NodeProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from flows.names import RTL_DOMAIN
from flows.rtl.registry import register_custom_ops

#: attributes that belong to the HLS node's generated code, not to the layer
CODEGEN_ATTRS = {"code_gen_dir_ipgen", "code_gen_dir_cppsim", "executable_path", "ipgen_path",
                 "ip_path", "ip_vlnv", "rtlsim_so", "res_hls", "cycles_rtlsim",
                 "gen_top_module"}


def make_rtl_node(node: NodeProto, op_type: str, name: str) -> NodeProto:
    """An ``op_type`` node (FINN's RTL domain) with ``node``'s tensors and every attribute the
    new op knows (except generated-code ones); not yet in any graph."""
    register_custom_ops()
    new = helper.make_node(op_type, list(node.input), list(node.output), name=name,
                           domain=RTL_DOMAIN)
    known = getCustomOp(new).get_nodeattr_types()
    new.attribute.extend(a for a in node.attribute
                         if a.name in known and a.name not in CODEGEN_ATTRS)
    return new


def put_in_place(model: ModelWrapper, node: NodeProto, new: NodeProto):
    """Replace ``node`` by ``new`` at the same position; return the new node's custom op."""
    idx = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    model.graph.node.insert(idx, new)
    return getCustomOp(model.graph.node[idx])  # the graph holds a copy of ``new``


def replace_node(model: ModelWrapper, node: NodeProto, op_type: str, name: str):
    """:func:`make_rtl_node` put in ``node``'s place; returns its custom op."""
    return put_in_place(model, node, make_rtl_node(node, op_type, name))
