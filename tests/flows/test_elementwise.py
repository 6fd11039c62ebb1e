"""The RTL elementwise unit: against its numpy model under Verilator (random shapes, the
broadcast squeeze-excitation gate over several frames, signed x unsigned, backpressure), and
through FINN's passes (swap, PrepareIP, python exec, Verilator) as ``EltwiseAdd_rtl`` /
``EltwiseMul_rtl``."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from onnx import helper

from bnn_brevitas.errors import ToolkitError
from flows.rtl import elementwise as ew
from tests.flows.graphs import make_model, needs_verilator

HLS = "finn.custom_op.fpgadataflow.hls"

# (op, PE, C, H, W, frames, lhs, rhs, out, broadcast): BNext's SE gate (INT6 x UINT4, PE 4) and
# residual add, the INT10 x INT6 product, PE 1 gate, one fold (PE == C), signed + unsigned,
# subtraction, a one-pixel frame, wide words (96-bit output)
SHAPES = [
    ("mul", 4, 16, 5, 6, 3, "INT6", "UINT4", "INT10", True),
    ("add", 4, 16, 4, 4, 2, "INT6", "INT6", "INT7", False),
    ("mul", 2, 8, 3, 3, 2, "INT10", "INT6", "INT16", False),
    ("mul", 1, 6, 2, 3, 3, "INT6", "UINT4", "INT10", True),
    ("add", 8, 8, 1, 5, 3, "UINT3", "INT4", "INT5", True),
    ("sub", 3, 6, 2, 2, 2, "UINT4", "UINT4", "INT5", False),
    ("mul", 2, 4, 1, 1, 4, "UINT4", "UINT4", "UINT8", True),
    ("mul", 4, 8, 2, 2, 2, "INT12", "INT12", "INT24", False),
]


def _rand(dt, shape, rng):
    return rng.integers(dt.min(), dt.max() + 1, shape)


def _case(k: int, op, pe, c, h, w, frames, ldt, rdt, odt, bcast, rng):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    ldt, rdt, odt = DataType[ldt], DataType[rdt], DataType[odt]
    lhs = _rand(ldt, (frames, h, w, c), rng)
    rhs = _rand(rdt, (frames, 1, 1, c) if bcast else (frames, h, w, c), rng)
    expected = ew.reference(lhs, rhs, op, odt.bitwidth(), odt.signed())
    s = ew.EltwiseShape(op, pe, c // pe, h * w, ldt.bitwidth(), rdt.bitwidth(), odt.bitwidth(),
                        ldt.signed(), rdt.signed(), odt.signed(), bcast)
    a, b = ew.frames_streams(lhs, rhs, pe, bcast)
    i0, i1, ow = s.widths
    inputs = {"in0_V": (i0, npy_to_rtlsim_input(a.astype(np.float32), ldt, i0)),
              "in1_V": (i1, npy_to_rtlsim_input(b.astype(np.float32), rdt, i1))}
    return LayerSim(f"ew{k}", f"Eltwise_{op}", ew.MODULE, [str(f) for f in ew.rtl_sources()],
                    inputs, ("out0_V", ow), expected, odt, (frames * h * w, c // pe, pe),
                    s.params())


@needs_verilator
@pytest.mark.parametrize("backpressure", [False, True], ids=["free", "backpressure"])
def test_rtl_matches_model(tmp_path, backpressure):
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    rng = np.random.default_rng(11)
    layers = [_case(k, *s, rng) for k, s in enumerate(SHAPES)]
    simulate_group(layers, tmp_path / "sim", backpressure=backpressure)
    assert [la.result for la in layers] == ["exact"] * len(SHAPES)
    if not backpressure:  # one lhs word per cycle + the output register, across frames
        cycles = [la.cycles for la in layers]
        expected = [h * w * c // pe * f for _, pe, c, h, w, f, *_ in SHAPES]
        assert all(e <= cy <= e + 4 for cy, e in zip(cycles, expected)), (cycles, expected)


def test_reference_wraps_and_broadcasts():
    lhs = np.array([[[[-32, 31], [5, -1]]]])       # (1, 1, 2, 2)
    gate = np.array([[[[15, 2]]]])                 # (1, 1, 1, 2)
    assert ew.reference(lhs, gate, "mul", 10, True).tolist() == [[[[-480, 62], [75, -2]]]]
    assert ew.reference(lhs, gate, "mul", 8, True).tolist() == [[[[32, 62], [75, -2]]]]
    assert ew.wrap(np.array([-1, 300]), 8, False).tolist() == [255, 44]
    assert ew.output_range("sub", (0, 15), (0, 15)) == (-15, 15)
    with pytest.raises(ValueError, match="unknown elementwise operation"):
        ew.EltwiseShape("div", 1, 1, 1, 1, 1, 1, False, False, False, False)


# -- through FINN ----------------------------------------------------------------------------
def _eltwise(op="Mul", lhs=(1, 4, 4, 8), rhs=(1, 1, 1, 8), ldt="INT6", rdt="UINT4",
             odt="INT10", pe=4, rhs_init=False, seed=0):
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(seed)
    out = list(np.broadcast_shapes(lhs, rhs))
    node = helper.make_node(
        f"Elementwise{op}_hls", ["a", "b"], ["y"], domain=HLS, name=f"Elementwise{op}_hls_0",
        backend="fpgadataflow", lhs_dtype=ldt, rhs_dtype=rdt, out_dtype=odt,
        lhs_shape=list(lhs), rhs_shape=list(rhs), out_shape=out, lhs_style="input",
        rhs_style="const" if rhs_init else "input", PE=pe, inFIFODepths=[64, 8])
    a = _rand(DataType[ldt], lhs, rng).astype(np.float32)
    b = _rand(DataType[rdt], rhs, rng).astype(np.float32)
    ins = [("a", lhs)] + ([] if rhs_init else [("b", rhs)])
    model = make_model([node], ins, [("y", out)], {"b": b} if rhs_init else None,
                       {"a": ldt, "b": rdt})
    return model, a, b


def _swap(model):
    from flows.transforms.elementwise import UseElementwiseRTL

    return model.transform(UseElementwiseRTL())


def _exec(model, a, b):
    import finn.core.onnx_exec as oxe

    feed = {"a": a} if model.get_initializer("b") is not None else {"a": a, "b": b}
    return oxe.execute_onnx(model, feed, return_full_exec_context=True)


def test_swap_keeps_attributes_and_python_result():
    from qonnx.custom_op.registry import getCustomOp

    model, a, b = _eltwise()
    expected = ew.reference(a, b, "mul", 10, True)
    model = _swap(model)
    node = model.graph.node[0]
    assert (node.op_type, node.domain, node.name) == (
        "EltwiseMul_rtl", "finn.custom_op.fpgadataflow.rtl", "EltwiseMul_rtl_0")
    inst = getCustomOp(node)
    assert inst.get_nodeattr("PE") == 4 and inst.get_nodeattr("inFIFODepths") == [64, 8]
    assert inst.get_exp_cycles() == 4 * 4 * 2
    assert inst.get_verilog_top_module_intf_names()["s_axis"] == [("in0_V", 24), ("in1_V", 16)]
    p = inst.rtl_params()
    assert (p["RHS_BROADCAST"], p["NUM_FOLDS"], p["PIXELS"], p["OP"]) == ("1", "2", "16", "1")
    assert (inst.dsp_estimation(), inst.bram_estimation(), inst.lut_estimation()) == (4, 0, 27)
    assert np.array_equal(_exec(model, a, b)["y"], expected)


@pytest.mark.parametrize("kw, why", [
    (dict(rhs_init=True), "are initializers"),
    (dict(op="Add", lhs=(1, 1, 1, 8), rhs=(1, 4, 4, 8), rdt="INT6", odt="INT7"),
     "needs lhs of the output shape"),
    (dict(rhs=(1, 4, 1, 8)), "needs lhs of the output shape"),
    (dict(ldt="BIPOLAR", odt="INT5"), "needs integer datatypes"),
    (dict(odt="INT8"), "cannot hold INT6 mul UINT4"),
], ids=["const", "lhs-broadcast", "partial-broadcast", "bipolar", "narrow-out"])
def test_unsupported_stays_hls_with_reason(kw, why, caplog):
    model, _, _ = _eltwise(**kw)
    with caplog.at_level(logging.INFO, logger="flows.transforms.elementwise"):
        model = _swap(model)
    assert model.graph.node[0].op_type.endswith("_hls")
    assert why in caplog.text and model.graph.node[0].name in caplog.text


def test_check_supported_names_the_problem():
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(_swap(_eltwise()[0]).graph.node[0])
    inst.set_nodeattr("rhs_style", "const")
    with pytest.raises(ToolkitError, match="EltwiseMul_rtl_0: EltwiseMul_rtl needs both"):
        inst.rtl_shape()


def _layer_sim(model, inst, ctx):
    """Both input streams of the node (``flows.rtlsim.collect_layers`` feeds in0_V only)."""
    from finn.util.data_packing import npy_to_rtlsim_input

    from flows.rtlsim import LayerSim

    node = inst.onnx_node
    intf = inst.get_verilog_top_module_intf_names()
    inputs = {}
    for i, (port, width) in enumerate(intf["s_axis"]):
        x = ctx[node.input[i]].reshape(inst.get_folded_input_shape(i))
        inputs[port] = (width, npy_to_rtlsim_input(x, inst.get_input_datatype(i),
                                                   inst.get_instream_width(i)))
    return LayerSim(node.name, node.op_type, inst.get_verilog_top_module_name(),
                    [str(f) for f in inst.get_rtl_file_list(abspath=True)], inputs,
                    intf["m_axis"][0], ctx[node.output[0]], inst.get_output_datatype(0),
                    tuple(inst.get_folded_output_shape(0)))


@needs_verilator
def test_generated_rtl_matches_finn_python(tmp_path):
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    cases = [  # the SE gate, the residual add, the INT10 x INT6 product, a rank-1 rhs
        dict(),
        dict(op="Add", rhs=(1, 4, 4, 8), rdt="INT6", odt="INT7", pe=2, seed=1),
        dict(lhs=(1, 3, 3, 4), rhs=(1, 3, 3, 4), ldt="INT10", rdt="INT6", odt="INT16", pe=1,
             seed=2),
        dict(lhs=(1, 2, 3, 6), rhs=(6,), ldt="UINT4", rdt="INT3", odt="INT7", pe=3, seed=3),
    ]
    layers, insts = [], []
    for k, kw in enumerate(cases):
        model, a, b = _eltwise(**kw)
        model = _swap(model)
        model.graph.node[0].name = f"{model.graph.node[0].op_type}_t{k}"  # unique modules
        model = model.transform(PrepareIP("xczu7ev-ffvc1156-2-e", 5.0))
        inst = getCustomOp(model.graph.node[0])
        assert inst.code_generation_ipi()[-1].startswith("create_bd_cell -type module")
        ctx = _exec(model, a, b)
        op = {"Mul": "mul", "Add": "add"}[kw.get("op", "Mul")]
        assert np.array_equal(ctx["y"], ew.reference(a, b, op, inst.get_output_datatype()
                                                     .bitwidth(), True))
        layers.append(_layer_sim(model, inst, ctx))
        insts.append(inst)
    simulate_group(layers, tmp_path / "sim")
    assert [la.result for la in layers] == ["exact"] * len(cases)
    for la, inst in zip(layers, insts):
        assert inst.get_exp_cycles() <= la.cycles <= inst.get_exp_cycles() + 4
