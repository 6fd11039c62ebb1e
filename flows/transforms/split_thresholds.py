# SPDX-License-Identifier: BSD-3-Clause
"""Split the thresholds off non-binary MVAUs, so they specialize to MVAU_rtl + Thresholding_rtl.

FINN absorbs a MultiThreshold into the MVAU in front of it
(``InferQuantizedMatrixVectorActivation``) and an MVAU with thresholds exists only as HLS. Run
after ``convert_to_hw``, :class:`SplitMVAUThresholds` turns every such MVAU (not binaryXnorMode)
back into an MVAU with ``noActivation=1`` feeding a ``Thresholding`` layer, which FINN
implements in RTL (finn-rtllib's ``mvu`` and ``thresholding``), so these layers can be simulated
with Verilator. MVAUs that have no thresholds to begin with (a network's last layer) are marked
for ``MVAU_rtl`` where FINN accepts it, too.

Binary-weight MVAUs keep their thresholds: XNOR ones (binary activations) and, by default,
those with ±1 weights and multi-bit activations; the project's ``XnorMVAU_rtl`` and
``BipolarMVAU_rtl`` absorb them and add/subtract in LUTs, where ``MVAU_rtl`` would take the ±1
weights as INT2 on DSPs (``flows/transforms/bipolar_mvau.py``).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import calculate_matvec_accumulator_range

from ..names import HW_DOMAIN
from ..rtl.bipolar_mvau import is_bipolar


def _acc_datatype(weights: np.ndarray | None, idt: DataType, wdt: DataType, mw: int, mh: int,
                  worst_case: bool) -> DataType:
    """The narrowest accumulator type, as FINN's MVAU.minimize_accumulator_width computes it,
    but always signed (the RTL MVU accumulates in two's complement: an unsigned UINTn
    accumulator would trip its overflow check at 2**(n-1)) and at least as wide as the MVU's
    product (mvu.sv: ACCU_WIDTH >= WEIGHT_WIDTH + ACTIVATION_WIDTH - SIGNED_ACTIVATIONS)."""
    if worst_case or weights is None:
        lo = calculate_matvec_accumulator_range(wdt.min() * np.ones((mw, mh)), idt)
        hi = calculate_matvec_accumulator_range(wdt.max() * np.ones((mw, mh)), idt)
        acc_min, acc_max = min(lo + hi), max(lo + hi)
    else:
        acc_min, acc_max = calculate_matvec_accumulator_range(weights, idt)
    bits = int(np.ceil(np.log2(max(-acc_min, acc_max + 1, 1)))) + 1  # signed
    bits = max(bits, wdt.bitwidth() + idt.bitwidth() - (1 if idt.signed() else 0))
    return DataType[f"INT{bits}"]


class SplitMVAUThresholds(Transformation):
    """MVAU(noActivation=0, binaryXnorMode=0) -> MVAU(noActivation=1) + Thresholding.

    * MVAUs with ±1 weights (BIPOLAR, e.g. cnv's first layer, INT8 x {-1,+1}) are left whole
      for ``BipolarMVAU_rtl``; with ``bipolar=True`` they are split too, their weights retyped
      INT2 (same values, narrow range: the RTL MVU needs weights of >= 2 bits, and DSPs).
    * The accumulator tensor gets an exact signed type (see ``_acc_datatype``); run
      ``RoundAndClipThresholds`` afterwards to clip the moved thresholds to it.
    * ``preferred_impl_style`` (default "rtl") is set on both new nodes: FINN's automatic choice
      wants >= 4-bit weights and activations for MVAU_rtl, so INT2 weights would stay HLS.
    * With ``fpgapart`` given, a node is only split if FINN would then accept MVAU_rtl for it
      (:func:`mvu_rtl_possible`, the rule of FINN's ``SpecializeLayers``); otherwise it is left
      as is (an HLS MVAU with absorbed thresholds is cheaper than HLS MVAU + separate
      Thresholding).
    * An MVAU without thresholds (``noActivation=1``) and without ±1 weights gets
      ``preferred_impl_style`` where :func:`mvu_rtl_possible` holds (``fpgapart`` given).
    """

    def __init__(self, preferred_impl_style: str = "rtl", fpgapart: str | None = None,
                 bipolar: bool = False):
        super().__init__()
        self.impl_style = preferred_impl_style
        self.fpgapart = fpgapart
        self.bipolar = bipolar

    def apply(self, model: ModelWrapper):
        split = False
        for node in list(model.graph.node):
            if not (node.op_type == "MVAU" and node.domain == HW_DOMAIN):
                continue
            inst = getCustomOp(node)
            if inst.get_nodeattr("binaryXnorMode"):
                continue
            if not self.bipolar and self._bipolar_weights(model, node):
                continue  # BipolarMVAU_rtl, thresholds and all
            if inst.get_nodeattr("noActivation"):
                if self.fpgapart is not None and mvu_rtl_possible(node, self.fpgapart, model):
                    inst.set_nodeattr("preferred_impl_style", self.impl_style)
                continue
            if len(node.input) < 3 or model.get_initializer(node.input[2]) is None:
                continue
            idt = inst.get_input_datatype(0)
            if idt.bitwidth() < 2 or not idt.is_integer():
                continue  # BINARY/BIPOLAR activations: no RTL MVU
            split = self._split(model, node, inst) or split
        if split:  # each split sets its own new tensor's shape and type; annotate the rest once
            model = model.transform(InferShapes()).transform(InferDataTypes())
            model = model.transform(InferDataLayouts())
        return model, False

    @staticmethod
    def _bipolar_weights(model: ModelWrapper, node) -> bool:
        w_name = node.input[1]
        return model.get_tensor_datatype(w_name) == DataType["BIPOLAR"] or \
            is_bipolar(model.get_initializer(w_name))

    def _split(self, model: ModelWrapper, node, inst) -> bool:
        mvau_in, w_name, t_name = node.input[0], node.input[1], node.input[2]
        out = node.output[0]
        idt = inst.get_input_datatype(0)
        wdt = inst.get_input_datatype(1)
        w = model.get_initializer(w_name)
        if wdt == DataType["BIPOLAR"]:
            if w is None or not np.all(np.isin(w, (-1, 1))):
                return False
            wdt = DataType["INT2"]
        if not wdt.is_integer() or not wdt.signed() or wdt.bitwidth() < 2:
            return False
        mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
        worst = bool(inst.get_nodeattr("runtime_writeable_weights")) or \
            inst.get_nodeattr("mem_mode") in ("external", "external_mem", "dynamic")
        adt = _acc_datatype(w, idt, wdt, mw, mh, worst)
        thr = model.get_initializer(t_name)
        odt = inst.get_output_datatype()
        act_val = inst.get_nodeattr("ActVal")  # 0 for BIPOLAR outputs (set by FINN's infer)

        # the new MVAU: same attributes, no thresholds, accumulator output
        acc = model.make_new_valueinfo_name()
        new_mvau = helper.make_node("MVAU", [mvau_in, w_name], [acc], domain=HW_DOMAIN,
                                    name=node.name)
        for a in node.attribute:
            if a.name not in ("noActivation", "ActVal", "outputDataType", "accDataType",
                              "weightDataType", "preferred_impl_style",
                              "ram_style_thresholds"):
                new_mvau.attribute.append(a)
        new_mvau.attribute.extend([
            helper.make_attribute("noActivation", 1),
            helper.make_attribute("ActVal", 0),
            helper.make_attribute("weightDataType", wdt.name),
            helper.make_attribute("outputDataType", adt.name),
            helper.make_attribute("accDataType", adt.name),
            helper.make_attribute("preferred_impl_style", self.impl_style),
        ])
        thr_node = helper.make_node(
            "Thresholding", [acc, t_name], [out], domain=HW_DOMAIN, backend="fpgadataflow",
            name="Thresholding_" + node.name,
            NumChannels=mh, PE=1, numSteps=int(thr.shape[1]),
            inputDataType=adt.name, weightDataType=model.get_tensor_datatype(t_name).name,
            outputDataType=odt.name, numInputVectors=list(inst.get_nodeattr("numInputVectors")),
            ActVal=act_val, preferred_impl_style=self.impl_style,
        )
        if self.fpgapart is not None and not self._rtl_possible(model, new_mvau, w_name, wdt):
            return False

        idx = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        model.graph.node.insert(idx, thr_node)
        model.graph.node.insert(idx, new_mvau)
        model.set_tensor_shape(acc, model.get_tensor_shape(out))
        model.set_tensor_datatype(acc, adt)
        model.set_tensor_layout(acc, model.get_tensor_layout(out)) \
            if model.get_tensor_layout(out) is not None else None
        model.set_tensor_datatype(w_name, wdt)
        return True

    def _rtl_possible(self, model, new_mvau, w_name, wdt) -> bool:
        old = model.get_tensor_datatype(w_name)
        model.set_tensor_datatype(w_name, wdt)
        try:
            return mvu_rtl_possible(new_mvau, self.fpgapart, model)
        finally:
            model.set_tensor_datatype(w_name, old)


def mvu_rtl_possible(node, fpgapart: str, model: ModelWrapper) -> bool:
    """Whether FINN's ``SpecializeLayers`` may implement the MVAU ``node`` as ``MVAU_rtl``.

    Mirrors the private ``_mvu_rtl_possible`` of finn-plus 1.6.1
    (``finn/transformation/fpgadataflow/specialize_layers.py``), which is not imported so that a
    finn-plus upgrade cannot break this module; ``tests/flows/test_mvu_rtl_possible.py`` checks
    that both agree, so an upgrade that changes FINN's rule is noticed. The RTL MVU needs:

    * no embedded thresholds (``noActivation=1``) and no ``binaryXnorMode``;
    * signed weights; on a DSP48E1 part (7-series) also narrow-range ones (the smallest weight
      above the datatype's minimum; runtime weights, with no initializer, count as full range);
    * activations and weights of at least 2 bits;
    * widths that fit the DSP datapath (``finn.util.basic.get_dsp_datapath_limits``): the
      activation width, less one for signed activations, strictly below the B port; the weight
      width at most the A port; the output (accumulator) width at most the P port.
    """
    # third-party, so allowed in a function: lazy like flows' other finn imports
    from finn.util.basic import get_dsp_block, get_dsp_datapath_limits

    inst = getCustomOp(node)
    if inst.get_nodeattr("noActivation") == 0 or inst.get_nodeattr("binaryXnorMode") == 1:
        return False
    wdt, idt = inst.get_input_datatype(1), inst.get_input_datatype(0)
    if not wdt.signed():
        return False
    dsp_block = get_dsp_block(fpgapart)
    weights = model.get_initializer(node.input[1])
    weights_min = wdt.min() if weights is None else np.min(weights)
    if weights_min == wdt.min() and dsp_block == "DSP48E1":
        return False
    max_act, max_weight, max_acc = get_dsp_datapath_limits(dsp_block)
    act_bits = idt.bitwidth() - (1 if idt.signed() else 0)
    return (idt.bitwidth() >= 2 and wdt.bitwidth() >= 2 and act_bits < max_act
            and wdt.bitwidth() <= max_weight
            and inst.get_output_datatype().bitwidth() <= max_acc)
