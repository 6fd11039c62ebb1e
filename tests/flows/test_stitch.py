"""Whole-accelerator Verilator simulation of a stitched partition (flows/stitch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from bnn_brevitas.errors import ToolkitError
from tests.flows.graphs import make_model, needs_verilator

PART = "xczu7ev-ffvc1156-2-e"


def _mvau(name, inp, out, mw, mh, pe, simd, thr, odt, vecs):
    return helper.make_node(
        "MVAU", [inp, f"{name}_w", f"{name}_t"], [out], domain="finn.custom_op.fpgadataflow",
        name=name, backend="fpgadataflow", MW=mw, MH=mh, PE=pe, SIMD=simd,
        inputDataType="BINARY", weightDataType="BINARY", outputDataType=odt,
        accDataType="UINT16", binaryXnorMode=1, noActivation=0, numInputVectors=vecs,
        mem_mode="internal_decoupled", inFIFODepths=[2], outFIFODepths=[2])


def _two_layer_partition(seed=0):
    """x (1,4,4,32) bits → XNOR MVAU 32→16 (binary out) → XNOR MVAU 16→8 (3 thresholds)."""
    rng = np.random.default_rng(seed)
    vecs = [1, 4, 4]
    nodes = [_mvau("a", "x", "h", 32, 16, 4, 8, 1, "BINARY", vecs),
             _mvau("b", "h", "y", 16, 8, 2, 16, 3, "UINT2", vecs)]
    inits = {"a_w": rng.integers(0, 2, (32, 16)), "b_w": rng.integers(0, 2, (16, 8)),
             "a_t": rng.integers(10, 23, (16, 1)),
             "b_t": np.sort(rng.integers(2, 15, (8, 3)), axis=1)}
    hw = make_model(nodes, [("x", (1, 4, 4, 32))], [("y", (1, 4, 4, 8))], inits,
                    {"x": "BINARY", "h": "BINARY", "a_w": "BINARY", "b_w": "BINARY"})
    xs = [rng.integers(0, 2, (1, 4, 4, 32)).astype(np.float32) for _ in range(3)]
    return hw, xs


def _compile(hw):
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    from flows.transforms.xnor_mvau import UseXnorMvauRTL

    model = hw.transform(InsertDWC()).transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(PART)).transform(GiveUniqueNodeNames())
    return model.transform(UseXnorMvauRTL()).transform(PrepareIP(PART, 5.0))


def test_hls_layers_are_named():
    from flows.stitch import stitch

    hw, _ = _two_layer_partition()
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    model = hw.transform(SpecializeLayers(PART))
    with pytest.raises(ToolkitError, match=r"2 layer\(s\) have no RTL.*MVAU_hls"):
        stitch(model)


@needs_verilator
def test_stitched_partition_is_exact_with_expected_interval(tmp_path):
    from flows.finn_env import prepare_finn
    from flows.stitch import run_stitched

    prepare_finn(tmp_path / "finn")
    hw, xs = _two_layer_partition()
    final = _compile(hw)
    kinds = sorted({n.op_type for n in final.graph.node})
    assert kinds == ["StreamingDataWidthConverter_rtl", "StreamingFIFO_rtl", "XnorMVAU_rtl"]
    res, st = run_stitched(final, hw, xs, tmp_path / "accel")
    assert res["result"] == "exact"
    assert len(res["frame_done_cycles"]) == 3
    # the slower layer: 16 vectors * (16/4) * (32/8) = 256 cycles per frame
    assert 256 <= res["interval_cycles"] <= 256 * 1.15
    # one instance per layer: module name, then instance name
    assert [st.sv.count(f"  XnorMVAU_rtl_{k} u") for k in (0, 1, 2)] == [1, 1, 0]


@needs_verilator
def test_fifo_sizing_by_simulation(tmp_path):
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP

    from flows.finn_env import prepare_finn
    from flows.stitch import apply_fifo_depths, run_stitched, size_fifos

    prepare_finn(tmp_path / "finn")
    hw, xs = _two_layer_partition()
    final = _compile(hw)
    fifos = [n.name for n in final.graph.node if n.op_type == "StreamingFIFO_rtl"]
    depths = size_fifos(final, tmp_path / "gauge")
    assert sorted(depths) == sorted(fifos) and all(d >= 2 for d in depths.values())
    sized = apply_fifo_depths(final, depths).transform(PrepareIP(PART, 5.0))
    res, _ = run_stitched(sized, hw, xs, tmp_path / "accel")
    assert res["result"] == "exact" and res["interval_cycles"] == 256  # the slower layer


def _bipolar_fc_partition(seed=0):
    """A TFC-like 2-D partition: x (1, 64) INT2 → bipolar MVAU 64→32 (INT2 out) → bipolar
    MVAU 32→10 without activation (the raw accumulator, INT16)."""
    rng = np.random.default_rng(seed)
    common = dict(domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
                  inputDataType="INT2", weightDataType="BIPOLAR", binaryXnorMode=0,
                  numInputVectors=[1], mem_mode="internal_decoupled", inFIFODepths=[2],
                  outFIFODepths=[2])
    nodes = [
        helper.make_node("MVAU", ["x", "a_w", "a_t"], ["h"], name="a", MW=64, MH=32, PE=4,
                         SIMD=16, outputDataType="INT2", accDataType="INT8", ActVal=-1,
                         noActivation=0, **common),
        helper.make_node("MVAU", ["h", "b_w"], ["y"], name="b", MW=32, MH=10, PE=2, SIMD=8,
                         outputDataType="INT16", accDataType="INT16", noActivation=1, **common)]
    inits = {"a_w": rng.choice([-1, 1], (64, 32)), "b_w": rng.choice([-1, 1], (32, 10)),
             "a_t": np.sort(rng.integers(-12, 12, (32, 2)), axis=1)}
    hw = make_model(nodes, [("x", (1, 64))], [("y", (1, 10))], inits,
                    {"x": "INT2", "h": "INT2", "a_w": "BIPOLAR", "b_w": "BIPOLAR"})
    xs = [rng.integers(-2, 2, (1, 64)).astype(np.float32) for _ in range(3)]
    return hw, xs


@needs_verilator
def test_stitched_bipolar_fc_partition_is_exact(tmp_path):
    from flows.finn_env import prepare_finn
    from flows.stitch import run_stitched
    from flows.transforms.bipolar_mvau import UseBipolarMvauRTL

    prepare_finn(tmp_path / "finn")
    hw, xs = _bipolar_fc_partition()
    final = _compile(hw).transform(UseBipolarMvauRTL())
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP

    final = final.transform(PrepareIP(PART, 5.0))
    kinds = sorted({n.op_type for n in final.graph.node})
    assert "BipolarMVAU_rtl" in kinds and not any(k.endswith("_hls") for k in kinds)
    res, _ = run_stitched(final, hw, xs, tmp_path / "accel")
    assert res["result"] == "exact" and len(res["frame_done_cycles"]) == 3


def test_partition_input_any_rank():
    from flows.rtlsim_layers import partition_input

    nhwc, _ = _two_layer_partition()  # input (1, 4, 4, 32)
    x = np.arange(32 * 16, dtype=np.float32).reshape(1, 32, 4, 4)  # NCHW
    assert np.array_equal(partition_input(x, nhwc), x.transpose(0, 2, 3, 1))
    flat, _ = _bipolar_fc_partition()  # input (1, 64)
    v = np.arange(64, dtype=np.float32).reshape(1, 64)
    assert np.array_equal(partition_input(v, flat), v)
    img = v.reshape(1, 1, 8, 8)  # a 1×8×8 image into a flat partition: the host's Reshape
    assert np.array_equal(partition_input(img, flat), v)
