# SPDX-License-Identifier: BSD-3-Clause
"""Project-owned RTL layers for FINN dataflow graphs, and their FINN custom ops."""

#: the ONNX domain of FINN's RTL layers; FINN's passes recognise RTL layers by it
RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"


def register_custom_ops() -> None:
    """Make the project's RTL ops known to qonnx's ``getCustomOp`` (idempotent)."""
    from qonnx.custom_op.registry import add_op_to_domain

    from .accpool_op import GlobalSumPool_rtl, WindowAvgPool_rtl
    from .elementwise_op import RTL_OPS as ELTWISE_OPS
    from .maxpool_op import WindowMaxPool_rtl
    from .streams_op import Concat_rtl, DupStreams_rtl
    from .xnor_mvau_op import XnorMVAU_rtl

    for op in (XnorMVAU_rtl, WindowMaxPool_rtl, WindowAvgPool_rtl, GlobalSumPool_rtl,
               DupStreams_rtl, Concat_rtl, *ELTWISE_OPS.values()):
        add_op_to_domain(RTL_DOMAIN, op)
