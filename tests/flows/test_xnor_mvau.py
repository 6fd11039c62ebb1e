"""The RTL XNOR-popcount MVAU against its numpy model, under Verilator, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from flows.rtl import xnor_mvau as xm
from tests.flows.graphs import needs_verilator


# (MW, MH, PE, SIMD, N_THRES, act_bias, vectors): raw popcount, one threshold (binary out),
# multi-bit signed output (BNext's 6-bit trunk), SF == 1, NF == 1, PE == MH, odd SIMD
SHAPES = [
    (64, 16, 4, 16, 0, 0, 3),
    (36, 8, 2, 9, 1, 0, 4),
    (72, 12, 3, 8, 63, -32, 3),
    (32, 8, 8, 32, 3, 0, 2),
    (30, 6, 1, 5, 7, -4, 3),
    (16, 4, 4, 4, 0, 0, 5),
]


def _case(k: int, mw, mh, pe, simd, n_thres, bias, vecs, tmp_path, rng):
    from finn.util.data_packing import npy_to_rtlsim_input
    from qonnx.core.datatype import DataType

    from flows.rtlsim import LayerSim

    shape = xm.XnorMvauShape(mw, mh, pe, simd, n_thres, 0 if not n_thres else
                             max(1, int(n_thres + abs(bias)).bit_length() + (bias < 0)), bias)
    w = rng.integers(0, 2, (mw, mh))
    x = rng.integers(0, 2, (vecs, mw))
    thr = None
    if n_thres:  # sorted per channel, spread a little outside 0..MW to test the clipping
        thr = np.sort(rng.integers(-2, mw + 3, (mh, n_thres)), axis=1).astype(np.float32)
    expected = xm.reference(x, w, thr, bias)
    wf = xm.write_hex(tmp_path / f"w{k}.hex", xm.weight_words(w, shape), pe * simd)
    tf = None
    if n_thres:
        tf = xm.write_hex(tmp_path / f"t{k}.hex", xm.threshold_words(thr, shape),
                          pe * n_thres * xm.count_bits(mw))
    odt = DataType[f"INT{shape.obits}"] if bias < 0 else DataType[f"UINT{shape.obits}"]
    inw = (simd + 7) // 8 * 8
    words = npy_to_rtlsim_input(x.reshape(1, vecs, shape.sf, simd).astype(np.float32),
                                DataType["BINARY"], inw)
    outw = (pe * shape.obits + 7) // 8 * 8
    return LayerSim(f"xnor{k}", "XnorMVAU_rtl", xm.MODULE, [str(f) for f in xm.rtl_sources()],
                    {"in0_V": (inw, words)}, ("out0_V", outw), expected.reshape(1, vecs, mh),
                    odt, (1, vecs, shape.nf, pe), shape.params(wf, tf))


@needs_verilator
@pytest.mark.parametrize("backpressure", [False, True], ids=["free", "backpressure"])
def test_rtl_matches_model(tmp_path, backpressure):
    from flows.finn_env import prepare_finn
    from flows.rtlsim import simulate_group

    prepare_finn(tmp_path / "finn")
    rng = np.random.default_rng(7)
    layers = [_case(k, *s, tmp_path, rng) for k, s in enumerate(SHAPES)]
    simulate_group(layers, tmp_path / "sim", backpressure=backpressure)
    assert [la.result for la in layers] == ["exact"] * len(SHAPES)
    if not backpressure:  # NF*SF cycles per vector + 3 cycles of pipeline
        cycles = [la.cycles for la in layers]
        expected = [m // s * (h // p) * v for m, h, p, s, _, _, v in SHAPES]
        assert all(e <= c <= e + 8 for c, e in zip(cycles, expected)), (cycles, expected)


def test_reference_model_small_case():
    # x = [1,0,1], w columns [1,0,1] and [0,1,0]: 3 and 0 agreeing positions
    w = np.array([[1, 0], [0, 1], [1, 0]])
    x = np.array([[1, 0, 1]])
    assert xm.reference(x, w, None).tolist() == [[3, 0]]
    assert xm.reference(x, w, np.array([[1.5, 3.0]]), act_bias=-1).tolist() == [[1, -1]]


def test_weight_words_layout():
    shape = xm.XnorMvauShape(mw=4, mh=2, pe=2, simd=2)
    w = np.zeros((4, 2), dtype=int)
    w[3, 1] = 1  # input 3 = fold s=1, lane i=1; channel 1 = fold f=0, PE p=1 → bit 1*2+1
    assert xm.weight_words(w, shape) == [0, 1 << 3]


def test_threshold_words_clip_and_layout():
    shape = xm.XnorMvauShape(mw=6, mh=2, pe=1, simd=6, n_thres=2)
    words = xm.threshold_words(np.array([[-3.0, 2.5], [4.0, 99.0]]), shape)
    # 3-bit fields: channel 0 → (0, 3), channel 1 → (4, 7 = MW+1)
    assert words == [0 | 3 << 3, 4 | 7 << 3]


def test_bad_folding_is_rejected():
    with pytest.raises(ValueError, match="MW=10 % SIMD=4"):
        xm.XnorMvauShape(mw=10, mh=4, pe=2, simd=4)
