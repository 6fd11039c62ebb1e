# SPDX-License-Identifier: BSD-3-Clause
"""The compilation pipeline: the step table, the runner and ``python -m flows.pipeline``.

``run_flow(cfg)`` obtains the QONNX model (exporting a registry model or checkpoint with the
exactness check), then runs the steps of :data:`STEPS` from ``cfg.from_step`` to
``cfg.to_step``, saving ``<output_dir>/intermediate/NN_<step>.onnx`` after each and a
``flow_report.json`` with the step times. A run that starts at a later step resumes from the
saved model of the step before it, in the existing build.

Nothing is lost (``bnn_brevitas.outputs``): the source is loaded and checked (:func:`check_source`)
before anything in the output directory is touched; a build from the first step is written
in place of the old one only when the old one is a build (its ownership marker, or for a build
from before the marker its ``flow_config.yaml``), and a failed run puts the old build back
byte-identical. Any other non-empty directory, a file, or a directory that holds the source is
refused (exit 2).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper

from bnn_brevitas.checkpoint import load_model as load_torch_model
from bnn_brevitas.checkpoint import save_checkpoint
from bnn_brevitas.errors import ConfigError, ToolkitError, UnknownNameError, UserError
from bnn_brevitas.export import calibrate_fresh, export_checked
from bnn_brevitas.models import create_model
from bnn_brevitas.outputs import adopt_output_dir, atomic_output_dir
from bnn_brevitas.utils import (
    exception_summary,
    module_logger,
    parse_overrides,
    run_cli,
    setup_logging,
    sha256_file,
)

from .config import FlowConfig
from .finn_env import load_model
from .hw_steps import HW_STEPS
from .names import (
    AFFINE_MAP_KEY,
    BREVITAS_MODEL,
    FLOW_CONFIG,
    FLOW_REPORT,
    QONNX_EXPORT,
    SOURCE_FINGERPRINT,
    intermediate_file,
)
from .steps import GRAPH_STEPS, Step

log = module_logger(__spec__, __name__)

#: every step that runs without Xilinx tools, in order
STEPS: dict[str, Step] = {**GRAPH_STEPS, **HW_STEPS}
#: the tool named in the ownership marker of a build (``bnn_brevitas.outputs``; ``hw.bitstream``
#: builds through :func:`run_flow`, so its builds are this tool's too) and the files that mark
#: a build written before the marker existed
OUTPUT_TOOL = "flows.pipeline"
LEGACY_BUILD_FILES = (FLOW_CONFIG,)


class StepError(UserError):
    """A step failed inside a FINN/qonnx transformation; the message names the step, the node
    it failed on (when one can be found) and the reason. The original exception is the
    ``__cause__`` (its traceback is shown with ``-v``). Exit 2 (README): most often the model
    holds something the flow does not support."""


def _failing_node(tb) -> NodeProto | None:
    """The innermost ONNX node a failing transformation was working on: a local ``node`` (or a
    custom op's ``onnx_node``) in the traceback's frames."""
    found = None
    while tb is not None:
        local = tb.tb_frame.f_locals
        cand = local.get("node")
        if not isinstance(cand, NodeProto):
            cand = getattr(local.get("self"), "onnx_node", None)
        if isinstance(cand, NodeProto):
            found = cand
        tb = tb.tb_next
    return found


def run_step(name: str, step: Step, model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """One step; an unexpected exception inside it becomes a ``StepError`` (see there)."""
    try:
        return step(model, cfg)
    except ToolkitError:
        raise
    except Exception as e:  # noqa: BLE001 (any failure of FINN/qonnx code, reported cleanly)
        node = _failing_node(e.__traceback__)
        where = f" at node {node.name} ({node.op_type})" if node is not None else ""
        raise StepError(f"step {name} failed{where}: {exception_summary(e)} (run with -v "
                        "for the traceback)") from e


@dataclass
class FlowResult:
    model: ModelWrapper
    out_dir: Path
    steps_run: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def step_names(cfg: FlowConfig, steps: dict[str, Step] = STEPS) -> list[str]:
    """The steps from ``cfg.from_step`` to ``cfg.to_step``, in order (unknown names: error)."""
    names = list(steps)
    for bound in (cfg.from_step, cfg.to_step):
        if bound is not None and bound not in steps:
            raise UnknownNameError("step", bound, names)
    lo = names.index(cfg.from_step) if cfg.from_step else 0
    hi = names.index(cfg.to_step) if cfg.to_step else len(names) - 1
    if lo > hi:
        raise ConfigError(f"from_step {cfg.from_step!r} comes after to_step {cfg.to_step!r}")
    return names[lo:hi + 1]


def intermediate_path(cfg: FlowConfig, name: str, steps: dict[str, Step] = STEPS) -> Path:
    """Where the runner saves the model after step ``name`` (``intermediate/NN_<name>.onnx``)."""
    if name not in steps:
        raise UnknownNameError("step", name, list(steps))
    return intermediate_file(cfg.out_dir, list(steps).index(name) + 1, name)


def read_onnx(path: Path) -> ModelWrapper:
    """The QONNX model in ``path``; a missing, non-file, empty or unparsable file (or one whose
    graph has no nodes) is a ``ConfigError`` naming the file and the problem."""
    what = f"ONNX file {str(path)!r}"
    if not path.exists():
        raise ConfigError(f"{what} does not exist")
    if not path.is_file():
        kind = "a directory, not a file" if path.is_dir() else "not a regular file"
        raise ConfigError(f"{what} is {kind}")
    if path.stat().st_size == 0:
        raise ConfigError(f"{what} is empty (0 bytes)")
    try:
        model = ModelWrapper(str(path))
    except Exception as e:  # noqa: BLE001 (onnx's parse errors: not a model file)
        raise ConfigError(f"{what} is not a readable ONNX model: {exception_summary(e)}") \
            from None
    if not model.graph.node:
        raise ConfigError(f"{what} is not an ONNX model: its graph has no nodes")
    return model


def check_source(cfg: FlowConfig) -> ModelWrapper | torch.nn.Module:
    """The source to compile, loaded and checked before anything in the build is touched: the
    ``cfg.onnx`` model (:func:`read_onnx`), the checkpoint's model, or the registry model (a
    known name and valid overrides; fresh weights seeded, calibrated unless disabled)."""
    if cfg.onnx is not None:
        return read_onnx(cfg.onnx)
    if cfg.checkpoint is not None:
        return load_torch_model(cfg.checkpoint)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_overrides)
    if cfg.calibrate_fresh:
        calibrate_fresh(model, seed=cfg.seed)
    return model


def write_source(cfg: FlowConfig, source: ModelWrapper | torch.nn.Module) -> ModelWrapper:
    """Save the checked source in the build as ``model.qonnx.onnx`` (verify's reference): an
    ONNX model as is (one self-contained file, external data pulled in), a Brevitas model as
    ``model.pt`` (the exact weights compiled) and its exactness-checked export."""
    path = cfg.out_dir / QONNX_EXPORT
    if isinstance(source, ModelWrapper):
        source.save(str(path))
        return source
    save_checkpoint(cfg.out_dir / BREVITAS_MODEL, source.eval(),
                    source=str(cfg.checkpoint or cfg.model))
    export_checked(source, path, samples=2, seed=cfg.seed,
                   extra={"checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None})
    return ModelWrapper(str(path))


def source_fingerprint(cfg: FlowConfig) -> str:
    """What the build was made from: the sha256 of the checkpoint/ONNX file, or the model name."""
    src = cfg.checkpoint or cfg.onnx
    if src is None:
        return f"registry:{cfg.model}"
    return "sha256:" + sha256_file(src)


def is_current(cfg: FlowConfig, steps: dict[str, Step] = STEPS) -> bool:
    """True when ``cfg.out_dir`` holds a complete build of exactly this config and source."""
    out = cfg.out_dir
    saved, source = out / FLOW_CONFIG, out / SOURCE_FINGERPRINT
    if not (saved.is_file() and source.is_file()
            and intermediate_path(cfg, list(steps)[-1], steps).is_file()):
        return False
    report = out / FLOW_REPORT
    done = json.loads(report.read_text()) if report.is_file() else {}
    where = {"from_step": None, "to_step": None, "output_dir": None}  # not the build's identity
    same = {**yaml.safe_load(saved.read_text()), **where} == {**cfg.to_dict(), **where}
    return same and set(steps) <= set(done) and source.read_text() == source_fingerprint(cfg)


def _source_files(cfg: FlowConfig) -> list[Path]:
    """The files a build reads while it is written (it may not hold them)."""
    return [p for p in (cfg.onnx, cfg.checkpoint, cfg.folding_file) if p is not None]


def run_flow(cfg: FlowConfig, steps: dict[str, Step] = STEPS) -> FlowResult:
    """Run the configured steps (see the module docstring). From the first step: a new build,
    replacing an old one only on success; from a later one: the existing build, continued."""
    names = step_names(cfg, steps)
    first = list(steps).index(names[0])
    out = cfg.out_dir
    if first > 0:
        prev = intermediate_path(cfg, list(steps)[first - 1], steps)
        if out.is_dir() and not prev.is_file():
            raise ConfigError(f"cannot start at step {names[0]!r}: {prev} does not exist "
                              "(run the earlier steps first)")
        adopt_output_dir(out, OUTPUT_TOOL, LEGACY_BUILD_FILES)  # a file, nothing, not a build
        cfg.save(out / FLOW_CONFIG)
        return _run_steps(cfg, steps, names, load_model(prev))
    source = check_source(cfg)  # before anything in the output is touched
    with atomic_output_dir(out, OUTPUT_TOOL, replace=True, legacy=LEGACY_BUILD_FILES,
                           sources=_source_files(cfg), in_place=True):
        cfg.save(out / FLOW_CONFIG)
        (out / SOURCE_FINGERPRINT).write_text(source_fingerprint(cfg))
        return _run_steps(cfg, steps, names, write_source(cfg, source))


def _run_steps(cfg: FlowConfig, steps: dict[str, Step], names: list[str],
               model: ModelWrapper) -> FlowResult:
    """Run ``names`` on ``model``, saving the model after each and the step times."""
    out = cfg.out_dir
    result = FlowResult(model, out, [])
    report = out / FLOW_REPORT
    times = json.loads(report.read_text()) if report.is_file() else {}
    for name in names:
        t0 = time.perf_counter()
        log.info("step %s", name)
        model.set_metadata_prop(AFFINE_MAP_KEY, "")  # a tensor map describes one step only
        # qonnx names new tensors with Python's ``random``: seeded per step, a build (and a
        # resumed one) gets the same names every time
        random.seed(f"{cfg.seed}:{name}")
        model = run_step(name, steps[name], model, cfg)
        result.seconds[name] = round(time.perf_counter() - t0, 3)
        path = intermediate_path(cfg, name, steps)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(str(path))
        result.steps_run.append(name)
        times[name] = result.seconds[name]
        report.write_text(json.dumps(times, indent=2))
        log.info("step %s done in %.1f s (%d nodes)", name, result.seconds[name],
                 len(model.graph.node))
    result.model = model
    return result


def config_from_args(args: argparse.Namespace) -> FlowConfig:
    """The ``FlowConfig`` of parsed CLI arguments (``--config`` file, named flags, ``--set``)."""
    overrides = parse_overrides(args.set)
    for key in ("model", "checkpoint", "onnx", "board", "target_fps", "output_dir",
                "from_step", "to_step"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    return FlowConfig.load(args.config, **overrides)


def add_common_args(ap: argparse.ArgumentParser) -> None:
    """The CLI arguments every flow entry point shares (pipeline, bitstream)."""
    ap.add_argument("--config", type=Path, help="FlowConfig YAML file")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--model", help="registry model name (fresh weights)")
    src.add_argument("--checkpoint", type=Path, help="training checkpoint")
    src.add_argument("--onnx", type=Path, help="QONNX file")
    ap.add_argument("--board", help="board name (default zcu104)")
    ap.add_argument("--target-fps", type=float, help="folding target (default: resource budget)")
    ap.add_argument("-o", "--output-dir", type=Path, help="default build/<model>_<board>")
    ap.add_argument("--from-step", help="first step (resumes from the saved model before it)")
    ap.add_argument("--to-step", help="last step")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="any other FlowConfig field, e.g. --set resource_budget=0.5")
    ap.add_argument("-v", "--verbose", action="store_true")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.pipeline",
                                 description="Compile a model with the FINN flow (no Vivado).")
    add_common_args(ap)
    ap.add_argument("--list-steps", action="store_true", help="print the steps and exit")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    if args.list_steps:
        for i, name in enumerate(STEPS, 1):
            print(f"{i:2d} {name:28s} {(STEPS[name].__doc__ or '').splitlines()[0]}")  # noqa: T201
        return 0

    def body() -> None:
        result = run_flow(config_from_args(args))
        log.info("done: %s", ", ".join(result.steps_run))

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    raise SystemExit(main())
