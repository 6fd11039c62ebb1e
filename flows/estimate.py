# SPDX-License-Identifier: BSD-3-Clause
"""FINN's analytical estimates of a folded dataflow graph, as a report.

Everything here is an **estimate** (each layer's own cycle and resource model: FINN's for its
layers, the units' for the project's RTL units, whose LUT models are fitted to Yosys), not a
synthesis or hardware measurement; the report says so in its header. It runs on the graph after
``hw_codegen``, so the layers are the ones built; folding estimates the same graph in advance
(``flows.folding.as_built``).

* per layer: op type, PE/SIMD, expected cycles per frame, LUT, BRAM18, URAM, DSP;
* totals and percentage of the board; FPS = f_clk / max cycles; latency = FINN's pessimistic
  critical path (no overlap between layers); the bottleneck layer;
* ``estimate.json``, ``estimate.md`` and ``layers.png`` (cycles and resources per layer).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from .config import FlowConfig

log = logging.getLogger(__name__)

RES_KEYS = ("LUT", "BRAM_18K", "URAM", "DSP")
MAX_TICK_LABELS = 160  # layer names on the per-layer plot's axis (it is at most 24 in wide)
#: the estimate report's file name in ``<build>/report/`` (read back by the driver-meta step)
ESTIMATE_JSON = "estimate.json"


def _fold(node) -> dict[str, int]:
    inst = getCustomOp(node)
    types = inst.get_nodeattr_types()
    return {k: int(inst.get_nodeattr(k)) for k in ("PE", "SIMD") if k in types}


def estimate_model(model: ModelWrapper, cfg: FlowConfig) -> dict[str, Any]:
    """Per-layer and total cycles and resources, FPS, latency and the bottleneck (a dict)."""
    from finn.analysis.fpgadataflow.dataflow_performance import dataflow_performance
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles

    board = cfg.board_info
    part = board.part
    cycles = model.analysis(exp_cycles_per_layer)
    res = model.analysis(lambda m: res_estimation(m, part))
    perf = model.transform(AnnotateCycles()).analysis(dataflow_performance)
    layers = []
    for node in model.graph.node:
        if node.name not in res and node.name not in cycles:
            continue
        r = res.get(node.name, {})
        layers.append({"node": node.name, "op": node.op_type,
                       "cycles": int(cycles.get(node.name, 0)), **_fold(node),
                       **{k: float(r.get(k, 0)) for k in RES_KEYS}})
    totals = {k: sum(la[k] for la in layers) for k in RES_KEYS}
    avail = board.resources.as_finn()
    clk_hz = cfg.clock_mhz * 1e6
    slow = max(layers, key=lambda la: la["cycles"])
    return {
        "kind": "FINN analytical estimate (not synthesis, not hardware)",
        "model": cfg.name, "board": board.name, "part": part, "clock_mhz": cfg.clock_mhz,
        "layers": layers, "totals": totals,
        "percent_of_board": {k: 100.0 * totals[k] / avail[k] if avail[k] else
                             (0.0 if totals[k] == 0 else float("inf")) for k in RES_KEYS},
        "fits_board": all(totals[k] <= avail[k] for k in RES_KEYS),
        "max_cycles": int(perf["max_cycles"]),
        "critical_path_cycles": int(perf["critical_path_cycles"]),
        "fps": clk_hz / int(perf["max_cycles"]),
        "latency_ms": 1e3 * int(perf["critical_path_cycles"]) / clk_hz,
        "bottleneck": {"node": slow["node"], "op": slow["op"], "cycles": slow["cycles"]},
        "layer_count": len(layers),
    }


def markdown(report: dict[str, Any]) -> str:
    pct = report["percent_of_board"]
    t = report["totals"]
    lines = [
        f"# {report['model']} on {report['board']} ({report['part']}) @ {report['clock_mhz']} MHz",
        "", f"**{report['kind']}.**", "",
        f"- estimated throughput: **{report['fps']:.1f} FPS** "
        f"(max {report['max_cycles']} cycles/frame)",
        f"- estimated latency: {report['latency_ms']:.3f} ms "
        f"(critical path {report['critical_path_cycles']} cycles, FINN's no-overlap bound)",
        f"- bottleneck: {report['bottleneck']['node']} ({report['bottleneck']['op']}, "
        f"{report['bottleneck']['cycles']} cycles)",
        f"- fits the board: {'yes' if report['fits_board'] else 'NO'}", "",
        "| resource | total | % of board |", "|---|---|---|",
        *[f"| {k} | {t[k]:.0f} | {pct[k]:.1f} |" for k in RES_KEYS], "",
        "| layer | op | PE | SIMD | cycles | LUT | BRAM18 | URAM | DSP |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for la in report["layers"]:
        lines.append(f"| {la['node']} | {la['op']} | {la.get('PE', '')} | {la.get('SIMD', '')} "
                     f"| {la['cycles']} | {la['LUT']:.0f} | {la['BRAM_18K']:.0f} "
                     f"| {la['URAM']:.0f} | {la['DSP']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report["layers"]
    x = np.arange(len(layers))
    edges = np.arange(len(layers) + 1) - 0.5  # one filled step per layer: one artist a series
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(min(max(8, 0.12 * len(layers)), 24), 7),
                                   sharex=True)
    ax1.stairs([la["cycles"] for la in layers], edges, fill=True, color="tab:blue")
    ax1.set_ylabel("cycles / frame")
    ax1.set_title(f"{report['model']} on {report['board']}: FINN estimates per layer "
                  f"({report['fps']:.0f} FPS @ {report['clock_mhz']:.0f} MHz)")
    bottom = np.zeros(len(layers))
    for key, color in zip(RES_KEYS, ("tab:green", "tab:orange", "tab:purple", "tab:red")):
        pct = np.array([100.0 * la[key] / max(report["totals"][key], 1) for la in layers])
        ax2.stairs(bottom + pct, edges, baseline=bottom, fill=True, color=color, label=key)
        bottom = bottom + pct
    ax2.set_ylabel("% of the design's total")
    ax2.legend(ncol=4, fontsize=8)
    # every layer named up to MAX_TICK_LABELS, then every k-th (text dominates drawing time)
    step = -(-len(layers) // MAX_TICK_LABELS)
    ax2.set_xticks(list(x)[::step])
    ax2.set_xticklabels([la["node"] for la in layers][::step], rotation=90, fontsize=5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ESTIMATE_JSON).write_text(json.dumps(report, indent=2))
    (out_dir / "estimate.md").write_text(markdown(report))
    plot(report, out_dir / "layers.png")
