"""The RTL stream fork (``bnn_dup_streams``) and join (``bnn_concat``): against their numpy
models under Verilator, and through FINN's passes (swap, PrepareIP, python exec, Verilator) as
``DupStreams_rtl`` / ``Concat_rtl``."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from bnn_brevitas.errors import ToolkitError
from flows.rtl import streams as st
from tests.flows.graphs import make_model, needs_verilator

HLS = "finn.custom_op.fpgadataflow.hls"

# fork: (outputs, PE, datatype, words): the default model's shapes (INT6 with 2, 3 and 5
# outputs, INT16 at PE 1), 4 outputs, odd PE with padding, BIPOLAR
DUP_SHAPES = [
    (2, 4, "INT6", 40),
    (3, 8, "INT6", 33),
    (5, 2, "INT6", 21),
    (4, 1, "INT16", 17),
    (2, 3, "UINT3", 12),
    (3, 5, "BIPOLAR", 9),
]
# join: (channels per input, SIMD, input datatypes, vectors): the default model's shapes, mixed
# signedness, 3 and 4 inputs, BIPOLAR inputs (±1), wide elements
CONCAT_SHAPES = [
    ([16, 16], 1, ["INT4", "INT4"], 2),
    ([16, 16], 8, ["INT6", "INT6"], 5),
    ([4, 8, 12], 4, ["UINT3", "INT4", "BIPOLAR"], 3),
    ([6, 3], 3, ["UINT8", "INT2"], 4),
    ([2, 4, 2, 6], 2, ["BINARY", "UINT2", "INT3", "UINT5"], 3),
    ([5, 5], 5, ["BIPOLAR", "BIPOLAR"], 2),
    ([8, 4], 2, ["INT16", "INT14"], 3),
]


def _values(dt: str, shape, rng) -> np.ndarray:
    from qonnx.core.datatype import DataType

    d = DataType[dt]
    if dt == "BIPOLAR":
        return (2 * rng.integers(0, 2, shape) - 1).astype(np.float32)
    if not d.is_integer():
        return rng.standard_normal(shape).astype(np.float32)
    return rng.integers(d.min(), d.max() + 1, shape).astype(np.float32)


def _concat_odt(chans, simd, dts):
    """FINN's output datatype of the join (StreamingConcat.get_output_datatype)."""
    from qonnx.custom_op.registry import getCustomOp

    node = helper.make_node("StreamingConcat_hls", [f"x{i}" for i in range(len(chans))], ["y"],
                            domain=HLS, ChannelsPerStream=chans, SIMD=simd, inputDataTypes=dts)
    return getCustomOp(node).get_output_datatype()


