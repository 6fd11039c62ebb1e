# SPDX-License-Identifier: BSD-3-Clause
"""The registration of the project's RTL ops in FINN's RTL domain.

qonnx's ``getCustomOp`` finds an op class by the node's domain and op type; FINN's passes
recognise RTL layers by the domain (``flows.names.RTL_DOMAIN``). :func:`register_custom_ops`
adds every op of ``flows/rtl/*_op.py`` to that domain; ``flows.finn_env`` calls it whenever it
sets FINN up or loads a model.
"""

from __future__ import annotations

from qonnx.custom_op.registry import add_op_to_domain

from flows.names import RTL_DOMAIN

from .accpool_op import GlobalSumPool_rtl, WindowAvgPool_rtl
from .bipolar_mvau_op import BipolarMVAU_rtl
from .elementwise_op import RTL_OPS as ELTWISE_OPS
from .maxpool_op import WindowMaxPool_rtl
from .streams_op import Concat_rtl, DupStreams_rtl
from .xnor_mvau_op import XnorMVAU_rtl

#: every project RTL op class
RTL_OP_CLASSES = (XnorMVAU_rtl, BipolarMVAU_rtl, WindowMaxPool_rtl, WindowAvgPool_rtl,
                  GlobalSumPool_rtl, DupStreams_rtl, Concat_rtl, *ELTWISE_OPS.values())


def register_custom_ops() -> None:
    """Make the project's RTL ops known to qonnx's ``getCustomOp`` (idempotent)."""
    for op in RTL_OP_CLASSES:
        add_op_to_domain(RTL_DOMAIN, op)
