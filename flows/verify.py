# SPDX-License-Identifier: BSD-3-Clause
"""Bit-accurate verification of a compilation, stage by stage, from Brevitas down to RTL.

``python -m flows.verify`` (or ``python flows/verify.py``, or ``make verify``) runs every stage
on the same samples and compares each with the previous stage and with the reference:

==================  ========================================================================
stage               compared as
==================  ========================================================================
brevitas            the reference where the build has Brevitas weights (a registry model or a
                    checkpoint): float logits, and the exact integer logits q = codes · W_int
                    of the last (8-bit) FC, computed in int64. A build compiled from a QONNX
                    file (``--onnx``) has none: its reference is the QONNX model itself,
                    executed with qonnx, and the report says so
qonnx … lower,      integer logits, exactly (float stages: recovered as round((y − b)/a)
convert_to_hw,      with the output scaling (a, b) of the streamlined graph, which must land
partition           within ¼ of an integer), top-1, and every integer tensor against its
                    datatype annotation
rtlsim              every RTL layer simulated with Verilator on its exact packed input stream
                    (``flows/rtlsim_layers.py``)
accel_rtlsim        the whole accelerator stitched into one Verilator design, 4 frames back to
                    back: output bit-exact, cycles per frame and latency vs FINN's estimate
                    (``flows/stitch.py``)
cppsim / stitched   FINN's own simulations: need Vitis HLS / Vivado
board               the deploy bundle's driver on the board
==================  ========================================================================

**The result never claims what did not run.** Every stage that was asked for (``--stages``;
by default every stage that can run on this machine: all but ``cppsim``, ``stitched_rtlsim``
and ``board``) must run and pass for **PASS**. A stage that was asked for and could not run
(a step the build did not reach, Verilator missing, a layer without RTL for ``accel_rtlsim``,
no Brevitas weights for ``brevitas``) makes the result **INCOMPLETE**, with its reason. The
stages that need absent tools are listed as "not run", with the reason, and count only when
named in ``--stages``. Exit codes (``bnn_brevitas.errors``): 0 PASS, 1 FAIL, 2 bad input (not a
build, an unknown stage name, a sample count below 1), 4 INCOMPLETE.

**It refuses what it cannot check**: every name in ``--stages`` must be a stage (the error lists
them), ``--samples`` must be at least 1 and ``--seed`` at least 0, all checked before anything
is built or run.

On the first failing stage the first diverging node is located (``flows/divergence.py``), the
JSON and Markdown reports are written and the exit code is 1. Samples: Fashion-MNIST test images
when the model takes 784 pixels and the dataset is installed, seeded random inputs otherwise
(``flows/verify_stages.py``).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from bnn_brevitas.checkpoint import load_model as load_torch_model
from bnn_brevitas.errors import (EXIT_CHECK_FAILED, EXIT_INCOMPLETE, EXIT_OK, ConfigError,
                                 ToolkitError, UnknownNameError, UserError)
from bnn_brevitas.utils import exception_summary, module_logger, run_cli, setup_logging
from flows.build_dir import check_partition_files
from flows.config import FlowConfig
from flows.divergence import first_divergence
from flows.finn_env import load_model
from flows.names import (
    BREVITAS_MODEL,
    DATAFLOW_PARENT,
    FLOW_CONFIG,
    INPUT_SPEC,
    QONNX_EXPORT,
    REPORT_DIR,
)
from flows.pipeline import intermediate_path, run_flow
from flows.results import StageResult
from flows.steps import GRAPH_STEPS
from flows.transforms.graph_input import AbsorbInputReshape, InputSpec, resolve_input_spec
from flows.verify_stages import (
    TOOL_STAGES,
    UNCHECKED_ANNOTATIONS,
    brevitas_reference,
    canonical_integers,
    canonical_scaling,
    compare,
    first_bad_sample,
    load_samples,
    run_stage,
    stage_input,
    tool_stages,
)

log = module_logger(__spec__, __name__)

#: the graph stages: every graph step of the flow, in the flow's order
GRAPH_STAGES = tuple(GRAPH_STEPS)
#: every stage, in order
STAGES = ("brevitas", "qonnx", *GRAPH_STAGES, "rtlsim", "accel_rtlsim", *TOOL_STAGES)
#: exit code of each result (bad input: 2, raised as a ``UserError``)
EXIT_CODES = {"PASS": EXIT_OK, "FAIL": EXIT_CHECK_FAILED, "INCOMPLETE": EXIT_INCOMPLETE}


@dataclass
class VerifyReport:
    build_dir: str
    model: str
    samples: str
    #: what the stages are compared against ("brevitas" or "qonnx", with why)
    reference: str = ""
    stages: list[StageResult] = field(default_factory=list)

    @property
    def result(self) -> str:
        """FAIL if a stage failed; INCOMPLETE if a stage asked for did not run (or nothing
        passed); PASS otherwise (stages "not run" were not asked for)."""
        if any(s.status == "fail" for s in self.stages):
            return "FAIL"
        if any(s.status == "skipped" for s in self.stages) or \
                not any(s.status == "pass" for s in self.stages):
            return "INCOMPLETE"
        return "PASS"

    @property
    def ok(self) -> bool:
        return self.result == "PASS"


def _input_spec(build: Path, cfg: FlowConfig, qm: ModelWrapper) -> InputSpec:
    """The build's accelerator input (``input_spec.json``; resolved again from the QONNX model
    for a build that stopped before writing it)."""
    if (build / INPUT_SPEC).is_file():
        return InputSpec.load(build / INPUT_SPEC)
    return resolve_input_spec(qm.transform(AbsorbInputReshape()), cfg.input_datatype,
                              cfg.input_scale)


def check_stages(stages: list[str] | None) -> set[str] | None:
    """The requested stages as a set (None: the default); an unknown name (a misspelling, an
    empty name) is an ``UnknownNameError`` listing the stages: nothing is silently skipped."""
    if stages is None:
        return None
    if not stages:
        raise ConfigError(f"no stage named; valid: {', '.join(sorted(STAGES))}")
    for s in stages:
        if s not in STAGES:
            raise UnknownNameError("stage", s, STAGES)
    return set(stages)


def parse_stages(text: str | None) -> list[str] | None:
    """``--stages a,b`` as a checked list (names stripped; None: the default)."""
    if text is None:
        return None
    stages = [s.strip() for s in text.split(",")]
    check_stages(stages)
    return stages


def check_counts(samples: int, seed: int = 0) -> None:
    """``ConfigError`` unless there is at least one sample and the seed is not negative."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples must be an integer of at least 1, got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an integer of at least 0, got {seed!r}")


