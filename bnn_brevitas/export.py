# SPDX-License-Identifier: BSD-3-Clause
"""QONNX export with an exactness check against the Brevitas model.

``export_checked(model, path)`` exports through Brevitas' QONNX manager (the torch.export /
dynamo path on torch ≥ 2.9), runs qonnx's cleanup, executes the file with qonnx's
``execute_onnx`` on seeded inputs on the uint8 pixel grid, and compares with the eval-mode
Brevitas forward:

* **integer check** where the graph is integer (``hw`` models and CNV): the integer codes of
  the last activation quantizer (the input of the final FC) must be identical — everything
  up to there is integer arithmetic;
* **tolerance check** everywhere: max |Δ| ≤ ``atol + rtol·max|y|`` (float scales remain in
  the graph; the default 1e-5 relative is ~100× float32 rounding of the logits);
* equal top-1 on every sample (up to logits that tie within the tolerance).

Only a verified file is moved to ``path``; a sidecar ``<path>.json`` holds the report and the
resolved model config. Both are written atomically (``bnn_brevitas.outputs``), and the CLI
loads its source (model name, overrides, checkpoint) and checks ``-o`` before it writes: a
failure leaves an existing export byte-identical and nothing behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import qonnx_speedups
from .checkpoint import config_dict, load_model
from .errors import CheckFailedError, UserError
from .models import create_model
from .outputs import atomic_write_file, check_output_file
from .utils import module_logger, parse_overrides, run_cli, setup_logging, sha256_file

log = module_logger(__spec__, __name__)


class ExportMismatchError(CheckFailedError):
    """The exported QONNX does not compute what the Brevitas model computes (exit 1)."""


@dataclass
class ExportReport:
    path: str
    model: str
    input_shape: tuple[int, ...]
    samples: int
    max_abs_diff: float
    tolerance: float
    integer_exact: bool | None  # None: the output has no known integer scale
    top1_agree: bool
    export_seconds: float
    check_seconds: float
    sha256: str = ""


def sample_inputs(input_shape: tuple[int, ...], n: int, seed: int = 0) -> torch.Tensor:
    """Seeded images on the uint8 grid, scaled to [0, 1] (what the data pipeline feeds)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *input_shape), generator=g).float() / 255.0


#: pixels per calibration batch: 16 images up to 32×32; fewer for larger inputs (2 at 224×224)
CALIBRATION_PIXELS = 16 * 32 * 32


