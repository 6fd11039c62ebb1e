# SPDX-License-Identifier: BSD-3-Clause
"""Give binary (XNOR) MVAUs the accumulator type of what they accumulate: a popcount.

FINN's ``MVAU.minimize_accumulator_width`` sizes a binaryXnorMode accumulator as the range of
``Σ w·x`` with bipolar weights and 0/1 inputs, while the unit accumulates the popcount of
XNOR(x, w), which runs from 0 to MW. For a weight column with fewer than MW positive
entries the type is too narrow (e.g. INT5 for MW = 16), and ``RoundAndClipThresholds`` then
clips thresholds above its maximum down to it: a threshold of 17 becomes 16 and the layer's
output changes whenever all 16 inputs agree. Found by the per-layer RTL simulation of the
trained BNext-nano (``XnorMVAU_rtl_1``, one value 31 instead of 25). Run this after
``MinimizeAccumulatorWidth`` and before ``RoundAndClipThresholds``.
"""

from __future__ import annotations

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation


class FixXnorAccumulator(Transformation):
    """``accDataType`` of every binaryXnorMode MVAU := UINT wide enough for 0 .. MW (and the
    output type too where the MVAU has no activation)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if not node.op_type.startswith(("MVAU", "XnorMVAU")):
                continue
            inst = getCustomOp(node)
            if not inst.get_nodeattr("binaryXnorMode"):
                continue
            adt = DataType[f"UINT{int(inst.get_nodeattr('MW')).bit_length()}"]
            if inst.get_nodeattr("noActivation"):
                out = DataType[inst.get_nodeattr("outputDataType")]
                if out.allowed(inst.get_nodeattr("MW")) and out.allowed(0):
                    continue  # FINN already widened it (e.g. the last layer's byte-aligned type)
                inst.set_nodeattr("outputDataType", adt.name)
                model.set_tensor_datatype(node.output[0], adt)
            inst.set_nodeattr("accDataType", adt.name)
        return model, False