def _brevitas_stage(build: Path, x, labels, want) -> tuple[StageResult, tuple | None, object]:
    """(the stage, prev for the next stage, integer reference or None)."""
    path = build / BREVITAS_MODEL
    named = want is not None and "brevitas" in want
    if not path.is_file():
        return StageResult("brevitas", "skipped" if named else "not run", note=(
            f"no Brevitas weights in the build ({BREVITAS_MODEL}): it was compiled from a "
            "QONNX file, whose qonnx execution is the reference")), None, None
    if want is not None and not named:
        return StageResult("brevitas", "not run", note="not asked for (--stages)"), None, None
    t0 = time.perf_counter()
    y, q_ref = brevitas_reference(load_torch_model(path), x)
    res = StageResult("brevitas", "pass", len(x), None, None, None,
                      float(np.mean(y.argmax(-1) == labels)) if labels is not None else None,
                      round(time.perf_counter() - t0, 2), "reference")
    return res, ("brevitas", None, y), q_ref


def _graph_stage(name: str, path: Path, x, spec: InputSpec, labels, prev, q_ref, scaling):
    """Run one graph stage; returns (result, integer logits or None, logits)."""
    t0 = time.perf_counter()
    y, bad = run_stage(path, x, spec, name not in UNCHECKED_ANNOTATIONS)
    q = canonical_integers(y, *scaling) if scaling else None
    res = StageResult(name, "pass", seconds=0.0)
    if q_ref is None and q is not None and name == "streamline":
        res.note = "integer reference (no Brevitas integer logits)"
        q_ref = q  # the streamlined graph defines it
    compare(res, y, q, prev[2] if prev else None, q_ref, labels, False)
    if bad:
        res.status, res.note = "fail", f"datatype annotation violated: {bad[0]}"
        res.divergence = {"node": bad[0]["node"], "op_type": bad[0]["op_type"],
                          "tensor": bad[0]["tensor"], "reason": "annotation"}
    if res.status == "fail" and res.divergence is None and prev and prev[1] is not None:
        i = first_bad_sample(y, q, prev[2], q_ref)
        ref_m, test_m = load_model(prev[1]), load_model(path)
        div = first_divergence(ref_m, test_m, stage_input(ref_m, spec, x[i:i + 1]),
                               stage_input(test_m, spec, x[i:i + 1]))
        res.divergence = div.to_dict() if div else None
    res.seconds = round(time.perf_counter() - t0, 2)
    return res, q_ref, y


