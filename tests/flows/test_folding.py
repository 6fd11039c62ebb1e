"""Folding estimates the design ``hw_codegen`` builds: a binary MVAU that becomes the project's
``XnorMVAU_rtl`` is sized with the unit's own LUT/BRAM model, and keeps its weights on chip."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from qonnx.custom_op.registry import getCustomOp

from flows import folding
from flows.config import FlowConfig
from tests.flows.graphs import make_model

HLS = "finn.custom_op.fpgadataflow.hls"
PART = "xczu7ev-ffvc1156-2-e"  # zcu104


def _xnor_mvau(mw: int, mh: int, pe: int = 1, simd: int = 1):
    """One binary MVAU_hls (XNOR, one threshold) over a single vector."""
    rng = np.random.default_rng(0)
    node = helper.make_node(
        "MVAU_hls", ["x", "w", "t"], ["y"], domain=HLS, name="MVAU_hls_0",
        backend="fpgadataflow", MW=mw, MH=mh, PE=pe, SIMD=simd, inputDataType="BINARY",
        weightDataType="BINARY", outputDataType="BINARY", accDataType="UINT16",
        binaryXnorMode=1, noActivation=0, numInputVectors=[1], mem_mode="internal_decoupled")
    inits = {"w": rng.integers(0, 2, (mw, mh)), "t": np.full((mh, 1), mw // 2)}
    return make_model([node], [("x", (1, mw))], [("y", (1, mh))], inits,
                      {"x": "BINARY", "w": "BINARY"})


def _cfg(**kw) -> FlowConfig:
    return FlowConfig(onnx="synthetic.onnx", board="zcu104", **kw)


def _estimate(model) -> dict[str, int]:
    inst = getCustomOp(model.graph.node[0])
    return {"LUT": inst.lut_estimation(PART), "BRAM_18K": inst.bram_estimation(PART)}


def test_a_binary_mvau_is_estimated_as_the_rtl_unit_it_becomes():
    model = _xnor_mvau(256, 64, pe=4, simd=32)  # 128 words: the ROM stays in LUTs
    hls = _estimate(model)
    built = folding.as_built(model, _cfg())
    assert built.graph.node[0].op_type == "XnorMVAU_rtl"
    assert model.graph.node[0].op_type == "MVAU_hls"  # a copy: the model is unchanged
    unit = _estimate(built)
    assert unit != hls and unit["BRAM_18K"] == 0 < hls["BRAM_18K"]
    res = folding.layer_resources(built, PART)["y"]
    assert (res["LUT"], res["BRAM_18K"], res["URAM"], res["DSP"]) == (
        unit["LUT"], unit["BRAM_18K"], 0, 0)
    # with FINN's HLS MVAU chosen, the estimate is FINN's
    hls_built = folding.as_built(model, _cfg(binary_mvau="hls"))
    assert folding.layer_resources(hls_built, PART)["y"]["LUT"] == hls["LUT"]


def test_budget_folding_uses_the_unit_estimate():
    """The unit is cheaper than FINN's HLS estimate for it, so the same budget buys a faster
    folding, and that folding fits by the unit's estimate."""
    model = _xnor_mvau(256, 64)
    rtl_cfg, hls_cfg = _cfg(resource_budget=0.02), _cfg(resource_budget=0.02, binary_mvau="hls")
    rtl = folding.fold_for_budget(model, rtl_cfg)
    hls = folding.fold_for_budget(model, hls_cfg)
    assert folding.max_cycles(rtl)[0] < folding.max_cycles(hls)[0]
    built = folding.as_built(rtl, rtl_cfg)
    assert built.graph.node[0].op_type == "XnorMVAU_rtl"
    assert folding.fits(folding.total_resources(built, PART), rtl_cfg)


@pytest.mark.parametrize("budget,streamed", [(0.7, False), (0.05, True)])
def test_unit_weights_stay_on_chip_unless_they_cannot_fit(budget, streamed):
    """1 Mib of weights: FINN's MVAU would take URAM; the unit embeds them (no URAM). Only if
    even the most folded design does not fit are they streamed, and the layer stays HLS."""
    model = _xnor_mvau(1024, 1024)
    cfg = _cfg(resource_budget=budget)
    folded = folding.fold_for_budget(model, cfg)
    inst = getCustomOp(folded.graph.node[0])
    assert inst.get_nodeattr("ram_style") != "ultra"
    assert (inst.get_nodeattr("mem_mode") == "external") == streamed
    op = folding.as_built(folded, cfg).graph.node[0].op_type
    assert op == ("MVAU_hls" if streamed else "XnorMVAU_rtl")


@pytest.mark.parametrize("words,width,bram18", [
    (144, 128, 4),     # XnorMVAU 288×64, PE 4, SIMD 32: Yosys maps 2 RAMB36 (docs/RESULTS.md)
    (288, 64, 2),      # BipolarMVAU 288×64, PE 2, SIMD 32: Yosys maps 1 RAMB36
    (256, 4096, 114),  # LFC's 1024×1024 at PE 4, SIMD 1024: 512×36 shapes
    (1 << 20, 1, 64),  # the same layer fully folded: 16K×1 shapes
])
def test_unit_rom_bram_model(words, width, bram18):
    from flows.rtl.unit import rom_bram18, rom_in_logic

    assert rom_bram18(words, width) == bram18
    assert not rom_in_logic(words, "auto") and rom_in_logic(words, "distributed")
    assert rom_in_logic(128, "auto") and not rom_in_logic(128, "block")


@pytest.mark.parametrize("mw, simd, want", [(4608, 1, 6), (2048, 1, 2), (1024, 1, 1),
                                            (4608, 9, 9)])
def test_hls_mvau_simd_floor(mw, simd, want):
    """FINN's HLS MVAU asserts SIMD ≥ MW / 1024 at code generation; the folding raises SIMD to
    the smallest divisor of MW that satisfies it (BNext-T's 4 608-wide convs stopped there)."""
    from flows.folding import hls_simd_floor

    model = _xnor_mvau(mw, 8, simd=simd)
    hls_simd_floor(model)
    assert getCustomOp(model.graph.node[0]).get_nodeattr("SIMD") == want
