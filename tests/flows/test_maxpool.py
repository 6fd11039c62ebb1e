"""The RTL window max-pool: against its numpy model under Verilator, and through FINN's passes
(swap, PrepareIP, python exec, Verilator) as ``WindowMaxPool_rtl``."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from flows.rtl import maxpool as mp
from tests.flows.graphs import make_model, needs_verilator, run

HLS = "finn.custom_op.fpgadataflow.hls"

# (PE, K, folds, datatype, output pixels): CNV's two pools (BINARY), K == 1, a signed 4-bit
# and a signed 2-bit window, odd PE, full byte elements
SHAPES = [
    (16, 4, 4, "BINARY", 6),
    (4, 4, 32, "BINARY", 2),
    (3, 9, 2, "INT4", 5),
    (2, 1, 3, "UINT3", 4),
    (5, 2, 1, "INT2", 7),
    (8, 3, 2, "UINT8", 3),
]


def _case(k: int, pe, kk, folds, dt, pixels, rng):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    idt = DataType[dt]
    stream = rng.integers(idt.min(), idt.max() + 1, (1, pixels, folds * kk * pe))
    expected = mp.reference(stream, kk, pe)
    p = mp.params(pe, kk, folds, idt.bitwidth(), idt.signed())
    width = int(p["IN_WIDTH"])
    words = npy_to_rtlsim_input(stream.reshape(1, -1, pe).astype(np.float32), idt, width)
    return LayerSim(f"pool{k}", "WindowMaxPool_rtl", mp.MODULE,
                    [str(f) for f in mp.rtl_sources()], {"in0_V": (width, words)},
                    ("out0_V", width), expected.reshape(1, pixels * folds, pe), idt,
                    (1, pixels * folds, pe), p)


@needs_verilator
@pytest.mark.parametrize("backpressure", [False, True], ids=["free", "backpressure"])
def test_rtl_matches_model(tmp_path, backpressure):
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    rng = np.random.default_rng(3)
    layers = [_case(k, *s, rng) for k, s in enumerate(SHAPES)]
    simulate_group(layers, tmp_path / "sim", backpressure=backpressure)
    assert [la.result for la in layers] == ["exact"] * len(SHAPES)
    if not backpressure:  # one input word per cycle + the output register
        cycles = [la.cycles for la in layers]
        expected = [kk * folds * px for _, kk, folds, _, px in SHAPES]
        assert all(e <= c <= e + 8 for c, e in zip(cycles, expected)), (cycles, expected)


def test_reference_and_stream_order():
    # 2 channels, PE 1, K 2; Im2Col order (k, c): [k0c0, k0c1, k1c0, k1c1]
    x = np.array([[10, 20, 11, 19]])
    s = mp.stream_order(x, channels=2, pe=1, k=2)
    assert s.tolist() == [[10, 11, 20, 19]]  # (C/PE, K, PE)
    assert mp.reference(s, k=2, pe=1).tolist() == [[11, 20]]


def _pool(fxn="MaxPool", ch=8, pe=2, k=(2, 2), odims=(3, 3), dt="BINARY", seed=0):
    from qonnx.core.datatype import DataType

    kk = int(np.prod(k))
    node = helper.make_node(
        "Pool_hls", ["x"], ["y"], domain=HLS, name="Pool_hls_0", backend="fpgadataflow",
        Channels=ch, PE=pe, KernelSize=list(k), Function=fxn, OutImgDims=list(odims),
        InputDataType=dt, OutputDataType=dt, BatchSize=1)
    model = make_model([node], [("x", (1, *odims, kk * ch))], [("y", (1, *odims, ch))],
                       dtypes={"x": dt})
    idt = DataType[dt]
    x = np.random.default_rng(seed).integers(idt.min(), idt.max() + 1,
                                             (1, *odims, kk * ch)).astype(np.float32)
    return model, x


def _swap(model):
    from flows.transforms.maxpool import UseMaxPoolRTL

    return model.transform(UseMaxPoolRTL())


def test_swap_keeps_attributes_and_python_result():
    from qonnx.custom_op.registry import getCustomOp

    model, x = _pool()
    model = _swap(model)
    node = model.graph.node[0]
    assert (node.op_type, node.domain, node.name) == (
        "WindowMaxPool_rtl", "finn.custom_op.fpgadataflow.rtl", "WindowMaxPool_rtl_0")
    inst = getCustomOp(node)
    assert (inst.get_nodeattr("PE"), inst.get_nodeattr("Channels")) == (2, 8)
    assert inst.get_exp_cycles() == 4 * 4 * 9  # C/PE * K * pixels
    assert inst.bram_estimation() == 0 and inst.lut_estimation() > 0
    # FINN's python model reads (K, C); the numpy model reads the stream (C/PE, K, PE)
    expected = mp.reference(mp.stream_order(x, 8, 2, 4), 4, 2).reshape(1, 3, 3, 8)
    assert np.array_equal(run(model, x), expected)


def test_avgpool_is_left_alone():
    model, _ = _pool(fxn="AvgPool", dt="UINT4")
    assert _swap(model).graph.node[0].op_type == "Pool_hls"


def pool_stream_input(inst, value: np.ndarray) -> tuple[int, list[int]]:
    """The in0_V stream a depthwise sliding window feeds the pool for its input ``value``."""
    from finn.util.data_packing import npy_to_rtlsim_input

    pe, ch = inst.get_nodeattr("PE"), inst.get_nodeattr("Channels")
    s = mp.stream_order(value, ch, pe, int(np.prod(inst.get_nodeattr("KernelSize"))))
    words = npy_to_rtlsim_input(s.reshape(inst.get_folded_input_shape(0)),
                                inst.get_input_datatype(0), inst.get_instream_width(0))
    return inst.get_instream_width_padded(0), words


@needs_verilator
def test_generated_rtl_matches_finn_python(tmp_path):
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from flows.divergence import execute_full
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group
    from flows.rtlsim_layers import collect_layers

    prepare_finn(tmp_path / "finn")
    model, x = _pool(ch=12, pe=4, odims=(4, 3))
    model = _swap(model).transform(PrepareIP("xczu7ev-ffvc1156-2-e", 5.0))
    inst = getCustomOp(model.graph.node[0])
    assert inst.code_generation_ipi()[-1] == (
        "create_bd_cell -type module -reference WindowMaxPool_rtl_0 WindowMaxPool_rtl_0")
    ctx = execute_full(model, x)
    layers, skipped = collect_layers(model, ctx)
    assert skipped == [] and len(layers) == 1
    layers[0].inputs["in0_V"] = pool_stream_input(inst, ctx["x"])  # the SWG's stream order
    simulate_group(layers, tmp_path / "sim")
    assert layers[0].result == "exact"
    assert inst.get_exp_cycles() <= layers[0].cycles <= inst.get_exp_cycles() + 8