# -- numpy models -------------------------------------------------------------------------------
def test_concat_words_model_matches_finn_packing():
    """The bit-level model (conversion of packed words) equals FINN's packing of the value-level
    join in the output datatype, for every shape."""
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(1)
    for chans, simd, dts, vecs in CONCAT_SHAPES:
        odt = _concat_odt(chans, simd, dts)
        xs = [_values(dt, (vecs, c), rng) for dt, c in zip(dts, chans)]
        words = [npy_to_rtlsim_input(x.reshape(vecs, c // simd, simd), DataType[dt],
                                     simd * DataType[dt].bitwidth())
                 for x, c, dt in zip(xs, chans, dts)]
        got = st.concat_words(words, [c // simd for c in chans],
                              [DataType[dt].bitwidth() for dt in dts],
                              [st.dtype_mode(DataType[dt]) for dt in dts], simd, odt.bitwidth())
        y = st.concat_reference(xs)
        want = npy_to_rtlsim_input(y.reshape(vecs, -1, simd), odt, simd * odt.bitwidth())
        assert got == [int(w) for w in want], (chans, dts, odt)


def test_dup_reference_copies():
    x = np.arange(6).reshape(2, 3)
    outs = st.dup_reference(x, 3)
    assert len(outs) == 3 and all(np.array_equal(o, x) for o in outs)
    outs[0][0, 0] = 99
    assert x[0, 0] == 0


# -- Verilator, unit level ----------------------------------------------------------------------
def _dup_cases(rng, probe_dir, stall):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    layers = []
    for k, (n_out, pe, dt, words) in enumerate(DUP_SHAPES):
        d = DataType[dt]
        width = st.pad8(pe * d.bitwidth())
        x = _values(dt, (1, words, pe), rng)
        stream = npy_to_rtlsim_input(x, d, pe * d.bitwidth())
        inner = f"dup{k}"
        wrapper = probe_dir / f"{inner}.v"
        wrapper.write_text(st.dup_wrapper(inner, n_out, width))
        for j in range(n_out):
            probe = probe_dir / f"{inner}_probe{j}.v"
            probe.write_text(st.dup_probe(f"{inner}_probe{j}", inner, n_out, width, j, stall))
            files = [str(f) for f in st.dup_sources()] + [str(wrapper), str(probe)]
            layers.append(LayerSim(f"{inner}:out{j}", "DupStreams_rtl", f"{inner}_probe{j}",
                                   files, {"in0_V": (width, list(stream))}, ("out0_V", width),
                                   st.dup_reference(x, n_out)[j], d, (1, words, pe)))
    return layers


@needs_verilator
@pytest.mark.parametrize("mode", ["free", "siblings_stall", "backpressure"])
def test_dup_rtl_matches_model(tmp_path, mode):
    """Every output of every fork carries the input stream exactly, also while its sibling
    outputs stall (long and short stalls) and under input/output backpressure."""
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    (tmp_path / "probes").mkdir()
    layers = _dup_cases(np.random.default_rng(5), tmp_path / "probes", mode != "free")
    simulate_group(layers, tmp_path / "sim", backpressure=mode == "backpressure")
    assert [la.result for la in layers] == ["exact"] * len(layers), \
        [(la.name, la.result) for la in layers]
    words = [w for n_out, _, _, w in DUP_SHAPES for _ in range(n_out)]
    cycles = [la.cycles for la in layers]
    if mode == "free":  # one word per cycle, one cycle of latency
        assert all(w <= c <= w + 4 for c, w in zip(cycles, words)), (cycles, words)
    else:  # a stalled sibling holds back the probed output
        assert all(c > w + 4 for c, w in zip(cycles, words)), (cycles, words)


def _concat_cases(rng, wrap_dir):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    layers = []
    for k, (chans, simd, dts, vecs) in enumerate(CONCAT_SHAPES):
        odt = _concat_odt(chans, simd, dts)
        dtypes = [DataType[dt] for dt in dts]
        params = st.concat_params([c // simd for c in chans], [d.bitwidth() for d in dtypes],
                                  [st.dtype_mode(d) for d in dtypes], simd, odt.bitwidth())
        widths = [st.pad8(simd * d.bitwidth()) for d in dtypes]
        top = f"cat{k}"
        wrapper = wrap_dir / f"{top}.v"
        wrapper.write_text(st.concat_wrapper(top, params, widths))
        xs = [_values(dt, (vecs, c), rng) for dt, c in zip(dts, chans)]
        inputs = {f"in{i}_V": (widths[i], npy_to_rtlsim_input(
            x.reshape(vecs, c // simd, simd), d, simd * d.bitwidth()))
            for i, (x, c, d) in enumerate(zip(xs, chans, dtypes))}
        folded = (vecs, sum(chans) // simd, simd)
        ow = int(params["OUT_WIDTH"])
        layers.append(LayerSim(top, "Concat_rtl", top,
                               [str(f) for f in st.concat_sources()] + [str(wrapper)], inputs,
                               ("out0_V", ow), st.concat_reference(xs).reshape(folded), odt,
                               folded))
    return layers


@needs_verilator
@pytest.mark.parametrize("backpressure", [False, True], ids=["free", "backpressure"])
def test_concat_rtl_matches_model(tmp_path, backpressure):
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    (tmp_path / "wrap").mkdir()
    layers = _concat_cases(np.random.default_rng(7), tmp_path / "wrap")
    simulate_group(layers, tmp_path / "sim", backpressure=backpressure)
    assert [la.result for la in layers] == ["exact"] * len(layers), \
        [(la.name, la.result) for la in layers]
    if not backpressure:  # one output word per cycle + the output register
        cycles = [la.cycles for la in layers]
        expected = [v * sum(c) // s for c, s, _, v in CONCAT_SHAPES]
        assert all(e <= c <= e + 4 for c, e in zip(cycles, expected)), (cycles, expected)


# -- through FINN ---------------------------------------------------------------------------
def _fork_join(ch=8, pe=4, simd=2, dt="INT6", vecs=(1, 3, 3), n_out=3, seed=0):
    """x → DuplicateStreams (n_out outputs) → the first two joined by StreamingConcat → y; the
    other outputs are graph outputs too."""
    outs = [f"d{j}" for j in range(n_out)]
    dup = helper.make_node("DuplicateStreams_hls", ["x"], outs, domain=HLS,
                           name="DuplicateStreams_hls_0", backend="fpgadataflow",
                           NumChannels=ch, PE=pe, NumOutputStreams=n_out, inputDataType=dt,
                           numInputVectors=list(vecs))
    cat = helper.make_node("StreamingConcat_hls", ["d0", "d1"], ["y"], domain=HLS,
                           name="StreamingConcat_hls_0", backend="fpgadataflow",
                           ChannelsPerStream=[ch, ch], SIMD=simd, inputDataTypes=[dt, dt],
                           numInputVectors=list(vecs))
    model = make_model([dup, cat], [("x", (*vecs, ch))],
                       [("y", (*vecs, 2 * ch))] + [(o, (*vecs, ch)) for o in outs[2:]],
                       dtypes={"x": dt}, value_info=[(o, (*vecs, ch)) for o in outs[:2]])
    return model, _values(dt, (*vecs, ch), np.random.default_rng(seed))


def _mixed_concat(chans=(4, 6, 2), simd=2, dts=("UINT3", "INT4", "BIPOLAR"), vecs=(1, 2, 3)):
    ins = [f"x{i}" for i in range(len(chans))]
    node = helper.make_node("StreamingConcat_hls", ins, ["y"], domain=HLS,
                            name="StreamingConcat_hls_0", backend="fpgadataflow",
                            ChannelsPerStream=list(chans), SIMD=simd, inputDataTypes=list(dts),
                            numInputVectors=list(vecs))
    model = make_model([node], [(n, (*vecs, c)) for n, c in zip(ins, chans)],
                       [("y", (*vecs, sum(chans)))], dtypes=dict(zip(ins, dts)))
    rng = np.random.default_rng(2)
    return model, {n: _values(dt, (*vecs, c), rng) for n, c, dt in zip(ins, chans, dts)}


def _swap(model):
    from flows.transforms.streams import UseStreamsRTL

    return model.transform(UseStreamsRTL())


def _exec(model, inputs: dict) -> dict:
    import finn.core.onnx_exec as oxe

    return oxe.execute_onnx(model, inputs, return_full_exec_context=True)


def test_swap_keeps_attributes_and_python_result():
    from qonnx.custom_op.registry import getCustomOp

    model, x = _fork_join()
    model = _swap(model)
    dup, cat = model.graph.node
    assert (dup.op_type, dup.domain, dup.name) == (
        "DupStreams_rtl", "finn.custom_op.fpgadataflow.rtl", "DupStreams_rtl_0")
    assert (cat.op_type, cat.name) == ("Concat_rtl", "Concat_rtl_0")
    di, ci = getCustomOp(dup), getCustomOp(cat)
    assert (di.get_nodeattr("PE"), di.get_nodeattr("NumOutputStreams")) == (4, 3)
    assert (ci.get_nodeattr("SIMD"), list(ci.get_nodeattr("ChannelsPerStream"))) == (2, [8, 8])
    assert di.get_exp_cycles() == 2 * 9 and ci.get_exp_cycles() == 8 * 9
    assert [p for p, _ in di.get_verilog_top_module_intf_names()["m_axis"]] == [
        "out0_V", "out1_V", "out2_V"]
    assert [p for p, _ in ci.get_verilog_top_module_intf_names()["s_axis"]] == ["in0_V", "in1_V"]
    assert di.lut_estimation() > 0 and ci.lut_estimation() > 0 and ci.bram_estimation() == 0
    ctx = _exec(model, {"x": x})
    assert np.array_equal(ctx["y"], st.concat_reference(st.dup_reference(x, 2)))
    assert np.array_equal(ctx["d2"], x)

    model, xs = _mixed_concat()
    model = _swap(model)
    inst = getCustomOp(model.graph.node[0])
    assert str(inst.get_output_datatype()) == "INT4"  # UINT3 0..7 fits
    assert inst.rtl_params()["MODE"] == "{32'd2, 32'd1, 32'd0}"
    assert np.array_equal(_exec(model, xs)["y"], st.concat_reference(list(xs.values())))


def test_unsupported_nodes_stay_hls_or_name_the_problem():
    from qonnx.custom_op.registry import getCustomOp

    model, _ = _mixed_concat(dts=("FLOAT32", "INT4", "INT4"))
    assert _swap(model).graph.node[0].op_type == "StreamingConcat_hls"
    model = _swap(_fork_join()[0])
    inst = getCustomOp(model.graph.node[1])
    inst.set_nodeattr("SIMD", 3)
    with pytest.raises(ToolkitError, match=r"Concat_rtl_0: SIMD=3 must divide every "):
        inst.check_supported()
    inst = getCustomOp(model.graph.node[0])
    inst.set_nodeattr("NumOutputStreams", 2)
    with pytest.raises(ToolkitError, match="DupStreams_rtl_0: DupStreams_rtl needs "
                                           "NumOutputStreams >= 2 equal to its 3 outputs"):
        inst.check_supported()


@needs_verilator
def test_generated_rtl_matches_finn_python(tmp_path):
    """Both graphs through PrepareIP; every fork output (siblings stalling) and both joins
    simulate exactly in one Verilator build, the free-running fork and joins at FINN's expected
    cycle count."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group
    from flows.rtlsim_layers import stream_layer_sims

    prepare_finn(tmp_path / "finn")
    part = "xczu7ev-ffvc1156-2-e"
    fj, x = _fork_join()
    fj = _swap(fj).transform(PrepareIP(part, 5.0))
    mixed, xs = _mixed_concat()
    mixed = _swap(mixed)
    mixed.graph.node[0].name = "Concat_rtl_mixed"
    mixed = mixed.transform(PrepareIP(part, 5.0))
    dup = getCustomOp(fj.graph.node[0])
    assert dup.code_generation_ipi()[-1] == (
        "create_bd_cell -type module -reference DupStreams_rtl_0 DupStreams_rtl_0")
    free = stream_layer_sims(fj, _exec(fj, {"x": x}), tmp_path / "probes")
    stalled = stream_layer_sims(fj, _exec(fj, {"x": x}), tmp_path / "probes_stall",
                                stall=True)
    stalled = [la for la in stalled if la.op_type == "DupStreams_rtl"]
    for la in stalled:  # distinct module names for the stalling probes
        old = la.top
        la.top = old.replace("_probe", "_sprobe")
        path = tmp_path / "probes_stall" / f"{old}.v"
        new = path.with_name(f"{la.top}.v")
        new.write_text(path.read_text().replace(f"module {old}", f"module {la.top}"))
        la.files[-1] = str(new)
        la.name += ":stall"
    layers = free + stalled + stream_layer_sims(mixed, _exec(mixed, xs), tmp_path / "probes")
    assert len(layers) == 3 + 1 + 3 + 1
    simulate_group(layers, tmp_path / "sim")
    assert [la.result for la in layers] == ["exact"] * len(layers), \
        [(la.name, la.result) for la in layers]
    for la, node in [(free[0], fj.graph.node[0]), (free[3], fj.graph.node[1]),
                     (layers[-1], mixed.graph.node[0])]:
        exp = getCustomOp(node).get_exp_cycles()
        assert exp <= la.cycles <= exp + 4, (la.name, la.cycles, exp)
