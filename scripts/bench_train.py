# SPDX-License-Identifier: BSD-3-Clause
"""Training images/s of the Brevitas reference path vs the fast path (``bnn_brevitas.speed``).

Same process, same seed, same batches, interleaved rounds, fixed threads; prints a summary
and writes JSON with the machine's details and the fast/reference ratio.

    .venv/bin/python scripts/bench_train.py                       # bnext_nano_hw, 2 threads
    .venv/bin/python scripts/bench_train.py --rounds 9 --out build/bench/train.json
    .venv/bin/python scripts/bench_train.py --device cuda         # exit code 2 without CUDA
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bnn_brevitas.speed import measure
from bnn_brevitas.utils import parse_overrides, run_cli, setup_logging

log = logging.getLogger("bench_train")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench_train.py", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bnext_nano_hw", help="registry model name")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a model config field (repeatable)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round and path")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    ap.add_argument("--warmup", type=int, default=32,
                    help="untimed steps first (past the quantizers' statistics phase)")
    ap.add_argument("--kernels", default="auto", choices=("auto", "eager", "compiled"),
                    help="the fast path's elementwise kernels (compiled: torch.compile)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("build/bench/train_speed.json"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        rep = measure(args.model, parse_overrides(args.set), batch=args.batch,
                      threads=args.threads, device=args.device, steps=args.steps,
                      rounds=args.rounds, warmup=args.warmup, seed=args.seed,
                      kernels=args.kernels)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rep.to_dict(), indent=2) + "\n")
        med = rep.median_img_per_s
        log.info("%s, batch %d, %s, %d threads (%s): reference %.1f img/s, fast (%s kernels) "
                 "%.1f img/s, ratio %.2f× (per round %s); identical losses: %s → %s",
                 rep.model, rep.batch, rep.device, rep.threads, rep.machine["cpu"],
                 med["reference"], rep.kernels, med["fast"], rep.ratio, rep.round_ratios,
                 rep.losses_identical, args.out)
        return 0 if rep.losses_identical else 1

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    raise SystemExit(main())
