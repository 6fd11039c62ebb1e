# SPDX-License-Identifier: BSD-3-Clause
"""Measure FINN's reference zoo through the toolkit: the docs/RESULTS.md zoo table.

For each model: Brevitas export (``bnn_brevitas.zoo``), the flow (``--onnx``, the zoo's input
datatype and scale), partition completeness, RTL layers / all layers, verify (result and the
stages that ran), the driver emulator's golden check, flow time and FINN's estimates for the
board. Writes one JSON line per model to ``--out`` and prints a Markdown table.

    .venv/bin/python scripts/zoo_table.py --board zcu104 --out build/zoo/zcu104.jsonl [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from bnn_brevitas import zoo
from bnn_brevitas.errors import ToolkitError
from bnn_brevitas.utils import setup_logging
from flows.config import FlowConfig
from flows.pipeline import intermediate_path, run_flow
from flows.stitch import non_rtl_layers
from flows.verify import verify
from hw.driver.cli import main as driver_main
from hw.package import build_bundle

log = logging.getLogger("zoo_table")


def measure(name: str, board: str, root: Path, samples: int, stages: list[str] | None) -> dict:
    spec = zoo.ZOO[name]
    row: dict = {"model": name, "board": board}
    onnx = zoo.export(name, root / f"{name}.onnx")
    cfg = FlowConfig(onnx=onnx, board=board, output_dir=root / f"{name}_{board}",
                     input_datatype=spec.input_datatype, input_scale=spec.input_scale)
    t0 = time.perf_counter()
    try:
        run_flow(cfg)
    except ToolkitError as e:
        return {**row, "flow": f"error: {e}"}
    row["flow_s"] = round(time.perf_counter() - t0, 1)
    final = ModelWrapper(str(intermediate_path(cfg, "hw_codegen")))
    row["layers"] = len(final.graph.node)
    row["rtl_layers"] = row["layers"] - len(non_rtl_layers(final))
    est = json.loads((cfg.out_dir / "report" / "estimate.json").read_text())
    row["estimate"] = {k: est[k] for k in ("fps", "latency_ms")} | {
        k: est["totals"][k] for k in est["totals"]}
    t0 = time.perf_counter()
    rep = verify(cfg.out_dir, samples=samples, stages=stages)
    row["verify"] = rep.result
    row["verify_s"] = round(time.perf_counter() - t0, 1)
    row["stages_passed"] = [s.stage for s in rep.stages if s.status == "pass"]
    row["stages_not_passed"] = {s.stage: f"{s.status}: {s.note}" for s in rep.stages
                                if s.status != "pass"}
    bundle = build_bundle(cfg.out_dir, None, root / f"{name}_{board}_bundle", force=True)
    row["driver_sim_bit_exact"] = driver_main(
        ["verify", "--bundle", str(bundle.path), "--sim", "--sim-model", "onnx"]) == 0
    return row


def markdown(rows: list[dict]) -> str:
    head = ("| model | flow | RTL / all layers | verify | driver sim | flow s | verify s | "
            "est. FPS | LUT | BRAM18 | URAM | DSP |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if "estimate" not in r:
            lines.append(f"| {r['model']} | {r['flow']} | | | | | | | | | | |")
            continue
        e = r["estimate"]
        lines.append(
            f"| {r['model']} | ok | {r['rtl_layers']} / {r['layers']} | {r['verify']} | "
            f"{'bit-exact' if r['driver_sim_bit_exact'] else 'MISMATCH'} | {r['flow_s']} | "
            f"{r['verify_s']} | {e['fps']:.0f} | {e.get('LUT', 0):.0f} | "
            f"{e.get('BRAM_18K', 0):.0f} | {e.get('URAM', 0):.0f} | {e.get('DSP', 0):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="zoo models (default: all)")
    ap.add_argument("--board", default="zcu104")
    ap.add_argument("--root", type=Path, default=Path("build/zoo"))
    ap.add_argument("--out", type=Path, help="JSON lines (default ROOT/BOARD.jsonl)")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--stages", help="verify stages (default: all that can run here)")
    args = ap.parse_args(argv)
    setup_logging()
    out = args.out or args.root / f"{args.board}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.names or zoo.list_zoo():
        row = measure(name, args.board, args.root, args.samples,
                      args.stages.split(",") if args.stages else None)
        rows.append(row)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("%s", row)
    print(markdown(rows))  # noqa: T201 (script output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
