# SPDX-License-Identifier: BSD-3-Clause
"""Bit-accurate verification of a compilation, stage by stage, from Brevitas down to RTL.

``python flows/verify.py`` (or ``make verify``) runs every stage on the same samples and
compares each with the previous stage and with the Brevitas reference:

==================  ========================================================================
stage               compared as
==================  ========================================================================
brevitas            reference: float logits, and the exact integer logits q = codes · W_int
                    of the last (8-bit) FC, computed in int64
qonnx … lower,      integer logits, exactly (float stages: recovered as round((y − b)/a)
convert_to_hw,      with the output scaling (a, b) of the streamlined graph, which must land
partition           within ¼ of an integer), top-1, and every integer tensor against its
                    datatype annotation
rtlsim              every RTL layer simulated with Verilator on its exact packed input stream
                    (``flows/rtlsim_layers.py``)
accel_rtlsim        the whole accelerator stitched into one Verilator design, 4 frames back to
                    back: output bit-exact, cycles per frame and latency vs FINN's estimate
                    (``flows/stitch.py``; skipped, naming them, while any layer is HLS)
cppsim / stitched   FINN's own simulations: need Vitis HLS / Vivado (skipped with the reason)
board               the deploy bundle's driver on the board (skipped without ``--bundle``)
==================  ========================================================================

On the first failing stage the first diverging node is located (``flows/divergence.py``), the
JSON and Markdown reports are written and the exit code is 1. Samples: Fashion-MNIST test images
when the model takes 28×28×1 input and the dataset is installed, seeded random images otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import runpy
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from brevitas.nn import QuantLinear
from qonnx.core.modelwrapper import ModelWrapper

from bnn_brevitas.checkpoint import load_model as load_torch_model
from bnn_brevitas.errors import ToolkitError
from bnn_brevitas.export import brevitas_integer_probe
from bnn_brevitas.train.data import FASHION_MNIST_DIR, read_idx
from bnn_brevitas.utils import module_logger, setup_logging
from flows.config import FlowConfig
from flows.divergence import annotation_violations, execute_full, first_divergence
from flows.finn_env import load_model
from flows.names import (
    BREVITAS_MODEL,
    DATAFLOW_PARENT,
    DATAFLOW_PARTITION,
    FLOW_CONFIG,
    QONNX_EXPORT,
    REPORT_DIR,
)
from flows.pipeline import intermediate_path, run_flow
from flows.results import StageResult
from flows.rtlsim_layers import verify_rtl_layers
from flows.steps import GRAPH_STEPS
from flows.stitch import non_rtl_layers, simulate_accelerator
from flows.tools import find_verilator, find_xilinx_tools

log = module_logger(__spec__, __name__)

#: the graph stages: every graph step of the flow, in the flow's order
GRAPH_STAGES = tuple(GRAPH_STEPS)


@dataclass
class VerifyReport:
    build_dir: str
    model: str
    samples: str
    stages: list[StageResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != "fail" for s in self.stages)


# -- samples and references ------------------------------------------------------------------

def load_samples(shape: tuple[int, ...], n: int, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(uint8 images N×C×H×W as float32, labels or None, description)."""
    images = FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    if tuple(shape) == (1, 28, 28) and images.is_file():
        x = read_idx(images)[:n].astype(np.float32)
        y = read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")[:n].astype(np.int64)
        return x[:, None], y, f"first {n} Fashion-MNIST test images"
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape)).astype(np.float32)
    return x, None, f"{n} seeded random images (seed {seed})"