def verify(build: Path, samples: int = 8, stages: list[str] | None = None, seed: int = 0,
           bundle: Path | None = None) -> VerifyReport:
    """Verify the build in ``build`` (see the module docstring)."""
    want = check_stages(stages)
    check_counts(samples, seed)
    check_partition_files(build)  # one model in the partition's three files, or exit 2
    cfg = FlowConfig.load(build / FLOW_CONFIG, output_dir=build)
    qonnx_path = build / QONNX_EXPORT
    if not qonnx_path.is_file():
        raise UserError(f"{build} has no {QONNX_EXPORT}: the flow did not get past loading "
                        "its source; rebuild it")
    qm = ModelWrapper(str(qonnx_path))
    spec = _input_spec(build, cfg, qm)
    x, labels, desc = load_samples(spec, tuple(qm.get_tensor_shape(qm.graph.input[0].name)[1:]),
                                   samples, seed)
    report = VerifyReport(str(build), cfg.name, desc)
    log.info("verifying %s on %d samples (%s)", build, len(x), desc)
    res, prev, q_ref = _brevitas_stage(build, x, labels, want)
    report.reference = "brevitas" if prev else "qonnx: the QONNX model executed with qonnx " \
        "(no Brevitas weights in the build)"
    report.stages.append(_logged(res))

    scaling = canonical_scaling(intermediate_path(cfg, "streamline"))
    paths = {"qonnx": qonnx_path, **{s: intermediate_path(cfg, s) for s in GRAPH_STAGES}}
    # the partition stage runs the parent graph: the partition with its host-side ops
    paths["create_dataflow_partition"] = build / DATAFLOW_PARENT
    failed = False
    for name, path in paths.items():
        if want is not None and name not in want:
            continue
        if failed:
            report.stages.append(StageResult(name, "not run", note="an earlier stage failed"))
            continue
        if not path.is_file():
            report.stages.append(_logged(StageResult(name, "skipped", note=(
                f"{path.name} not built: the flow stopped before this step (run it to the "
                "end, or name the stages to check with --stages)"))))
            continue
        try:
            res, q_ref, y = _graph_stage(name, path, x, spec, labels, prev, q_ref, scaling)
        except ToolkitError:
            raise
        except Exception as e:  # noqa: BLE001 (a graph qonnx cannot execute fails its stage)
            res, y = StageResult(name, "fail", note=f"cannot execute {path.name}: "
                                 f"{exception_summary(e)}"), None
        if prev is None and res.status == "pass":
            res.note = res.note or "reference"
        report.stages.append(_logged(res))
        failed = res.status == "fail"
        prev = (name, path, y)
    if not failed:
        codes = stage_input(load_model(intermediate_path(cfg, "qonnx_to_finn")), spec, x) \
            if intermediate_path(cfg, "qonnx_to_finn").is_file() else spec.quantize(x)
        report.stages += [_logged(r) for r in tool_stages(
            build, codes, want, intermediate_path(cfg, "hw_codegen"), bundle)]
    return report


