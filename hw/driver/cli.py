# SPDX-License-Identifier: BSD-3-Clause
"""``python -m hw.driver``: run, verify and profile a deploy bundle on the board or emulated.

Every error is one line (``error: ...``; ``-v`` adds the traceback) and an exit status of the
toolkit's contract (``errors.py``): 0 ok, 1 a check failed (``verify``: a mismatch) or an
internal error, 2 bad input (arguments, data, metadata, a bundle that fails its MANIFEST.json),
3 a missing tool (pynq, a board, FINN for ``--sim``). No output file is written unless the
whole command succeeded (files are written atomically, their paths checked first).
``--sim`` ``run`` and ``verify`` need the bundle's HW-layer ONNX: the replay model checks
nothing and only drives ``profile`` (``bundle.py``). ``--bundle`` may also be a FINN deploy
folder (``driver/settings.json`` or ``driver/driver.py``; ``finn_compat.py``), whose graph
``--sim`` takes from ``--hw-onnx``.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import SIM_MODELS, bundle_meta, load_golden, load_npy, open_bundle
from .errors import EXIT_CHECK_FAILED, EXIT_OK, DriverError, InputError, exit_code
from .profile import packing_throughput, profile
from .report import atomic_write, check_output, markdown, write_report
from .tensors import quantize_input

log = logging.getLogger(__name__)


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected batch sizes >= 1, got {text!r}")
    return vals


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", required=True, type=Path,
                   help="folder with accel_meta.json (deploy bundle or build dir), or a FINN "
                        "deploy folder (driver/settings.json or driver/driver.py)")
    p.add_argument("--sim", action="store_true",
                   help="run against the emulator instead of the board (numbers labelled sim)")
    p.add_argument("--sim-model", choices=SIM_MODELS, default="auto",
                   help="emulator model: HW ONNX via FINN, golden replay, or auto")
    p.add_argument("--hw-onnx", type=Path,
                   help="FINN deploy folders only: the HW-layer ONNX the emulator runs (FINN's "
                        "folders carry none)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used for ``--help`` in the README)."""
    ap = argparse.ArgumentParser(prog="python -m hw.driver", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="predictions (and top-1) for an input .npy")
    _common(run)
    run.add_argument("--input", required=True, type=Path, help="inputs, (N, *shape_normal[1:])")
    run.add_argument("--labels", type=Path, help="integer labels (N,) for top-1")
    run.add_argument("--batch", type=int, help="samples per accelerator call")
    run.add_argument("--float-input", action="store_true",
                     help="the input holds the model's float inputs (e.g. pixels / 255): "
                          "quantize them by the metadata's input_quant first")
    run.add_argument("-o", "--output", type=Path, help="write predictions to this .npy")
    ver = sub.add_parser("verify", help="golden input -> output must match bit-exactly")
    _common(ver)
    prof = sub.add_parser("profile", help="throughput, latency, breakdown, clocks, power")
    _common(prof)
    prof.add_argument("--batch-sizes", type=_int_list, default=[1, 16, 256])
    prof.add_argument("--repeats", type=int, default=10, help="timed runs per batch size")
    prof.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    prof.add_argument("--latency-runs", type=int, default=1000, help="batch-1 runs")
    prof.add_argument("--rails", type=lambda s: [r for r in s.split(",") if r],
                      help="power rails to sum (default: all with a power reading)")
    prof.add_argument("--power-idle-s", type=float, default=5.0)
    prof.add_argument("--power-active-s", type=float, default=10.0)
    prof.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    prof.add_argument("-o", "--out", type=Path, default=Path("profile"),
                      help="report folder (profile.json, profile.md, *.png)")
    bench = sub.add_parser("bench-packing", help="host pack/unpack speed for the bundle's shapes")
    bench.add_argument("--bundle", required=True, type=Path,
                       help="folder with accel_meta.json (or a FINN deploy folder)")
    bench.add_argument("--batch-sizes", type=_int_list, default=[1, 256, 1024])
    bench.add_argument("--repeats", type=int, default=20)
    bench.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return ap


def _banner(acc: Any) -> str:
    """The backend line, then what was checked and which model emulates the accelerator."""
    if acc.backend == "sim":
        head = f"backend: sim ({acc.device.name}; emulator, not hardware)"
    else:
        head = f"backend: pynq board ({getattr(acc.device, 'name', 'device')})"
    return "\n".join([head, *getattr(acc, "notes", [])])