def brevitas_reference(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(float logits, exact integer logits of the last FC or None) of the eval-mode model."""
    fcs = [m for m in model.modules() if isinstance(m, QuantLinear)]
    y, codes = brevitas_integer_probe(model.eval(), torch.from_numpy(x / 255.0).float())
    fc = fcs[-1] if fcs else None
    if fc is None or fc.bias is not None or fc.quant_weight().scale.numel() != 1:
        return y, None
    with torch.no_grad():
        w_int = fc.quant_weight().int().to(torch.int64).numpy()
    c = np.round(codes.reshape(len(x), -1)).astype(np.int64)
    return y, c @ w_int.T


# -- executing stages ------------------------------------------------------------------------

def _output_tail(model) -> tuple[str, float, float]:
    """(integer tensor, a, b) with output = a · tensor + b, from the Mul/Add tail."""
    name, a, b = model.graph.output[0].name, 1.0, 0.0
    while True:
        node = model.find_producer(name)
        if node is None or node.op_type not in ("Mul", "Add"):
            return name, a, b
        const = [model.get_initializer(i) for i in node.input]
        if not any(c is not None for c in const):
            return name, a, b
        c = next(v for v in const if v is not None)
        if np.asarray(c).size != 1:
            return name, a, b
        c = float(np.asarray(c).reshape(()))
        # walking upstream: output = a · (inner) + b with inner = c · t or t + c
        if node.op_type == "Mul":
            a = a * c
        else:
            b = b + a * c
        name = next(i for i in node.input if model.get_initializer(i) is None)


#: stages whose integer annotations are FINN's own convention (a signed MultiThreshold is
#: annotated with the datatype it has only after the Add that follows it)
UNCHECKED_ANNOTATIONS = ("qonnx", "tidy", "qonnx_to_finn")


def run_stage(path: Path, x: np.ndarray, pixel_input: bool, check_annotations: bool = True
              ) -> tuple[np.ndarray, list[dict]]:
    """(logits, integer tensors that violate their datatype annotation)."""
    # qonnx warns for every FINN MultiThreshold whose annotation holds only after the Add that
    # follows it (FINN's convention before streamlining); the annotation check below is ours
    warnings.filterwarnings("ignore", message="The values of tensor")
    model = load_model(path)
    ys, bad = [], []
    for i in range(len(x)):
        xi = x[i:i + 1] if pixel_input else x[i:i + 1] / 255.0
        ctx = execute_full(model, xi.astype(np.float32))
        ys.append(ctx[model.graph.output[0].name])
        if check_annotations and not bad:
            bad = annotation_violations(model, ctx)
    return np.concatenate(ys).reshape(len(x), -1), bad


def canonical_integers(y: np.ndarray, a: float, b: float) -> np.ndarray | None:
    """round((y − b)/a) when every value lies within ¼ of an integer, else None."""
    q = (y.astype(np.float64) - b) / a
    r = np.round(q)
    return r.astype(np.int64) if np.abs(q - r).max() < 0.25 else None


def _load_torch_model(build: Path):
    """The Brevitas model the build was made from (checkpoint or the saved fresh weights)."""
    path = build / BREVITAS_MODEL
    return load_torch_model(path) if path.is_file() else None


def _compare(res: StageResult, y, q, prev_y, q_ref, labels, int_exact_expected: bool) -> None:
    res.samples = len(y)
    if q_ref is not None:
        res.exact = q is not None and bool(np.array_equal(q, q_ref))
    if prev_y is not None:
        res.max_abs_diff = float(np.abs(y - prev_y).max())
        res.top1_agree = float(np.mean(y.argmax(-1) == prev_y.argmax(-1)))
    if labels is not None:
        res.top1_acc = float(np.mean(y.argmax(-1) == labels))
    ok = res.exact is not False and (res.top1_agree is None or res.top1_agree == 1.0)
    if int_exact_expected and res.exact is None:
        ok = ok and res.max_abs_diff is not None and \
            res.max_abs_diff <= 1e-5 * (1 + float(np.abs(prev_y).max()))
    res.status = "pass" if ok else "fail"


def verify(build: Path, samples: int = 8, stages: list[str] | None = None, seed: int = 0,
           bundle: Path | None = None) -> VerifyReport:
    """Verify the build in ``build`` (see the module docstring)."""
    cfg = FlowConfig.load(build / FLOW_CONFIG, output_dir=build)
    qonnx_path = build / QONNX_EXPORT
    qm = ModelWrapper(str(qonnx_path))
    shape = tuple(qm.get_tensor_shape(qm.graph.input[0].name)[1:])
    x, labels, desc = load_samples(shape, samples, seed)
    report = VerifyReport(str(build), cfg.name, desc)
    log.info("verifying %s on %d samples (%s)", build, len(x), desc)
    want = set(stages) if stages else None
    q_ref, prev = None, None  # prev: (name, path, logits, pixel_input)

    torch_model = _load_torch_model(build)
    res = StageResult("brevitas", "skipped")
    if torch_model is None:
        res.note = "no Brevitas weights in the build (model.pt): compiled from a bare ONNX file"
    elif want is None or "brevitas" in want:
        t0 = time.perf_counter()
        y, q_ref = brevitas_reference(torch_model, x)
        res = StageResult("brevitas", "pass", len(x), None, None, None,
                          float(np.mean(y.argmax(-1) == labels)) if labels is not None else None,
                          round(time.perf_counter() - t0, 2), "reference")
        prev = ("brevitas", None, y, False)
    report.stages.append(_logged(res))

    scaling = _canonical_scaling(intermediate_path(cfg, "streamline"))
    paths = {s: intermediate_path(cfg, s) for s in GRAPH_STAGES}
    # the partition stage runs the parent graph: the partition with its host-side ops
    paths["create_dataflow_partition"] = build / DATAFLOW_PARENT
    candidates = [("qonnx", qonnx_path, False)] + [
        (s, paths[s], s != "tidy") for s in GRAPH_STAGES]
    for name, path, pixel in candidates:
        if want is not None and name not in want:
            continue
        if not path.is_file():
            report.stages.append(StageResult(name, "skipped", note=f"{path.name} not built"))
            continue
        t0 = time.perf_counter()
        y, bad = run_stage(path, x, pixel, name not in UNCHECKED_ANNOTATIONS)
        q = canonical_integers(y, *scaling) if scaling else None
        res = StageResult(name, "pass", seconds=0.0)
        if q_ref is None and q is not None and name == "streamline":
            q_ref = q  # no Brevitas integer reference: the streamlined graph defines it
            res.note = "integer reference (no Brevitas integer logits)"
        _compare(res, y, q, prev[2] if prev else None, q_ref, labels, False)
        if bad:
            res.status, res.note = "fail", f"datatype annotation violated: {bad[0]}"
            res.divergence = {"node": bad[0]["node"], "op_type": bad[0]["op_type"],
                              "tensor": bad[0]["tensor"], "reason": "annotation"}
        if res.status == "fail" and res.divergence is None and prev and prev[1] is not None:
            i = _first_bad_sample(y, q, prev[2], q_ref)
            xp = x[i:i + 1] if prev[3] else x[i:i + 1] / 255.0
            xc = x[i:i + 1] if pixel else x[i:i + 1] / 255.0
            div = first_divergence(load_model(prev[1]), load_model(path),
                                   xp.astype(np.float32), xc.astype(np.float32))
            res.divergence = div.to_dict() if div else None
        res.seconds = round(time.perf_counter() - t0, 2)
        report.stages.append(_logged(res))
        if res.status == "fail":
            break
        prev = (name, path, y, pixel)
    if report.ok:
        report.stages += [_logged(r) for r in _tool_stages(
            build, x, bundle, want, intermediate_path(cfg, "hw_codegen"))]
    return report


def _logged(res: StageResult) -> StageResult:
    """Log one finished stage (verification of a large build takes minutes)."""
    exact = "" if res.exact is None else f", integer-exact {res.exact}"
    log.info("stage %-26s %s%s (%.1f s)%s", res.stage, res.status, exact, res.seconds or 0.0,
             f": {res.note}" if res.note else "")
    return res


def _canonical_scaling(streamlined: Path) -> tuple[float, float] | None:
    """(a, b) of y = a · q + b at the output of the streamlined graph (integer q)."""
    if not streamlined.is_file():
        return None
    model = ModelWrapper(str(streamlined))
    tensor, a, b = _output_tail(model)
    return (a, b) if model.get_tensor_datatype(tensor).is_integer() else None


def _first_bad_sample(y, q, prev_y, q_ref) -> int:
    if q is not None and q_ref is not None:
        bad = np.nonzero(np.any(q != q_ref, axis=-1))[0]
    else:
        bad = np.nonzero(y.argmax(-1) != prev_y.argmax(-1))[0]
    return int(bad[0]) if len(bad) else 0


def _tool_stages(build: Path, x: np.ndarray, bundle: Path | None, want,
                 codegen: Path) -> list[StageResult]:
    """RTL simulation with Verilator, FINN's cppsim/rtlsim, and the board; ``codegen``: the
    model after the ``hw_codegen`` step."""
    hw_graph = build / DATAFLOW_PARTITION
    out = []
    if want is None or "rtlsim" in want:
        out.append(verify_rtl_layers(build, codegen, hw_graph, x))
    if want is None or "accel_rtlsim" in want:
        out.append(_accel_stage(build, codegen, hw_graph, x))
    tools = find_xilinx_tools()
    for stage, tool in (("cppsim", "vitis_hls"), ("stitched_rtlsim", "vivado")):
        if want is not None and stage not in want:
            continue
        reason = (f"needs {tool}: not found (PATH, XILINX_HLS, XILINX_VIVADO)"
                  if tools.get(tool) is None else "run the build with the Xilinx tools first")
        out.append(StageResult(stage, "skipped", note=reason))
    if want is None or "board" in want:
        note = "no --bundle given" if bundle is None else "run on the board: python -m hw.driver"
        out.append(StageResult("board", "skipped", note=note))
    return out


def _accel_stage(build: Path, codegen: Path, hw_graph: Path, x: np.ndarray,
                 frames: int = 4) -> StageResult:
    """The whole accelerator (``codegen``, against the HW-layer graph ``hw_graph``) as one
    Verilator design (``flows/stitch.py``), ``frames`` frames back to back: bit-exact output
    and cycles per frame against FINN's estimate."""
    built = codegen.is_file()
    if find_verilator() is None or not built:
        return StageResult("accel_rtlsim", "skipped", note="Verilator not found" if built
                           else "no generated RTL in the build")
    hls = non_rtl_layers(load_model(codegen))
    if hls:
        kinds = sorted({h.split("(")[1].rstrip(")") for h in hls})
        return StageResult("accel_rtlsim", "skipped", note=f"{len(hls)} layer(s) have no RTL "
                           f"({', '.join(kinds)})")
    t0 = time.perf_counter()
    r = simulate_accelerator(build, codegen, hw_graph, x, frames)
    ok = r["result"] == "exact"
    note = (f"{r['layers']} layers, {r['frames']} frames: {r['result']}; "
            f"{r['interval_cycles']:.0f} cycles/frame (FINN estimate {r['estimate_interval_cycles']}"
            f"), latency {r['latency_cycles']} cycles (estimate {r['estimate_latency_cycles']})"
            if ok and r.get("interval_cycles") else f"{r['result']}")
    res = StageResult("accel_rtlsim", "pass" if ok else "fail", samples=frames, exact=ok,
                      seconds=round(time.perf_counter() - t0, 1), note=note)
    if not ok:
        res.divergence = {"node": "accel_top", "op_type": "accelerator",
                          "tensor": "output stream", "reason": r["result"]}
    return res


# -- reports and CLI -------------------------------------------------------------------------

def markdown(report: VerifyReport) -> str:
    lines = [f"# Verification of {report.model}", "", f"Build: `{report.build_dir}`  ",
             f"Samples: {report.samples}  ", f"Result: **{'PASS' if report.ok else 'FAIL'}**",
             "", "| stage | status | samples | integer-exact | max \\|Δ\\| vs previous | "
             "top-1 agree | top-1 acc | time (s) | note |", "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, f="{:.3g}": "" if v is None else f.format(v)  # noqa: E731
    for s in report.stages:
        lines.append(f"| {s.stage} | {s.status} | {s.samples or ''} | {fmt(s.exact, '{}')} | "
                     f"{fmt(s.max_abs_diff)} | {fmt(s.top1_agree)} | {fmt(s.top1_acc)} | "
                     f"{s.seconds} | {s.note} |")
    for s in report.stages:
        if s.divergence:
            d = s.divergence
            lines += ["", f"## First divergence in stage `{s.stage}`", "",
                      f"- node: `{d['node']}` ({d['op_type']}), tensor `{d['tensor']}`"]
            if "max_abs_diff" in d:
                lines.append(f"- max |Δ| {d['max_abs_diff']:.4g}, mean |Δ| "
                             f"{d['mean_abs_diff']:.4g} (matched by {d['how_matched']})")
            for i in d.get("inputs", []):
                lines.append(f"- input `{i['name']}`: {i['datatype']}"
                             f"{' (initializer)' if i['initializer'] else ''}")
    return "\n".join(lines) + "\n"


def write_report(report: VerifyReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"ok": report.ok, **asdict(report)}
    path.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str))
    path.with_suffix(".md").write_text(markdown(report))


