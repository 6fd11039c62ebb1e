# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark the flow with qonnx's own graph queries against the linear-time ones.

Runs ``python -m flows.pipeline`` twice on the same source, in fresh processes with
``PYTHONHASHSEED=0`` (qonnx writes value-info in set order otherwise): once with
``bnn_brevitas.qonnx_speedups`` disabled (qonnx as installed), once as the flow runs by default.
It records each step's time (``flow_report.json``), the wall time and the peak RSS of each
run, and compares every saved intermediate model byte for byte. Writes a JSON report::

    python scripts/bench_flow.py --checkpoint checkpoints/bnext_nano_hw_fmnist.pt \\
        -o build/bench_flow [--to-step estimate] [--only new]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from bnn_brevitas.speed import cpu_model

CHILD = ("import sys, runpy\n"
         "if sys.argv[1] == 'baseline':\n"
         "    import bnn_brevitas.qonnx_speedups as q; q.disable()\n"
         "sys.argv = ['flows.pipeline'] + sys.argv[2:]\n"
         "runpy.run_module('flows.pipeline', run_name='__main__')\n")


def run_variant(variant: str, source: list[str], out: Path, extra: list[str]) -> dict:
    """One flow run in a fresh process: wall time, peak RSS (MiB) and the per-step times."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    log = out.with_suffix(".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, variant, *source, "-o", str(out),
                                 *extra], env=env, stdout=f, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{variant} run failed ({code}), see {log}")
    steps = json.loads((out / "flow_report.json").read_text())
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "steps_s": {k: v for k, v in steps.items() if isinstance(v, (int, float))}}


def normalised(path: Path, build: Path) -> bytes:
    """A saved model's bytes with the paths FINN's code generation stores made comparable: the
    build directory as ``<build>`` and ``tempfile.mkdtemp``'s random 8-character suffix as
    ``<tmp>`` (everything else, weights and attributes included, is compared as it is)."""
    import onnx

    model = onnx.load(str(path))
    root = str(build.absolute())
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.STRING and root.encode() in attr.s:
                text = attr.s.decode().replace(root, "<build>")
                attr.s = re.sub(r"_[a-z0-9_]{8}(?=/|$)", "_<tmp>", text).encode()
    return model.SerializeToString()


def same_intermediates(a: Path, b: Path) -> dict[str, bool]:
    """Every saved intermediate model of build ``a`` vs ``b``: identical (up to the build's
    location, :func:`normalised`) or not."""
    names = sorted(p.name for p in (a / "intermediate").glob("*.onnx"))
    return {n: normalised(a / "intermediate" / n, a) == normalised(b / "intermediate" / n, b)
            for n in names}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint")
    src.add_argument("--model")
    src.add_argument("--onnx")
    ap.add_argument("-o", "--output-dir", type=Path, default=Path("build/bench_flow"))
    ap.add_argument("--to-step")
    ap.add_argument("--board", default="zcu104")
    ap.add_argument("--only", choices=("baseline", "new"), help="run one variant only")
    args = ap.parse_args(argv)
    key = "checkpoint" if args.checkpoint else "model" if args.model else "onnx"
    source = [f"--{key}", getattr(args, key), "--board", args.board]
    extra = ["--to-step", args.to_step] if args.to_step else []
    result: dict = {"date": dt.date.today().isoformat(), "cpu": cpu_model(),
                    "cores": os.cpu_count(), "python": platform.python_version(),
                    "source": source}
    for variant in ("baseline", "new"):
        if args.only in (None, variant):
            result[variant] = run_variant(variant, source, args.output_dir / variant, extra)
    if args.only is None:
        result["identical"] = same_intermediates(args.output_dir / "baseline",
                                                 args.output_dir / "new")
        result["all_identical"] = all(result["identical"].values())
        result["speedup"] = round(result["baseline"]["wall_s"] / result["new"]["wall_s"], 2)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "bench_flow.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))  # noqa: T201 (script output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