def _logged(res: StageResult) -> StageResult:
    """Log one finished stage (verification of a large build takes minutes)."""
    exact = "" if res.exact is None else f", integer-exact {res.exact}"
    log.info("stage %-26s %s%s (%.1f s)%s", res.stage, res.status, exact, res.seconds or 0.0,
             f": {res.note}" if res.note else "")
    return res


# -- reports and CLI -------------------------------------------------------------------------

def markdown(report: VerifyReport) -> str:
    lines = [f"# Verification of {report.model}", "", f"Build: `{report.build_dir}`  ",
             f"Samples: {report.samples}  ", f"Reference: {report.reference}  ",
             f"Result: **{report.result}**",
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
            if d.get("partition"):
                lines.append(f"- inside the dataflow partition {d['partition']}")
            if "max_abs_diff" in d:
                lines.append(f"- max |Δ| {d['max_abs_diff']:.4g}, mean |Δ| "
                             f"{d['mean_abs_diff']:.4g} (matched by {d['how_matched']})")
            for i in d.get("inputs", []):
                lines.append(f"- input `{i['name']}`: {i['datatype']}"
                             f"{' (initializer)' if i['initializer'] else ''}")
    return "\n".join(lines) + "\n"


def write_report(report: VerifyReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"result": report.result, "ok": report.ok, **asdict(report)}
    path.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str))
    path.with_suffix(".md").write_text(markdown(report))


def latest_build(root: Path = Path("build")) -> Path | None:
    """The most recently configured build directory under ``root``, or None."""
    configs = sorted(root.glob(f"*/{FLOW_CONFIG}"), key=lambda p: p.stat().st_mtime)
    return configs[-1].parent if configs else None


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m flows.verify", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, help="a build directory (default: the latest under "
                    "build/, or a fresh build of the default model if there is none)")
    ap.add_argument("--model", help="registry model to build first (default bnext_nano_hw)")
    ap.add_argument("--checkpoint", type=Path, help="checkpoint to build first")
    ap.add_argument("--onnx", type=Path, help="QONNX file to build first")
    ap.add_argument("--samples", type=int, default=8, help="number of input samples (≥ 1)")
    ap.add_argument("--stages", help="comma-separated stages to check (each must run): "
                    + ", ".join(STAGES) + "; default: every stage that can run here")
    ap.add_argument("--bundle", type=Path, help="deploy bundle, for the on-board stage")
    ap.add_argument("--report", type=Path, help="report path without suffix (default "
                    "<build>/report/verify)")
    ap.add_argument("--seed", type=int, default=0, help="seed of random samples (≥ 0)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    """The CLI under the exit-code contract (``bnn_brevitas.utils.run_cli``)."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        stages = parse_stages(args.stages)  # refused before anything is built
        check_counts(args.samples, args.seed)
        build = _resolve_build(args)
        report = verify(build, args.samples, stages, args.seed, args.bundle)
        path = args.report or build / REPORT_DIR / "verify"
        write_report(report, path)
        print(markdown(report))  # noqa: T201 (CLI output)
        log.info("report: %s.{json,md}", path)
        return EXIT_CODES[report.result]

    return run_cli(log, args.verbose, body)


def _resolve_build(args: argparse.Namespace) -> Path:
    if args.build is not None:
        if not (args.build / FLOW_CONFIG).is_file():
            raise UserError(f"{args.build} is not a build directory (no {FLOW_CONFIG})")
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