def latest_build(root: Path = Path("build")) -> Path | None:
    """The most recently configured build directory under ``root``, or None."""
    configs = sorted(root.glob(f"*/{FLOW_CONFIG}"), key=lambda p: p.stat().st_mtime)
    return configs[-1].parent if configs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m flows.verify", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, help="a build directory (default: the latest under "
                    "build/, or a fresh build of the default model if there is none)")
    ap.add_argument("--model", help="registry model to build first (default bnext_nano_hw)")
    ap.add_argument("--checkpoint", type=Path, help="checkpoint to build first")
    ap.add_argument("--onnx", type=Path, help="QONNX file to build first")
    ap.add_argument("--samples", type=int, default=8, help="number of input samples")
    ap.add_argument("--stages", help="comma-separated subset of: brevitas, qonnx, "
                    + ", ".join(GRAPH_STAGES)
                    + ", rtlsim, accel_rtlsim, cppsim, stitched_rtlsim, board")
    ap.add_argument("--bundle", type=Path, help="deploy bundle, for the on-board stage")
    ap.add_argument("--report", type=Path, help="report path without suffix (default "
                    "<build>/report/verify)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    try:
        build = _resolve_build(args)
        report = verify(build, args.samples, args.stages.split(",") if args.stages else None,
                        args.seed, args.bundle)
    except ToolkitError as e:
        log.error("%s", e)
        return 2
    path = args.report or build / REPORT_DIR / "verify"
    write_report(report, path)
    print(markdown(report))  # noqa: T201 (CLI output)
    log.info("report: %s.{json,md}", path)
    return 0 if report.ok else 1


def _resolve_build(args: argparse.Namespace) -> Path:
    if args.build is not None:
        if not (args.build / FLOW_CONFIG).is_file():
            raise ToolkitError(f"{args.build} is not a build directory (no {FLOW_CONFIG})")
        return args.build
    if not (args.model or args.checkpoint or args.onnx):
        found = latest_build()
        if found is not None:
            log.info("verifying the latest build: %s", found)
            return found
    cfg = FlowConfig(model=args.model or (None if args.checkpoint or args.onnx
                                           else "bnext_nano_hw"),
                     checkpoint=args.checkpoint, onnx=args.onnx, to_step="convert_to_hw")
    log.info("no build given: compiling %s first", cfg.name)
    run_flow(cfg)
    return cfg.out_dir


if __name__ == "__main__":
    if __spec__ is None:
        # run by path, ``python flows/verify.py`` (documented since the first release): run
        # the module by its name instead, with the repository, not flows/, on sys.path
        sys.path[0] = str(Path(__file__).resolve().parents[1])
        runpy.run_module("flows.verify", run_name="__main__", alter_sys=True)
    else:
        sys.exit(main())
