# SPDX-License-Identifier: BSD-3-Clause
"""Whole-accelerator RTL simulation with Verilator: the dataflow partition as one design.

FINN+ stitches the layers in Vivado's IP integrator and simulates the result with xsim. Here
the same stitching is generated as plain SystemVerilog: every layer of the code-generated
partition (the model after the ``hw_codegen`` step: layers, FIFOs and width converters) is
instantiated by its top module and connected by AXI streams named after the graph's tensors.
The design is then run by the AXI-stream testbench of :mod:`flows.rtlsim` on several frames
back to back:

* the output must equal the HW-layer python graph (``flows.names.DATAFLOW_PARTITION``) bit for
  bit;
* the cycle at which each frame's last output word leaves gives the latency (first frame) and
  the steady-state interval between frames, compared with FINN's analytical estimate.

FINN's ``MVAU_rtl`` takes its weights on a second stream that FINN's IPI feeds from a memstream;
here the testbench replays the same weight words (as FINN's own per-layer rtlsim does). Every
other layer is RTL as generated, including the project's XNOR MVAU and max-pool units. A
partition that still holds HLS layers cannot be simulated; :func:`non_rtl_layers` names them.
The same design with unbounded FIFOs sizes the FIFOs (:func:`size_fifos`, the flow's
``fifo_sizing: rtlsim``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bnn_brevitas.errors import ToolkitError
from flows.divergence import execute_full
from flows.finn_env import load_model, prepare_finn
from flows.names import DATAFLOW_PARTITION, FINN_TMP, REPORT_DIR
from flows.rtlsim import LayerSim, simulate_group, trace_stream
from flows.rtlsim_layers import instance_params, partition_input, weight_stream

log = logging.getLogger(__name__)
TOP = "accel_top"


@dataclass
class Stitched:
    """The generated top level and what the testbench must drive."""

    sv: str
    files: list[str]
    in_port: tuple[str, int]  # name, width
    out_port: tuple[str, int]
    weight_ports: dict[str, tuple[int, list[int]]]  # port -> (width, words per frame)
    first: object  # custom op of the first and last layer
    last: object
    gauges: dict[str, str]  # top-level maxcount port -> FIFO node (with ``gauge``)


def non_rtl_layers(model: ModelWrapper) -> list[str]:
    """Layers of the partition that have no RTL (HLS C++ or not a HW layer)."""
    return [f"{n.name} ({n.op_type})" for n in model.graph.node if not n.op_type.endswith("_rtl")]


def _wire(tensor: str, width: int) -> list[str]:
    return [f"  wire [{width - 1}:0] {tensor}_TDATA;", f"  wire {tensor}_TVALID, {tensor}_TREADY;"]


def stitch(model: ModelWrapper, gauge: bool = False) -> Stitched:
    """The partition as one SystemVerilog module ``accel_top`` (ports in0_V, out0_V, w<k>_V).
    With ``gauge`` every FIFO's ``maxcount`` (its peak fill) is a top-level output ``mc<k>``:
    simulated with ``FINN_SIMULATION`` defined, FINN's FIFO wrapper becomes its unbounded
    ``fifo_gauge``, as in FINN's own FIFO sizing."""
    missing = non_rtl_layers(model)
    if missing:
        raise ToolkitError(f"{len(missing)} layer(s) have no RTL, so the accelerator cannot be "
                           f"simulated as a whole: {', '.join(missing[:8])}"
                           + (" …" if len(missing) > 8 else ""))
    g_in, g_out = model.graph.input[0].name, model.graph.output[0].name
    names = {}  # tensor -> verilog name
    net = lambda t: names.setdefault(t, "in0_V" if t == g_in else "out0_V" if t == g_out  # noqa
                                     else f"t{len(names)}")
    body, files, weights, widths, gauges = [], [], {}, {}, {}
    for k, node in enumerate(model.graph.node):
        inst = getCustomOp(node)
        intf = inst.get_verilog_top_module_intf_names()
        dyn = [t for t in node.input if model.get_initializer(t) is None]
        conns = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
        if "clk2x" in intf or node.op_type.startswith("MVAU"):
            conns.append(".ap_clk2x(ap_clk)")  # only used by pumped compute (off)
        s_axis = list(intf["s_axis"])
        ws = weight_stream(inst)
        if ws is not None and len(s_axis) == 1:  # FINN's IPI feeds it from a memstream
            s_axis.append(("in1_V", ws[0]))
        for (port, width), tensor in zip(s_axis, dyn + [None] * len(s_axis)):
            if tensor is None:  # a weight stream
                if ws is None:
                    raise ToolkitError(f"{node.name}: input port {port} has no tensor")
                tensor = f"w{k}_V"
                weights[tensor] = ws
            else:
                tensor = net(tensor)
            widths.setdefault(tensor, width)
            conns += [f".{port}_{s}({tensor}_{s})" for s in ("TDATA", "TVALID", "TREADY")]
        for (port, width), tensor in zip(intf["m_axis"], node.output):
            widths[net(tensor)] = width
            conns += [f".{port}_{s}({net(tensor)}_{s})" for s in ("TDATA", "TVALID", "TREADY")]
        if gauge and node.op_type.startswith("StreamingFIFO"):
            gauges[f"mc{k}"] = node.name
            conns.append(f".maxcount(mc{k})")
        params = ", ".join(f".{p}({v})" for p, v in instance_params(node, inst).items())
        body.append(f"  {inst.get_verilog_top_module_name()} {'#(' + params + ') ' if params else ''}"
                    f"u{k}_{node.name} (\n    " + ",\n    ".join(conns) + "\n  );")
        files += [str(f) for f in inst.get_rtl_file_list(abspath=True)]
    ports = ["  input ap_clk,", "  input ap_rst_n"]
    for t, width in widths.items():
        if t == "in0_V" or t in weights:
            ports += [f"  ,input [{width - 1}:0] {t}_TDATA", f"  ,input {t}_TVALID",
                      f"  ,output {t}_TREADY"]
        elif t == "out0_V":
            ports += [f"  ,output [{width - 1}:0] {t}_TDATA", f"  ,output {t}_TVALID",
                      f"  ,input {t}_TREADY"]
    ports += [f"  ,output [31:0] {p}" for p in gauges]
    wires = [w for t, width in widths.items() if t not in ("in0_V", "out0_V") and t not in weights
             for w in _wire(t, width)]
    sv = (f"// generated by flows/stitch.py from the dataflow partition\nmodule {TOP} (\n"
          + "\n".join(ports) + "\n);\n" + "\n".join(wires + body) + "\nendmodule\n")
    first = getCustomOp(model.find_consumer(g_in))
    last = getCustomOp(model.find_producer(g_out))
    return Stitched(sv, list(dict.fromkeys(files)), ("in0_V", widths["in0_V"]),
                    ("out0_V", widths["out0_V"]), weights, first, last, gauges)


