# SPDX-License-Identifier: BSD-3-Clause
"""``python -m bnn_brevitas.train``: the command line, generated from ``TrainConfig``.

Every config field is a flag (``lr`` → ``--lr``, booleans as ``--export/--no-export``); model
config overrides use ``--set FIELD=VALUE`` as in ``bnn_brevitas.metrics``. Only the flags you
pass override the YAML file, which overrides the defaults.

``--resume RUN_DIR`` continues a run exactly; flags that would change its schedule or data are
refused (exit 2, the run untouched). ``--resume RUN_DIR --extend-epochs N`` trains N more
epochs as a warm restart: warm-up from warmup_lr to lr over warmup_epochs, then cosine to
min_lr, over the N new epochs (optimizer state, data order and RNG continue).

Exit codes (``bnn_brevitas.errors``): 0 done; 1 training diverged (non-finite loss or gradient;
the last finite checkpoint is kept) or the export check failed; 2 bad configuration or input,
or a refused resume (no traceback); 130/143 stopped by SIGINT/SIGTERM after saving a checkpoint
(continue with ``--resume RUN_DIR``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..utils import parse_overrides, run_cli, setup_logging
from . import resume
from .config import FIELDS, TrainConfig, field_type, load_yaml, merge, validate
from .runner import train

log = logging.getLogger(__name__)

EPILOG = """examples:
  python -m bnn_brevitas.train                                  # make train: bnext_nano_hw, Fashion-MNIST
  python -m bnn_brevitas.train --config configs/train/default.yaml --epochs 4
  python -m bnn_brevitas.train --model cnv_w1a1 --epochs 1
  python -m bnn_brevitas.train --model bnext_nano --no-quantize -o runs/teacher
  python -m bnn_brevitas.train --teacher runs/teacher --kd-alpha 0.5
  python -m bnn_brevitas.train --resume runs/bnext_nano_hw-20261123-101500
  python -m bnn_brevitas.train --resume runs/bnext_nano_hw-20261123-101500 --extend-epochs 2
  torchrun --nproc_per_node 2 -m bnn_brevitas.train --epochs 2         # DDP (gloo on CPU)
"""


def _value_parser(base: type, optional: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "null"):
            return None
        return base(text)

    parse.__name__ = base.__name__  # argparse names the type in its error message
    return parse


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bnn_brevitas.train", description=__doc__,
                                 epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, metavar="FILE.yaml",
                    help="options as YAML (e.g. configs/train/default.yaml); flags override it")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a model config field, e.g. --set widths=[8,16,32,32]")
    ap.add_argument("--dry-run", action="store_true",
                    help="validate and print the resolved config; train nothing")
    ap.add_argument("--extend-epochs", type=int, metavar="N",
                    help="with --resume: train N more epochs as a warm restart of the schedule "
                         "(warm-up from warmup_lr to lr over warmup_epochs, then cosine to "
                         "min_lr, over the N new epochs)")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    for name, f in FIELDS.items():
        base, optional = field_type(name)
        if base in (dict, list):  # model_overrides: --set; restart_at: --extend-epochs
            continue
        flags = ["--" + name.replace("_", "-")] + (["-o"] if name == "output_dir" else [])
        default = f.default if f.default is not dataclasses.MISSING else None
        bounds = f.metadata["bounds"]
        rule = f"; {bounds.describe()}" if bounds is not None else ""
        kw: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS,
                              "help": f"{f.metadata['help']} (default: {default}{rule})"}
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = _value_parser(base, optional)
            fixed = f.metadata["choices"] if isinstance(f.metadata["choices"], tuple) else None
            kw["metavar"] = None if fixed else name.upper()
            if fixed:  # registry choices (models) are checked by validate(), with the list
                kw["choices"] = fixed
        ap.add_argument(*flags, **kw)
    return ap


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults (or the resumed run's config, extended by --extend-epochs) < --config file <
    flags; then refuse a resume that would not continue its run exactly, and validate."""
    given = {k: v for k, v in vars(args).items() if k in FIELDS}
    if args.extend_epochs is not None and not given.get("resume"):
        raise ConfigError("extend_epochs: extends a run, so it needs --resume RUN_DIR")
    base = TrainConfig()
    if given.get("resume"):
        base = resume.stored_config(resume.read_training_checkpoint(given["resume"]),
                                    given["resume"])
        if args.extend_epochs is not None:
            base = resume.extend_config(base, args.extend_epochs)
    cfg = base
    if args.config is not None:
        cfg = merge(cfg, load_yaml(args.config), str(args.config))
    if args.set:
        given["model_overrides"] = parse_overrides(args.set)
    cfg = merge(cfg, given, "command line")
    if given.get("resume"):  # before validate: a refused resume says why, not what else fails
        resume.refuse_unsafe_changes(base, cfg)
    return validate(cfg)


def _print_result(result: Any) -> None:
    print(result.summary, end="")  # noqa: T201 (CLI output)
    lines = [f"run directory  {result.run_dir}"]
    card = result.card or {}
    if card:
        r = card["results"]
        val = "" if r["val_top1"] is None else f" ({100 * r['val_top1']:.2f} %)"
        lines.append(f"selected       epoch {r['selected_epoch']} of {r['epochs']} by "
                     f"{r['selected_by']}{val}")
        lines.append(f"test top-1     {100 * r['test_top1']:.2f} % ({card['checkpoint']['path']}"
                     f", evaluated once)")
    if card.get("onnx"):
        lines.append(f"QONNX          {result.run_dir / card['onnx']['path']} (integer-exact "
                     f"{card['onnx']['integer_exact']})")
    if card:
        lines.append(f"model card     {result.run_dir / 'model_card.md'}")
    print("\n".join(lines))  # noqa: T201 (CLI output)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        cfg = resolve_config(args)
        if args.dry_run:
            print(cfg.to_yaml(), end="")  # noqa: T201 (CLI output)
            return 0
        result = train(cfg)
        if result.summary or result.card:
            _print_result(result)
        return result.exit_code

    return run_cli(log, args.verbose, body)
