# SPDX-License-Identifier: BSD-3-Clause
"""Source fixes to finn-rtllib, applied to a private copy that the whole flow then uses.

The installed finn-plus package is never edited: :func:`patched_rtllib` copies its
``finn-rtllib`` into the build directory and applies each :class:`Patch` by exact text
replacement, and :func:`use_patched_rtllib` points FINN's settings at that copy, so code
generation, Vivado IP integration and Verilator simulation all see the same sources. A patch
whose text is not found raises, so a finn-plus update that changes the source is noticed
instead of silently building something else. Each patch says why it is needed; all but one
only make the source acceptable to Verilator (same hardware). The exception,
``mvu/mvu_vvu_axi.sv``, fixes a FINN bug found by the whole-accelerator simulation: MVAU_rtl's
output queue is two entries short, and overflows (assertion in simulation, lost or misaligned
outputs in hardware) when a layer with one input word per output (SF = 1) meets backpressure.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bnn_brevitas.errors import ToolkitError


@dataclass(frozen=True)
class Patch:
    path: str
    find: str
    replace: str
    why: str


PATCHES = (
    Patch(
        "fifo/hdl/fifo.sv",
        find="""	typedef struct {
		int unsigned  lo;
		int unsigned  hi;
	} abits_t;
	function abits_t INIT_ABITS();
		automatic abits_t  abits = '{ lo: $clog2(DEPTH_REQ), hi: 0 };
		if(abits.lo > MIN_ABITS) begin
			// Consider Decomposition into lo + hi
			automatic int unsigned  hi_abits = $clog2(DEPTH_REQ - 2**(abits.lo-1));
			if(hi_abits < abits.lo - 1) begin
				abits.lo--;
				abits.hi = hi_abits < 1? 1 : hi_abits;
			end
		end
		return  abits;
	endfunction : INIT_ABITS
	localparam abits_t       ABITS      = INIT_ABITS();""",
        replace="""	typedef struct packed {
		int unsigned  lo;
		int unsigned  hi;
	} abits_t;
	// [bnn-fpga Verilator patch] same decomposition, as two integer constant functions
	function int unsigned INIT_ABITS_LO();
		automatic int unsigned  lo = $clog2(DEPTH_REQ);
		if(lo > MIN_ABITS && $clog2(DEPTH_REQ - 2**(lo-1)) < lo - 1)  lo--;
		return  lo;
	endfunction : INIT_ABITS_LO
	function int unsigned INIT_ABITS_HI();
		automatic int unsigned  lo = $clog2(DEPTH_REQ);
		automatic int unsigned  hi_abits;
		if(lo <= MIN_ABITS)  return  0;
		hi_abits = $clog2(DEPTH_REQ - 2**(lo-1));
		if(hi_abits >= lo - 1)  return  0;
		return  hi_abits < 1? 1 : hi_abits;
	endfunction : INIT_ABITS_HI
	localparam abits_t       ABITS      = '{ lo: INIT_ABITS_LO(), hi: INIT_ABITS_HI() };""",
        why="Verilator cannot evaluate a constant function that returns an unpacked struct "
            "('Expecting expression to be constant ... INIT_ABITS', fifo.sv:130); the same "
            "arithmetic as two integer functions and a packed struct elaborates"),
    Patch(
        "mvu/add_multi.sv",
        find="""	uwire [SUM_WIDTH-1:0]  sum0;
	if(L < 1) begin : genTrivial
		assign	sum0 = arg[0];
	end : genTrivial
	else begin : genTree
		localparam int unsigned  D = L < DEPTH? L : DEPTH;  // Pipeline stages absorbed by tree

		// Compute the count of decendents for all nodes in the reduction trees.
		typedef int unsigned  leaf_load_t[2*N-1];
		function leaf_load_t init_leaf_loads();
			automatic leaf_load_t  res;
			for(int unsigned  i = 2*N-1; i-- > N-1;)  res[i] = 1;
			for(int unsigned  i =   N-1; i-- >   0;)  res[i] = res[2*i+1] + res[2*i+2];
			return  res;
		endfunction : init_leaf_loads
		localparam leaf_load_t   LEAF_LOAD = init_leaf_loads();""",
        replace="""	// [bnn-fpga Verilator patch] the constant function moved out of the generate block
	typedef int unsigned  leaf_load_t[2*N-1];
	function leaf_load_t init_leaf_loads();
		automatic leaf_load_t  res;
		for(int unsigned  i = 2*N-1; i-- > N-1;)  res[i] = 1;
		for(int unsigned  i =   N-1; i-- >   0;)  res[i] = res[2*i+1] + res[2*i+2];
		return  res;
	endfunction : init_leaf_loads
	uwire [SUM_WIDTH-1:0]  sum0;
	if(L < 1) begin : genTrivial
		assign	sum0 = arg[0];
	end : genTrivial
	else begin : genTree
		localparam int unsigned  D = L < DEPTH? L : DEPTH;  // Pipeline stages absorbed by tree
		localparam leaf_load_t   LEAF_LOAD = init_leaf_loads();""",
        why="Verilator rejects a constant function declared under generate (IEEE 1800-2023 "
            "13.4.3), reached by every MVAU_rtl with SIMD > 1; at module scope it is the same "
            "function"),
    Patch(
        "mvu/mvu_vvu_axi.sv",
        find="""			/* else */    3 + $clog2(SIMD+1) + (SIMD == 1);

		// This is conservative and could be divided by a guaranteed minimum output interval, e.g. MW/SIMD.
		localparam int unsigned  MAX_IN_FLIGHT = CORE_PIPELINE_DEPTH;""",
        replace="""			/* else */    3 + $clog2(SIMD) + (SIMD == 1) + 1;  // [bnn-fpga fix] = mvu.sv PIPELINE_DEPTH

		// This is conservative and could be divided by a guaranteed minimum output interval, e.g. MW/SIMD.
		// [bnn-fpga fix] +1: OLock engages one cycle after the first refused output
		localparam int unsigned  MAX_IN_FLIGHT = CORE_PIPELINE_DEPTH + 1;""",
        why="FINN bug: for DSP48E1/E2 the queue assumes 3 + clog2(SIMD+1) results in flight "
            "while mvu.sv's pipeline is 3 + clog2(SIMD) + (SIMD == 1) + 1 deep (8, not 7, at "
            "SIMD = 9), and the lock that stops new inputs engages one cycle late; measured "
            "peak occupancy 9 > 7 under backpressure at SF = 1 (assertion 'Overflowing output "
            "queue'; without assertions the stream is corrupted). Costs two SRL entries"),
)