def _stimuli(final: ModelWrapper, hw: ModelWrapper | None, st: Stitched, xs: list[np.ndarray]):
    """Packed input words and the expected output of the frames ``xs`` (partition layout);
    without ``hw`` the frames are fed as they are and nothing is expected (zeros)."""
    from finn.util.data_packing import npy_to_rtlsim_input

    words, expected = [], []
    g_in, g_out = final.graph.input[0].name, final.graph.output[0].name
    for xi in xs:
        if hw is None:
            fi = st.first
            words += npy_to_rtlsim_input(xi.reshape(fi.get_folded_input_shape(0)),
                                         fi.get_input_datatype(0), fi.get_instream_width(0))
            expected.append(np.zeros(st.last.get_folded_output_shape(0), dtype=np.float32))
            continue
        ctx = execute_full(hw, xi)
        src = trace_stream(final, g_in, ctx, upstream=False)
        dst = trace_stream(final, g_out, ctx, upstream=True)
        if src is None or dst is None:
            raise ToolkitError("the partition's input/output has no counterpart in "
                               f"{DATAFLOW_PARTITION}; rebuild the flow")
        fi = st.first
        words += npy_to_rtlsim_input(ctx[src].reshape(fi.get_folded_input_shape(0)),
                                     fi.get_input_datatype(0), fi.get_instream_width(0))
        expected.append(ctx[dst].reshape(st.last.get_folded_output_shape(0)))
    return words, np.concatenate(expected)


