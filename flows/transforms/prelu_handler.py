# SPDX-License-Identifier: BSD-3-Clause
"""QONNX → FINN conversion of ``PRelu → Quant`` (a quantized PReLU) into one MultiThreshold.

FINN's ``ConvertQuantActToMultiThreshold`` only knows Relu/identity predecessors; any other
activation is left behind as a float node with no hardware lowering (brevitas#39 asks for
PReLU). A PReLU with slope a ≥ 0 is monotone non-decreasing, so ``Quant(PReLU(x))`` is a step
function of x: a threshold t of the identity quantizer on y = PReLU(x) becomes t on x when
t ≥ 0 and t / a when t < 0 (−∞, i.e. always passed, when a = 0). Per-channel slopes make the
thresholds per channel.

FINN discovers handlers through ``QuantActBaseHandler.__subclasses__()`` (direct subclasses
only), so importing this module registers the handler — no change to the installed finn-plus.
"""

from __future__ import annotations

import numpy as np
from finn.transformation.qonnx.qonnx_activation_handlers import (
    QuantActBaseHandler,
    QuantIdentityHandler,
)

#: stands in for −∞: RoundAndClipThresholds later clips it to the input range
NEG_INF_THRESHOLD = -1e30


class QuantPReluHandler(QuantActBaseHandler):
    """Replace ``PRelu(x, a) → Quant`` (a ≥ 0) by a per-channel MultiThreshold on x."""

    @classmethod
    def valid_predecessor_op_types(cls):
        return ["PRelu"]

    def _prelu_node(self):
        return self._model.find_producer(self._q_node.input[0])

    def _slopes(self) -> np.ndarray:
        slope = self._model.get_initializer(self._prelu_node().input[1])
        if slope is None:
            raise ValueError(f"{self._prelu_node().name}: PRelu slope must be a constant")
        return np.asarray(slope, dtype=np.float64).reshape(-1)

    def _check_compatibility(self):
        QuantIdentityHandler._check_compatibility(self)
        if (self._slopes() < 0).any():
            raise ValueError(f"{self._prelu_node().name}: PRelu slopes must be ≥ 0 to be "
                             "mapped to thresholds (use the model's hw mode)")

    def _calculate_act_bias(self):
        return QuantIdentityHandler._calculate_act_bias(self)

    def _calculate_act_scale(self):
        return QuantIdentityHandler._calculate_act_scale(self)

    def _calculate_thresholds(self):
        t = QuantIdentityHandler._calculate_thresholds(self).astype(np.float64)
        slopes = self._slopes()
        channels = self._model.get_tensor_shape(self._q_node.input[0])[1]
        if slopes.size == 1:
            slopes = np.full(channels, slopes[0])
        t = np.broadcast_to(t, (channels, t.shape[1])).copy()
        for c in range(channels):
            neg = t[c] < 0
            if slopes[c] > 0:
                t[c, neg] = t[c, neg] / slopes[c]
            else:
                t[c, neg] = NEG_INF_THRESHOLD
        return t.astype(np.float32)

    def _remove_activation_node(self, multi_threshold_node):
        prelu = self._prelu_node()
        multi_threshold_node.input[0] = prelu.input[0]
        self._model.graph.node.remove(prelu)