def cmd_run(args: argparse.Namespace) -> int:
    x = load_npy(args.input, "input")
    labels = None
    if args.labels is not None:
        labels = load_npy(args.labels, "labels")
        n = x.shape[0] if x.ndim else 0
        if labels.ndim != 1 or labels.shape[0] != n or labels.dtype.kind not in "iu":
            raise InputError(f"labels must be an integer array of shape ({n},), got "
                             f"{labels.dtype} {labels.shape}")
    if args.output is not None:
        check_output(args.output)
    with open_bundle(args.bundle, sim=args.sim, sim_model=args.sim_model, purpose="run",
                     hw_onnx=args.hw_onnx) as acc:
        if args.batch is not None:
            acc.batch_size = args.batch
        if args.float_input:
            x = quantize_input(acc.meta, x)  # elementwise; shapes are checked by predict
        preds = acc.predict(x)
        print(_banner(acc))
    print(f"samples: {preds.shape[0]}")
    if labels is not None:
        hits = int((preds == labels).sum())
        print(f"top-1: {hits / preds.shape[0]:.4f} ({hits}/{preds.shape[0]})")
    if args.output is not None:
        buf = io.BytesIO()
        np.save(buf, preds)
        atomic_write(args.output, buf.getvalue())
        print(f"predictions -> {args.output}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    with open_bundle(args.bundle, sim=args.sim, sim_model=args.sim_model,
                     purpose="verify", hw_onnx=args.hw_onnx) as acc:
        gi, go = load_golden(acc.meta)
        out = acc.execute(gi)
        print(_banner(acc))
    want = np.asarray(go)
    if want.size == out.size:
        want = want.reshape(out.shape)
    ok = want.shape == out.shape and np.array_equal(out, want)
    print(f"golden check: {'bit-exact' if ok else 'MISMATCH'} ({out.shape[0]} samples)")
    if not ok and want.shape == out.shape:
        bad = np.flatnonzero((out != want).reshape(out.shape[0], -1).any(axis=1))
        print(f"first mismatching sample: {bad[0]} ({bad.size} differ)")
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def cmd_profile(args: argparse.Namespace) -> int:
    check_output(args.out, folder=True)
    with open_bundle(args.bundle, sim=args.sim, sim_model=args.sim_model,
                     purpose="profile", hw_onnx=args.hw_onnx) as acc:
        print(_banner(acc))
        try:
            golden = load_golden(acc.meta)[0]
        except DriverError:
            golden = None
        rep = profile(acc, batch_sizes=args.batch_sizes, repeats=args.repeats,
                      warmup=args.warmup, latency_runs=args.latency_runs, golden=golden,
                      rail_names=args.rails, power_idle_s=args.power_idle_s,
                      power_active_s=args.power_active_s)
    paths = write_report(rep, args.out, plots=not args.no_plots)
    print(markdown(rep), end="")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_packing(args: argparse.Namespace) -> int:
    meta = bundle_meta(args.bundle)
    rows = packing_throughput(meta, args.batch_sizes, max(args.repeats, 1))
    print(f"host packing for {meta.model}: " + ", ".join(
        f"{s.name} {s.dtype.name} {list(s.shape_normal[1:])}" for s in meta.inputs + meta.outputs))
    print("| batch | input container | pack ms | pack MB/s | unpack ms | unpack MB/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['container']} | {r['pack_ms']:.4f} | {r['pack_mb_s']:.1f} | "
              f"{r['unpack_ms']:.4f} | {r['unpack_mb_s']:.1f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.captureWarnings(True)
    # pynq's Overlay.download warns when the HWH clock is not reachable; clocks.py reports it
    warnings.filterwarnings("ignore", message="Setting frequency to the closest possible value")
    cmds = {"run": cmd_run, "verify": cmd_verify, "profile": cmd_profile,
            "bench-packing": cmd_bench_packing}
    try:
        return cmds[args.cmd](args)
    except DriverError as e:
        print(f"error: {e}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 (the contract: one line, the traceback with -v)
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"error: internal error: {type(e).__name__}: {first}"
              + ("" if args.verbose else " (run with -v for the traceback)"), file=sys.stderr)
        if args.verbose:
            log.error("traceback:", exc_info=e)
        return exit_code(e)