def run_stitched(final: ModelWrapper, hw: ModelWrapper, xs: list[np.ndarray], work: Path,
                 limit: int | None = None, gauge: bool = False) -> tuple[dict, Stitched]:
    """Simulate the code-generated partition ``final`` on the frames ``xs`` against the
    HW-layer graph ``hw``: result, per-frame completion cycles and Verilator times; with
    ``gauge`` also every FIFO's peak fill (``fifo_maxcount``) with unbounded FIFOs."""
    st = stitch(final, gauge)
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{TOP}.sv").write_text(st.sv)
    words, expected = _stimuli(final, hw, st, xs)
    frames = len(xs)
    inputs = {"in0_V": (st.in_port[1], words)}
    inputs.update({p: (w, ws * frames) for p, (w, ws) in st.weight_ports.items()})
    folded = (frames, *st.last.get_folded_output_shape(0)[1:])
    la = LayerSim("accelerator", "accelerator", TOP, [str(work / f"{TOP}.sv"), *st.files],
                  inputs, st.out_port, expected, st.last.get_output_datatype(0), folded,
                  monitors=list(st.gauges))
    t0 = time.perf_counter()
    build_s = simulate_group([la], work / "sim", limit=limit,
                             defines=("FINN_SIMULATION",) if gauge else ())
    per_frame = la.expected_words // frames
    done = [la.word_cycles[(f + 1) * per_frame - 1] for f in range(frames)
            if len(la.word_cycles) >= (f + 1) * per_frame]
    return {"result": la.result, "frames": frames, "layers": len(final.graph.node),
            "frame_done_cycles": done, "latency_cycles": done[0] if done else None,
            "interval_cycles": (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else None,
            "verilator_build_seconds": round(build_s, 1),
            "run_seconds": round(time.perf_counter() - t0 - build_s, 1),
            **({"fifo_maxcount": {st.gauges[p]: v for p, v in la.monitor_values.items()}}
               if gauge else {})}, st


def simulate_accelerator(build: Path, codegen: Path, hw_graph: Path, x: np.ndarray,
                         frames: int = 4) -> dict:
    """Stitch, build and run the code-generated partition ``codegen`` of ``build`` on
    ``frames`` samples of ``x`` (as verify passes them: NCHW images or flat vectors, cycled;
    :func:`~flows.rtlsim_layers.partition_input`) against the HW-layer graph ``hw_graph``
    (``flows.names.DATAFLOW_PARTITION``); return the comparison, cycle counts against FINN's
    estimate and the tool times (also written to ``report/accel_rtlsim.json``)."""
    t0 = time.perf_counter()
    prepare_finn(build / FINN_TMP)
    if not codegen.is_file() or not hw_graph.is_file():
        raise ToolkitError(f"{build}: no generated RTL (run the flow through make_driver_meta)")
    final, hw = load_model(codegen), load_model(hw_graph)
    est_path = build / REPORT_DIR / "estimate.json"
    est = json.loads(est_path.read_text()) if est_path.is_file() else {}
    limit = 4 * (est.get("critical_path_cycles", 0) + frames * est.get("max_cycles", 0))
    xs = [partition_input(x[f % len(x):f % len(x) + 1], hw) for f in range(frames)]
    result, _ = run_stitched(final, hw, xs, build / "accel_rtlsim", limit or None)
    result.update({"estimate_interval_cycles": est.get("max_cycles"),
                   "estimate_latency_cycles": est.get("critical_path_cycles"),
                   "clock_mhz": est.get("clock_mhz"),
                   "total_seconds": round(time.perf_counter() - t0, 1)})
    if result["interval_cycles"] and result["clock_mhz"]:
        result["fps_at_clock"] = result["clock_mhz"] * 1e6 / result["interval_cycles"]
        result["interval_vs_estimate"] = result["interval_cycles"] / est["max_cycles"]
    (build / REPORT_DIR).mkdir(exist_ok=True)
    (build / REPORT_DIR / "accel_rtlsim.json").write_text(json.dumps(result, indent=2))
    return result


def size_fifos(final: ModelWrapper, work: Path, frames: int = 3, seed: int = 0
               ) -> dict[str, int]:
    """FINN's FIFO sizing by simulation, with Verilator: run ``frames`` seeded random frames
    through the stitched design with every FIFO unbounded (``fifo_gauge``) and return each
    FIFO's peak fill, its depth from now on (at least 2). Raises if the design stalls."""
    name = final.graph.input[0].name
    dt, shape = final.get_tensor_datatype(name), final.get_tensor_shape(name)
    rng = np.random.default_rng(seed)
    xs = [rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape).astype(np.float32)
          for _ in range(frames)]
    res, _ = run_stitched(final, None, xs, work, limit=50_000_000, gauge=True)
    if len(res["frame_done_cycles"]) != frames:
        raise ToolkitError(f"FIFO sizing: the design stalled ({res['result']})")
    log.info("FIFO sizing: %d frames, %s cycles/frame with unbounded FIFOs",
             frames, res["interval_cycles"])
    return {fifo: max(2, int(v)) for fifo, v in res["fifo_maxcount"].items()}


def apply_fifo_depths(model: ModelWrapper, depths: dict[str, int]) -> ModelWrapper:
    """Set the FIFOs' depths; their generated code is dropped so ``PrepareIP`` rewrites it."""
    for node in model.graph.node:
        if node.name in depths:
            inst = getCustomOp(node)
            inst.set_nodeattr("depth", depths[node.name])
            inst.set_nodeattr("code_gen_dir_ipgen", "")
    return model
