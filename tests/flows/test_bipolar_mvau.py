"""The RTL bipolar-weight MVAU against its numpy model, under Verilator, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from flows.rtl import bipolar_mvau as bm
from flows.rtl import synth
from tests.flows.graphs import needs_verilator

# (MW, MH, PE, SIMD, IN_BITS, signed, N_THRES, act_bias, vectors): raw accumulator (INT2 and
# 8-bit unsigned inputs), 3 thresholds with a signed output (CNV-W1A2), one threshold (binary
# out), SF == 1, NF == 1, PE == MH, odd SIMD, 4-bit signed inputs with 15 thresholds
SHAPES = [
    (64, 16, 4, 16, 2, True, 0, 0, 3),
    (27, 8, 2, 27, 8, False, 0, 0, 3),
    (36, 8, 2, 9, 2, True, 3, -1, 4),
    (32, 8, 8, 32, 2, True, 1, 0, 2),
    (30, 6, 1, 5, 3, False, 7, -4, 3),
    (16, 4, 4, 4, 4, True, 15, -8, 5),
    (24, 6, 3, 1, 8, True, 0, 0, 2),
]


def _case(k: int, mw, mh, pe, simd, in_bits, signed, n_thres, bias, vecs, tmp_path, rng):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    out_bits = 0 if not n_thres else max(1, int(n_thres + abs(bias)).bit_length() + (bias < 0))
    shape = bm.BipolarMvauShape(mw, mh, pe, simd, in_bits, signed, n_thres, out_bits, bias)
    lo, hi = shape.x_range
    w = rng.choice([-1, 1], (mw, mh))
    x = rng.integers(lo, hi + 1, (vecs, mw))
    x[0] = hi  # the extremes of the accumulator: all inputs at one end of their range
    x[-1] = lo
    thr = None
    if n_thres:  # sorted per channel, some outside the accumulator's range to test clipping
        b = shape.bound
        thr = np.sort(rng.integers(-b // 4 - 2, b // 4 + 3, (mh, n_thres)), axis=1)
        thr[0, 0], thr[-1, -1] = -b - 5, b + 7
        thr = thr.astype(np.float32)
    expected = bm.reference(x, w, thr, bias)
    wf = bm.write_hex(tmp_path / f"w{k}.hex", bm.weight_words(w, shape), pe * simd)
    tf = None
    if n_thres:
        tf = bm.write_hex(tmp_path / f"t{k}.hex", bm.threshold_words(thr, shape),
                          pe * n_thres * shape.acc_bits)
    odt = DataType[f"INT{shape.obits}"] if (bias < 0 or not n_thres) else \
        DataType[f"UINT{shape.obits}"]
    idt = DataType[f"INT{in_bits}"] if signed else DataType[f"UINT{in_bits}"]
    words = npy_to_rtlsim_input(x.reshape(1, vecs, shape.sf, simd).astype(np.float32), idt,
                                shape.in_width)
    return LayerSim(f"bip{k}", "BipolarMVAU_rtl", bm.MODULE, [str(f) for f in bm.rtl_sources()],
                    {"in0_V": (shape.in_width, words)}, ("out0_V", shape.out_width),
                    expected.reshape(1, vecs, mh), odt, (1, vecs, shape.nf, pe),
                    shape.params(wf, tf))


@needs_verilator
@pytest.mark.parametrize("backpressure", [False, True], ids=["free", "backpressure"])
def test_rtl_matches_model(tmp_path, backpressure):
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    rng = np.random.default_rng(11)
    layers = [_case(k, *s, tmp_path, rng) for k, s in enumerate(SHAPES)]
    simulate_group(layers, tmp_path / "sim", backpressure=backpressure)
    assert [la.result for la in layers] == ["exact"] * len(SHAPES)
    if not backpressure:  # NF*SF cycles per vector + 4 cycles of pipeline
        cycles = [la.cycles for la in layers]
        expected = [m // s * (h // p) * v for m, h, p, s, *_, v in SHAPES]
        assert all(e <= c <= e + 8 for c, e in zip(cycles, expected)), (cycles, expected)


def test_reference_model_small_case():
    # x = [2, -1, 3]; columns +,+,- → 2 - 1 - 3 = -2; -,+,+ → -2 - 1 + 3 = 0
    w = np.array([[1, -1], [1, 1], [-1, 1]])
    x = np.array([[2, -1, 3]])
    assert bm.reference(x, w, None).tolist() == [[-2, 0]]
    assert bm.reference(x, w, np.array([[-2.5, -1.0]]), act_bias=-1).tolist() == [[0, 1]]


def test_weight_words_layout():
    shape = bm.BipolarMvauShape(mw=4, mh=2, pe=2, simd=2, in_bits=2, in_signed=True)
    w = -np.ones((4, 2), dtype=int)
    w[3, 1] = 1  # input 3 = fold s=1, lane i=1; channel 1 = fold f=0, PE p=1 → bit 1*2+1
    assert bm.weight_words(w, shape) == [0, 1 << 3]
    with pytest.raises(ValueError, match="-1 or \\+1"):
        bm.weight_words(np.zeros((4, 2)), shape)


def test_threshold_words_clip_and_layout():
    # INT2 inputs, MW = 3: |acc| <= 6, so ACC_BITS = 4 and thresholds clip to -6 .. 7
    shape = bm.BipolarMvauShape(mw=3, mh=2, pe=1, simd=3, in_bits=2, in_signed=True, n_thres=2)
    assert (shape.bound, shape.acc_bits) == (6, 4)
    words = bm.threshold_words(np.array([[-9.0, 2.5], [-1.0, 99.0]]), shape)
    # 4-bit two's complement fields: channel 0 → (-6, 3), channel 1 → (-1, 7)
    assert words == [(-6 & 15) | 3 << 4, 15 | 7 << 4]


def test_shape_rules():
    with pytest.raises(ValueError, match="MW=10 % SIMD=4"):
        bm.BipolarMvauShape(mw=10, mh=4, pe=2, simd=4, in_bits=2, in_signed=True)
    with pytest.raises(ValueError, match=">= 2 when signed"):
        bm.BipolarMvauShape(mw=8, mh=4, pe=2, simd=4, in_bits=1, in_signed=True)
    s = bm.BipolarMvauShape(mw=27, mh=64, pe=2, simd=27, in_bits=8, in_signed=False)
    assert (s.bound, s.acc_bits, s.in_width, s.out_width) == (27 * 255, 14, 216, 32)


@pytest.mark.skipif(synth.find_yosys() is None,
                    reason="Yosys not found (pip install -r requirements/rtl.txt)")
def test_yosys_tiny_point_uses_luts_only(tmp_path):
    shape = bm.BipolarMvauShape(mw=16, mh=4, pe=2, simd=8, in_bits=2, in_signed=True,
                                n_thres=2)
    r = synth.synth_bipolar_mvau(shape, tmp_path, seed=0)
    # 3 trees of 8 2-bit terms, 2 accumulators, 4 comparators, a 4-word ROM: ~100-200 LUTs
    assert 40 <= r["luts"] <= 600 and r["dsp"] == 0, r
    assert (r["in_bits"], r["acc_bits"]) == (2, shape.acc_bits)
    est = synth.finn_estimates(shape)["BipolarMVAU_rtl"]["luts"]
    assert 0.5 * r["luts"] <= est <= 2 * r["luts"], (est, r["luts"])
