"""``XnorMVAU_rtl`` through FINN's own passes: swap, PrepareIP, python exec, Verilator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from bnn_brevitas.errors import ToolkitError
from tests.flows.graphs import make_model, needs_verilator, run

HLS = "finn.custom_op.fpgadataflow.hls"


def _binary_mvau(mw=32, mh=8, pe=2, simd=8, n_thres=3, odt="UINT2", act=0, vecs=(1, 2, 2),
                 xnor=1, seed=0):
    rng = np.random.default_rng(seed)
    inputs = ["x", "w"] + (["t"] if n_thres else [])
    node = helper.make_node(
        "MVAU_hls", inputs, ["y"], domain=HLS, name="MVAU_hls_0", backend="fpgadataflow",
        MW=mw, MH=mh, PE=pe, SIMD=simd, inputDataType="BINARY", weightDataType="BINARY",
        outputDataType=odt if n_thres else "UINT16", accDataType="UINT16",
        binaryXnorMode=xnor, noActivation=0 if n_thres else 1, ActVal=act,
        numInputVectors=list(vecs), mem_mode="internal_decoupled")
    inits = {"w": rng.integers(0, 2, (mw, mh))}
    if n_thres:
        inits["t"] = np.sort(rng.integers(0, mw + 1, (mh, n_thres)), axis=1)
    model = make_model([node], [("x", (*vecs, mw))], [("y", (*vecs, mh))], inits,
                       {"x": "BINARY", "w": "BINARY"})
    x = rng.integers(0, 2, (*vecs, mw)).astype(np.float32)
    return model, x


def _swap(model):
    from flows.transforms.xnor_mvau import UseXnorMvauRTL

    return model.transform(UseXnorMvauRTL())


def test_swap_keeps_attributes_and_python_result():
    from qonnx.custom_op.registry import getCustomOp

    from flows.rtl.xnor_mvau import reference

    model, x = _binary_mvau()
    expected = reference(x, model.get_initializer("w"), model.get_initializer("t"))
    model = _swap(model)
    node = model.graph.node[0]
    assert (node.op_type, node.domain, node.name) == (
        "XnorMVAU_rtl", "finn.custom_op.fpgadataflow.rtl", "XnorMVAU_rtl_0")
    inst = getCustomOp(node)
    assert (inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")) == (2, 8)
    assert inst.get_nodeattr("mem_mode") == "internal_embedded"
    assert inst.get_exp_cycles() == 4 * 4 * 4  # NF * SF * vectors
    assert inst.get_verilog_top_module_intf_names()["s_axis"] == [("in0_V", 8)]
    assert np.array_equal(run(model, x), expected)  # FINN's python model of the MVAU


def test_non_binary_mvau_is_left_alone():
    model, _ = _binary_mvau(xnor=0)
    assert _swap(model).graph.node[0].op_type == "MVAU_hls"


def test_unsupported_node_names_the_problem():
    from qonnx.custom_op.registry import getCustomOp

    model = _swap(_binary_mvau()[0])
    inst = getCustomOp(model.graph.node[0])
    inst.set_nodeattr("mem_mode", "external")
    with pytest.raises(ToolkitError, match="XnorMVAU_rtl_0: XnorMVAU_rtl embeds its weights"):
        inst.check_supported()


@needs_verilator
@pytest.mark.parametrize("kw", [
    dict(),                                                # 3 thresholds, UINT2 out
    dict(n_thres=1, odt="BIPOLAR", pe=4, simd=32),         # binary out, SF = 1
    dict(n_thres=7, odt="INT3", act=-4, pe=8, simd=4),     # signed out, PE = MH
    dict(n_thres=0, pe=1, simd=16),                        # raw popcount (noActivation)
], ids=["uint2", "bipolar", "int3", "popcount"])
def test_generated_rtl_matches_finn_python(tmp_path, kw):
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from flows.divergence import execute_full
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group
    from flows.rtlsim_layers import collect_layers

    prepare_finn(tmp_path / "finn")
    model, x = _binary_mvau(**kw)
    model = _swap(model).transform(PrepareIP("xczu7ev-ffvc1156-2-e", 5.0))
    inst = getCustomOp(model.graph.node[0])
    assert inst.code_generation_ipi()[-1] == (
        "create_bd_cell -type module -reference XnorMVAU_rtl_0 XnorMVAU_rtl_0")
    layers, skipped = collect_layers(model, execute_full(model, x))
    assert skipped == [] and len(layers) == 1
    simulate_group(layers, tmp_path / "sim")
    assert layers[0].result == "exact"
    assert inst.get_exp_cycles() <= layers[0].cycles <= inst.get_exp_cycles() + 8