def calibrate_fresh(model: nn.Module, steps: int = 4, batch: int | None = None, seed: int = 0
                    ) -> nn.Module:
    """Seeded train-mode passes over random pixel images so that a freshly built model has
    data-derived quantizer scales and BN statistics (untrained weights, but no degenerate
    all-equal scales); returns the model in eval mode. Trained checkpoints never need this.
    ``batch`` defaults to 16 images up to 32×32 and to ``CALIBRATION_PIXELS`` worth of images
    (at least 2, for batch statistics) above."""
    g = torch.Generator().manual_seed(seed)
    shape = tuple(model.cfg.input_shape)
    if batch is None:
        batch = min(16, max(2, CALIBRATION_PIXELS // (shape[-1] * shape[-2])))
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randint(0, 256, (batch, *shape), generator=g).float() / 255.0)
    return model.eval()


def _last_act_quant(model: nn.Module) -> nn.Module:
    """The last activation quantizer in module order (hw BNext: the head's GAP quantizer; CNV: the
    sign before the last FC): everything before it is integer arithmetic."""
    from brevitas.nn import QuantIdentity, QuantReLU

    quants = [m for m in model.modules() if isinstance(m, (QuantIdentity, QuantReLU))]
    if not quants:
        raise UserError(f"{type(model).__name__} has no activation quantizer to check")
    return quants[-1]


def brevitas_integer_probe(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(logits, integer codes of the last activation quantizer) of the Brevitas eval forward."""
    probe, seen = _last_act_quant(model), []
    handle = probe.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    try:
        with torch.no_grad():
            y = model(x)
            scale = probe.act_quant.scale()
    finally:
        handle.remove()
    return y.numpy(), (seen[-1] / scale).numpy()


def qonnx_integer_probe(path: str | Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, integer codes of the last activation Quant/BipolarQuant node) via qonnx."""
    import qonnx.core.onnx_exec as oxe
    from qonnx.core.modelwrapper import ModelWrapper

    mw = ModelWrapper(str(path))
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    acts = [n for n in mw.graph.node if n.op_type in ("Quant", "BipolarQuant")
            and mw.get_initializer(n.input[0]) is None]
    last = acts[-1]
    scale = mw.get_initializer(last.input[1])
    ys, codes = [], []
    for i in range(len(x)):
        ctx = oxe.execute_onnx(mw, {iname: x[i:i + 1]}, return_full_exec_context=True)
        ys.append(ctx[oname])
        codes.append(ctx[last.output[0]] / scale)
    return np.concatenate(ys), np.concatenate(codes)


def compare_outputs(ref: np.ndarray, out: np.ndarray, ref_codes: np.ndarray | None,
                    out_codes: np.ndarray | None, atol: float, rtol: float
                    ) -> tuple[float, float, bool | None, bool]:
    """(max |Δ| of logits, tolerance, integer codes identical or None, top-1 agree)."""
    diff = float(np.abs(ref - out).max())
    tol = atol + rtol * float(np.abs(ref).max())
    integer_exact = None
    if ref_codes is not None:
        on_grid = max(np.abs(c - np.round(c)).max() for c in (ref_codes, out_codes)) < 1e-3
        integer_exact = bool(on_grid and np.array_equal(np.round(ref_codes), np.round(out_codes)))
    # the class QONNX picks must be a top class of Brevitas: logits that tie exactly (equal
    # integer dot products at the FC's one scale) may be ordered differently by float rounding
    picked = np.take_along_axis(ref, out.argmax(-1)[..., None], axis=-1)[..., 0]
    top1 = bool(np.all(picked >= ref.max(-1) - tol))
    return diff, tol, integer_exact, top1


def _raw_export(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    for name in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from brevitas.export import export_qonnx

        export_qonnx(model, args=x, export_path=str(path), verbose=False)
    # load (pulling in any external data the exporter wrote) and save as one self-contained file
    qonnx_speedups.install()  # qonnx's cleanup, linear in the node count (same result)
    cleanup_model(ModelWrapper(str(path))).save(str(path))


def export_checked(model: nn.Module, path: str | Path, *, samples: int = 4, seed: int = 0,
                   atol: float = 1e-5, rtol: float = 1e-5, extra: dict | None = None
                   ) -> ExportReport:
    """Export ``model`` to QONNX at ``path`` and verify it (see the module docstring)."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"export path must end in .onnx, got {str(path)!r}")
    sidecar = path.with_suffix(".json")
    for target in (path, sidecar):  # a bad -o fails before the export's work
        check_output_file(target)
    model.eval()
    shape = tuple(model.cfg.input_shape)
    x = sample_inputs(shape, max(samples, 1), seed)
    integer_graph = bool(getattr(model.cfg, "hw", False))
    ref, ref_codes = brevitas_integer_probe(model, x)
    name = getattr(model, "model_name", type(model).__name__)
    reports: list[ExportReport] = []

    def write_checked(tmp: Path) -> None:  # the exporter may write external data next to it
        t0 = time.perf_counter()
        _raw_export(model, x[:1], tmp)
        t1 = time.perf_counter()
        out, out_codes = qonnx_integer_probe(tmp, x.numpy())
        t2 = time.perf_counter()
        diff, tol, int_exact, top1 = compare_outputs(
            ref, out, ref_codes if integer_graph else None, out_codes, atol, rtol)
        reports.append(ExportReport(str(path), name, shape, len(x), diff, tol, int_exact, top1,
                                    round(t1 - t0, 3), round(t2 - t1, 3), sha256_file(tmp)))
        if diff > tol or int_exact is False or not top1:
            raise ExportMismatchError(
                f"QONNX export of {name} does not match Brevitas: max|Δ|={diff:.3g} "
                f"(tolerance {tol:.3g}), integer-exact={int_exact}, top-1 agree={top1}")

    atomic_write_file(path, write_checked)
    report = reports[0]
    atomic_write_file(sidecar, json.dumps({"report": asdict(report), "model": report.model,
                                           "config": config_dict(model), **(extra or {})},
                                          indent=2))
    log.info("exported %s → %s (max|Δ| %.2e, integer-exact %s)", report.model, path,
             report.max_abs_diff, report.integer_exact)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bnn_brevitas.export",
        description="Export a registry model (fresh or from a checkpoint) to QONNX and check "
                    "that qonnx execution matches Brevitas.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="registry name (fresh, randomly initialised weights)")
    src.add_argument("--checkpoint", type=Path, help="a checkpoint written by training")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a model config field (with --model); with --checkpoint it "
                    "may only repeat the checkpoint's own values (a contradiction is an error)")
    ap.add_argument("-o", "--output", type=Path, help="output .onnx (default build/<model>.onnx)")
    ap.add_argument("--samples", type=int, default=4, help="inputs compared after export")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> None:
        if args.checkpoint:  # the source is loaded before anything is written
            model = load_model(args.checkpoint, parse_overrides(args.set))  # must agree with it
            extra = {"checkpoint": str(args.checkpoint)}
        else:
            model, extra = create_model(args.model, **parse_overrides(args.set)), {}
        out = args.output or Path("build") / f"{model.model_name}.onnx"
        report = export_checked(model, out, samples=args.samples, seed=args.seed, extra=extra)
        print(json.dumps(asdict(report), indent=2))  # noqa: T201 (CLI output)

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    raise SystemExit(main())
