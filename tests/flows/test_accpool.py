"""The RTL accumulating pools (global sum pool, quantized average pool): against their numpy
models under Verilator, and through FINN's passes (swap, PrepareIP, python exec, Verilator) as
``GlobalSumPool_rtl`` and ``WindowAvgPool_rtl``."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from bnn_brevitas.errors import ToolkitError
from flows.rtl import accpool as ap
from tests.flows.graphs import make_model, needs_verilator, run

HLS = "finn.custom_op.fpgadataflow.hls"

# avg pool (PE, K, folds, in dt, out dt, output pixels): BNext's pool (INT6 -> INT8, shift 0),
# shift 4 signed (floor of negatives), unsigned 3x3 shift 4, K == 1, BINARY in, an output
# wider than the sum, odd PE
AVG = [
    (16, 4, 2, "INT6", "INT8", 5),
    (4, 4, 3, "INT6", "INT4", 4),
    (2, 9, 2, "UINT4", "UINT4", 3),
    (3, 1, 2, "INT3", "INT3", 4),
    (1, 4, 5, "BINARY", "UINT2", 3),
    (8, 2, 1, "INT4", "INT8", 3),
]
# global sum pool (PE, folds, frames, H, W, in dt): BNext's (INT6, 28x28), two frames of
# unsigned, a single pixel and fold, BINARY, full bytes
ACC = [
    (4, 4, 1, 28, 28, "INT6"),
    (2, 3, 2, 3, 5, "UINT3"),
    (1, 1, 1, 1, 1, "INT4"),
    (5, 2, 2, 2, 2, "BINARY"),
    (8, 1, 1, 4, 4, "INT8"),
]


def _acc_odt(idt, pixels):
    """FINN's GlobalAccPool output datatype rule."""
    from qonnx.core.datatype import DataType

    return DataType.get_smallest_possible(pixels * (idt.min() if idt.signed() else idt.max()))


def _avg_case(k, pe, kk, folds, dt, odt, pixels, rng):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    idt, odt = DataType[dt], DataType[odt]
    stream = rng.integers(idt.min(), idt.max() + 1, (1, pixels, folds * kk * pe))
    shift = ap.quant_avgpool_shift(idt.bitwidth(), odt.bitwidth(), kk)
    expected = ap.reference_avgpool(stream, kk, pe, shift)
    assert odt.allowed(expected.min()) and odt.allowed(expected.max())
    p = ap.avgpool_params(pe, kk, folds, idt.bitwidth(), int(idt.min()), int(idt.max()),
                          idt.signed(), odt.bitwidth())
    inw, outw = (pe * idt.bitwidth() + 7) // 8 * 8, (pe * odt.bitwidth() + 7) // 8 * 8
    words = npy_to_rtlsim_input(stream.reshape(1, -1, pe).astype(np.float32), idt, inw)
    return LayerSim(f"avg{k}", "WindowAvgPool_rtl", ap.AVG_MODULE,
                    [str(f) for f in ap.rtl_sources(ap.AVG_MODULE)], {"in0_V": (inw, words)},
                    ("out0_V", outw), expected.reshape(1, pixels * folds, pe), odt,
                    (1, pixels * folds, pe), p)


def _acc_case(k, pe, folds, n, h, w, dt, rng):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    idt = DataType[dt]
    odt = _acc_odt(idt, h * w)
    x = rng.integers(idt.min(), idt.max() + 1, (n, h, w, folds * pe))
    expected = ap.reference_accpool(x)
    p = ap.accpool_params(pe, folds, h * w, idt.bitwidth(), idt.signed(), odt.bitwidth())
    inw, outw = (pe * idt.bitwidth() + 7) // 8 * 8, (pe * odt.bitwidth() + 7) // 8 * 8
    words = npy_to_rtlsim_input(x.reshape(n, h, w, folds, pe).astype(np.float32), idt, inw)
    return LayerSim(f"acc{k}", "GlobalSumPool_rtl", ap.ACC_MODULE,
                    [str(f) for f in ap.rtl_sources(ap.ACC_MODULE)], {"in0_V": (inw, words)},
                    ("out0_V", outw), expected.reshape(n, folds, pe), odt, (n, folds, pe), p)