_PRISTINE: list[Path] = []  # the installed finn-rtllib, before use_patched_rtllib redirects


def _pristine_rtllib() -> Path:
    """The installed finn-rtllib. (FINN's own settings resolve it by importing a module named
    ``finn-rtllib``, which any such folder on ``sys.path`` shadows.)"""
    import finn

    if not _PRISTINE:
        _PRISTINE.append(Path(finn.__file__).parent / "finn-rtllib")
    return _PRISTINE[0]


def use_patched_rtllib(dest: Path) -> Path:
    """Create the patched copy at ``dest`` and make FINN's settings use it from now on."""
    from finn.util.settings import get_settings

    _pristine_rtllib()
    patched = patched_rtllib(dest)
    get_settings().finn_rtllib = patched
    return patched


def patched_rtllib(dest: Path) -> Path:
    """A patched copy of finn-rtllib at ``dest`` (reused when already there); returns it."""
    src = _pristine_rtllib()
    stamp = dest / ".bnn-fpga-patches"
    if stamp.is_file() and stamp.read_text() == str(len(PATCHES)):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    for p in PATCHES:
        f = dest / p.path
        text = f.read_text()
        if p.find not in text:
            raise ToolkitError(f"finn-rtllib patch for {p.path} no longer applies (the source "
                               f"changed); patch reason: {p.why}")
        f.write_text(text.replace(p.find, p.replace, 1))
    stamp.write_text(str(len(PATCHES)))
    return dest


def remap(files: list[str], rtllib: Path) -> list[str]:
    """Point paths into the installed finn-rtllib at the patched copy."""
    src = str(_pristine_rtllib().resolve())
    return [str(rtllib / Path(f).resolve().relative_to(src)) if str(Path(f).resolve())
            .startswith(src) else f for f in files]
