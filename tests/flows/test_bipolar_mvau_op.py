"""``BipolarMVAU_rtl`` through FINN's own passes: swap, PrepareIP, python exec, Verilator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from bnn_brevitas.errors import ToolkitError
from tests.flows.graphs import make_model, needs_verilator, run

HLS = "finn.custom_op.fpgadataflow.hls"
RTL = "finn.custom_op.fpgadataflow.rtl"
PART = "xczu7ev-ffvc1156-2-e"


def _bipolar_mvau(mw=32, mh=8, pe=2, simd=8, idt="INT2", n_thres=2, odt="INT2", act=-1,
                  vecs=(1, 2, 2), wdt="INT2", op="MVAU_hls", seed=0, res_type="lut"):
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(seed)
    inputs = ["x", "w"] + (["t"] if n_thres else [])
    i_dt = DataType[idt]
    acc = "INT16"
    attrs = dict(MW=mw, MH=mh, PE=pe, SIMD=simd, inputDataType=idt, weightDataType=wdt,
                 outputDataType=odt if n_thres else acc, accDataType=acc, binaryXnorMode=0,
                 noActivation=0 if n_thres else 1, ActVal=act if n_thres else 0,
                 numInputVectors=list(vecs), mem_mode="internal_decoupled", resType=res_type)
    node = helper.make_node(op, inputs, ["y"], domain=HLS if op.endswith("hls") else RTL,
                            name=f"{op}_0", backend="fpgadataflow", **attrs)
    inits = {"w": rng.choice([-1, 1], (mw, mh))}
    if n_thres:
        b = mw * max(-int(i_dt.min()), int(i_dt.max()))
        inits["t"] = np.sort(rng.integers(-b // 3, b // 3 + 1, (mh, n_thres)), axis=1)
    model = make_model([node], [("x", (*vecs, mw))], [("y", (*vecs, mh))], inits,
                       {"x": idt, "w": wdt})
    x = rng.integers(int(i_dt.min()), int(i_dt.max()) + 1, (*vecs, mw)).astype(np.float32)
    return model, x


def _swap(model):
    from flows.transforms.bipolar_mvau import UseBipolarMvauRTL

    return model.transform(UseBipolarMvauRTL())


def test_swap_keeps_attributes_and_python_result():
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from flows.rtl.bipolar_mvau import reference

    model, x = _bipolar_mvau()
    expected = reference(x, model.get_initializer("w"), model.get_initializer("t"), -1)
    model = _swap(model)
    node = model.graph.node[0]
    assert (node.op_type, node.domain, node.name) == ("BipolarMVAU_rtl", RTL, "BipolarMVAU_rtl_0")
    inst = getCustomOp(node)
    assert (inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")) == (2, 8)
    assert inst.get_nodeattr("mem_mode") == "internal_embedded"
    assert inst.get_input_datatype(1) == DataType["BIPOLAR"] == model.get_tensor_datatype("w")
    assert inst.get_exp_cycles() == 4 * 4 * 4  # NF * SF * vectors
    assert inst.get_verilog_top_module_intf_names()["s_axis"] == [("in0_V", 16)]
    assert (inst.dsp_estimation(PART), inst.uram_estimation(PART)) == (0, 0)
    assert inst.lut_estimation(PART) > 0
    assert np.array_equal(run(model, x), expected)  # FINN's python model of the MVAU


@pytest.mark.parametrize("kw", [dict(op="MVAU_rtl", n_thres=0), dict(wdt="BIPOLAR")],
                         ids=["mvau_rtl", "bipolar_annotation"])
def test_swap_takes_rtl_mvaus_and_bipolar_annotation(kw):
    assert _swap(_bipolar_mvau(**kw)[0]).graph.node[0].op_type == "BipolarMVAU_rtl"


def test_left_alone():
    model, _ = _bipolar_mvau()
    model.set_initializer("w", 2 * model.get_initializer("w"))  # ±2: not bipolar
    assert _swap(model).graph.node[0].op_type == "MVAU_hls"
    model, _ = _bipolar_mvau(res_type="dsp")  # a deliberate choice of DSPs
    assert _swap(model).graph.node[0].op_type == "MVAU_hls"
    model, _ = _bipolar_mvau()
    from qonnx.custom_op.registry import getCustomOp

    getCustomOp(model.graph.node[0]).set_nodeattr("mem_mode", "external")
    assert _swap(model).graph.node[0].op_type == "MVAU_hls"


def test_unsupported_node_names_the_problem():
    from qonnx.custom_op.registry import getCustomOp

    model = _swap(_bipolar_mvau()[0])
    inst = getCustomOp(model.graph.node[0])
    inst.set_nodeattr("mem_mode", "external")
    with pytest.raises(ToolkitError, match="BipolarMVAU_rtl_0: BipolarMVAU_rtl embeds"):
        inst.check_supported()
    inst.set_nodeattr("inputDataType", "BIPOLAR")
    with pytest.raises(ToolkitError, match="integer \\(non-bipolar\\) inputs"):
        inst.check_supported()


def test_lut_estimate_grows_with_parallelism():
    from qonnx.custom_op.registry import getCustomOp

    est = []
    for pe, simd in ((1, 8), (2, 8), (2, 16), (8, 32)):
        model = _swap(_bipolar_mvau(pe=pe, simd=simd)[0])
        est.append(getCustomOp(model.graph.node[0]).lut_estimation(PART))
    assert est == sorted(est) and est[-1] > 4 * est[0]


@needs_verilator
@pytest.mark.parametrize("kw", [
    dict(),                                                  # INT2 in, 2 thresholds, INT2 out
    dict(n_thres=1, odt="BIPOLAR", act=0, pe=4, simd=32),    # binary out, SF = 1
    dict(idt="UINT8", n_thres=0, pe=1, simd=16),             # 8-bit pixels, raw accumulator
    dict(idt="INT4", n_thres=0, pe=8, simd=4, op="MVAU_rtl"),  # noActivation MVAU_rtl
    dict(idt="UINT2", n_thres=2, odt="UINT2", act=0),        # unsigned in and out
], ids=["int2", "bipolar_out", "uint8_acc", "int4_rtl", "uint2"])
def test_generated_rtl_matches_finn_python(tmp_path, kw):
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from flows.divergence import execute_full
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group
    from flows.rtlsim_layers import collect_layers

    prepare_finn(tmp_path / "finn")
    model, x = _bipolar_mvau(**kw)
    model = _swap(model).transform(PrepareIP(PART, 5.0))
    inst = getCustomOp(model.graph.node[0])
    assert model.graph.node[0].op_type == "BipolarMVAU_rtl"
    assert inst.code_generation_ipi()[-1] == (
        "create_bd_cell -type module -reference BipolarMVAU_rtl_0 BipolarMVAU_rtl_0")
    layers, skipped = collect_layers(model, execute_full(model, x))
    assert skipped == [] and len(layers) == 1
    simulate_group(layers, tmp_path / "sim")
    assert layers[0].result == "exact"
    assert inst.get_exp_cycles() <= layers[0].cycles <= inst.get_exp_cycles() + 8