@needs_verilator
@pytest.mark.parametrize("backpressure", [False, True], ids=["free", "backpressure"])
def test_rtl_matches_model(tmp_path, backpressure):
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    rng = np.random.default_rng(11)
    layers = [_avg_case(k, *s, rng) for k, s in enumerate(AVG)] \
        + [_acc_case(k, *s, rng) for k, s in enumerate(ACC)]
    simulate_group(layers, tmp_path / "sim", backpressure=backpressure)
    assert [la.result for la in layers] == ["exact"] * len(layers)
    if not backpressure:  # one input word per cycle + the output register
        cycles = [la.cycles for la in layers]
        expected = [kk * folds * px for _, kk, folds, _, _, px in AVG] \
            + [folds * n * h * w for _, folds, n, h, w, _ in ACC]
        assert all(e <= c <= e + 8 for c, e in zip(cycles, expected)), (cycles, expected)


def test_models_and_stream_order():
    # 2 channels, PE 1, K 2; Im2Col order (k, c): [k0c0, k0c1, k1c0, k1c1]
    x = np.array([[-3, 20, -4, 19]])
    s = ap.stream_order(x, channels=2, pe=1, k=2)
    assert s.tolist() == [[-3, -4, 20, 19]]  # (C/PE, K, PE)
    assert ap.reference_avgpool(s, k=2, pe=1, shift=1).tolist() == [[-4, 19]]  # floor
    assert ap.quant_avgpool_shift(6, 8, 4) == 0 and ap.quant_avgpool_shift(6, 4, 4) == 4
    assert ap.int_bits(-128, 124, True) == 8 and ap.int_bits(0, 135, False) == 8
    assert ap.reference_accpool(np.ones((2, 3, 4, 5))).shape == (2, 1, 1, 5)


# -- the FINN ops ---------------------------------------------------------------------------

def _graph(ch=8, pe_pool=4, pe_acc=2, k=(2, 2), odims=(3, 2), idt="INT6", pool_odt="INT8",
           seed=0):
    """x -> Pool_hls (QuantAvgPool) -> y -> GlobalAccPool_hls -> z."""
    from qonnx.core.datatype import DataType

    kk = int(np.prod(k))
    pool = helper.make_node(
        "Pool_hls", ["x"], ["y"], domain=HLS, name="Pool_hls_0", backend="fpgadataflow",
        Channels=ch, PE=pe_pool, KernelSize=list(k), Function="QuantAvgPool",
        OutImgDims=list(odims), InputDataType=idt, OutputDataType=pool_odt, BatchSize=1,
        AccumBits=8, Size=0)
    acc = helper.make_node(
        "GlobalAccPool_hls", ["y"], ["z"], domain=HLS, name="GlobalAccPool_hls_0",
        backend="fpgadataflow", NumChannels=ch, PE=pe_acc, inputDataType=pool_odt,
        numInputVectors=[1, *odims])
    model = make_model([pool, acc], [("x", (1, *odims, kk * ch))], [("z", (1, 1, 1, ch))],
                       dtypes={"x": idt}, value_info=[("y", (1, *odims, ch))])
    dt = DataType[idt]
    x = np.random.default_rng(seed).integers(dt.min(), dt.max() + 1,
                                             (1, *odims, kk * ch)).astype(np.float32)
    return model, x


def _swap(model):
    from flows.transforms.accpool import UseAccPoolRTL

    return model.transform(UseAccPoolRTL())


def test_swap_keeps_attributes_and_python_result():
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    model, x = _graph(pool_odt="INT4")  # shift 4
    model = _swap(model)
    pool, acc = model.graph.node
    rtl = "finn.custom_op.fpgadataflow.rtl"
    assert (pool.op_type, pool.domain, pool.name) == ("WindowAvgPool_rtl", rtl,
                                                      "WindowAvgPool_rtl_0")
    assert (acc.op_type, acc.domain, acc.name) == ("GlobalSumPool_rtl", rtl,
                                                   "GlobalSumPool_rtl_0")
    ip, ia = getCustomOp(pool), getCustomOp(acc)
    assert (ip.get_nodeattr("PE"), ip.get_nodeattr("Channels"), ip.shift()) == (4, 8, 4)
    assert ip.get_exp_cycles() == 2 * 4 * 6  # C/PE * K * pixels
    assert ia.get_exp_cycles() == 6 * 4 + 4  # pixels * C/PE + C/PE
    assert ia.get_output_datatype() == DataType["INT7"]  # 6 pixels * -8
    assert ip.bram_estimation() == 0 and ip.lut_estimation() > 0 and ia.lut_estimation() > 0
    # FINN's python model reads (K, C); the numpy model reads the stream (C/PE, K, PE)
    y = ap.reference_avgpool(ap.stream_order(x, 8, 4, 4), 4, 4, 4).reshape(1, 3, 2, 8)
    assert np.array_equal(run(model, x), ap.reference_accpool(y))


def test_other_pools_are_left_alone():
    model, _ = _graph()
    model.graph.node[0].op_type = "Pool_hls"
    from qonnx.custom_op.registry import getCustomOp

    getCustomOp(model.graph.node[0]).set_nodeattr("Function", "MaxPool")
    ops = [n.op_type for n in _swap(model).graph.node]
    assert ops == ["Pool_hls", "GlobalSumPool_rtl"]


def test_unsupported_nodes_name_the_problem():
    from qonnx.custom_op.registry import getCustomOp

    model = _swap(_graph()[0])
    ip, ia = (getCustomOp(n) for n in model.graph.node)
    ip.set_nodeattr("OutputDataType", "INT3")  # shift 5: -128 >> 5 = -4, 124 >> 5 = 3
    ip.check_supported()
    # FINN's shift keeps full-range INT/UINT results in range; a narrower type may not fit
    ip.set_nodeattr("InputDataType", "INT2")
    ip.set_nodeattr("KernelSize", [1, 1])
    ip.set_nodeattr("OutputDataType", "TERNARY")
    with pytest.raises(ToolkitError, match=r"WindowAvgPool_rtl_0: .*results -2 \.\. 1 .*"
                       r"do not fit OutputDataType TERNARY"):
        ip.check_supported()
    ip.set_nodeattr("Function", "AvgPool")
    with pytest.raises(ToolkitError, match="implements QuantAvgPool only, got 'AvgPool'"):
        ip.check_supported()
    ia.set_nodeattr("inputDataType", "BIPOLAR")
    with pytest.raises(ToolkitError, match="GlobalSumPool_rtl_0: .* integer input datatype"):
        ia.check_supported()
    ia.set_nodeattr("inputDataType", "INT4")
    ia.set_nodeattr("numInputVectors", [4])
    with pytest.raises(ToolkitError, match=r"numInputVectors \[N, H, W\], got \[4\]"):
        ia.check_supported()


def pool_stream_input(inst, value: np.ndarray) -> tuple[int, list[int]]:
    """The in0_V stream a depthwise sliding window feeds the pool for its input ``value``."""
    from finn.util.data_packing import npy_to_rtlsim_input

    pe, ch = inst.get_nodeattr("PE"), inst.get_nodeattr("Channels")
    s = ap.stream_order(value, ch, pe, inst.kernel_size())
    words = npy_to_rtlsim_input(s.reshape(inst.get_folded_input_shape(0)),
                                inst.get_input_datatype(0), inst.get_instream_width(0))
    return inst.get_instream_width_padded(0), words


@needs_verilator
def test_generated_rtl_matches_finn_python(tmp_path):
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from flows.divergence import execute_full
    from flows.finn_env import prepare_finn
    from flows.rtl.registry import register_custom_ops
    from flows.rtlsim import simulate_group
    from flows.rtlsim_layers import collect_layers

    prepare_finn(tmp_path / "finn")
    register_custom_ops()
    model, x = _graph(ch=12, pe_pool=6, pe_acc=3, odims=(4, 3), pool_odt="INT5", seed=2)
    model = _swap(model).transform(PrepareIP("xczu7ev-ffvc1156-2-e", 5.0))
    ip, ia = (getCustomOp(n) for n in model.graph.node)
    assert ip.code_generation_ipi()[-1] == (
        "create_bd_cell -type module -reference WindowAvgPool_rtl_0 WindowAvgPool_rtl_0")
    assert ia.code_generation_ipi()[-1] == (
        "create_bd_cell -type module -reference GlobalSumPool_rtl_0 GlobalSumPool_rtl_0")
    ctx = execute_full(model, x)
    layers, skipped = collect_layers(model, ctx)
    assert skipped == [] and [la.op_type for la in layers] == ["WindowAvgPool_rtl",
                                                               "GlobalSumPool_rtl"]
    assert layers[0].inputs["in0_V"] == pool_stream_input(ip, ctx["x"])  # the SWG's order
    simulate_group(layers, tmp_path / "sim")
    assert [la.result for la in layers] == ["exact", "exact"]
    assert ip.get_exp_cycles() <= layers[0].cycles <= ip.get_exp_cycles() + 8
    # the sums leave with the last pixel's words: up to C/PE cycles before FINN's estimate
    folds = 12 // 3
    assert ia.get_exp_cycles() - folds <= layers[1].cycles <= ia.get_exp_cycles() + 8
