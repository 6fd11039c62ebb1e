# SPDX-License-Identifier: BSD-3-Clause
"""``python -m bnn_brevitas.train``: the command line, generated from ``TrainConfig``.

Every config field is a flag (``lr`` → ``--lr``, booleans as ``--export/--no-export``); model
config overrides use ``--set FIELD=VALUE`` as in ``bnn_brevitas.metrics``. Only the flags you
pass override the YAML file, which overrides the defaults. Exit codes: 0 done, 2 bad
configuration or input (no traceback), 130/143 stopped by SIGINT/SIGTERM after saving a
checkpoint (continue with ``--resume RUN_DIR``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

from ..errors import ToolkitError
from ..utils import parse_overrides, setup_logging
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
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    for name, f in FIELDS.items():
        if name == "model_overrides":
            continue
        base, optional = field_type(name)
        flags = ["--" + name.replace("_", "-")] + (["-o"] if name == "output_dir" else [])
        default = f.default if f.default is not dataclasses.MISSING else None
        kw: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS,
                              "help": f"{f.metadata['help']} (default: {default})"}
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


def _resume_dir(path: str) -> Path:
    p = Path(path)
    return p if p.is_dir() else p.parent


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < saved run config (--resume) < --config file < flags; then validate."""
    given = {k: v for k, v in vars(args).items() if k in FIELDS}
    cfg = TrainConfig()
    if given.get("resume"):
        run_dir = _resume_dir(given["resume"])
        saved = run_dir / "config.yaml"
        if saved.is_file():
            cfg = merge(cfg, load_yaml(saved), str(saved))
        cfg = dataclasses.replace(cfg, output_dir=str(run_dir))
    if args.config is not None:
        cfg = merge(cfg, load_yaml(args.config), str(args.config))
    if args.set:
        given["model_overrides"] = parse_overrides(args.set)
    return validate(merge(cfg, given, "command line"))


def _print_result(result: Any) -> None:
    print(result.summary, end="")  # noqa: T201 (CLI output)
    lines = [f"run directory  {result.run_dir}"]
    if result.test_acc is not None:
        lines.append(f"test top-1     {100 * result.test_acc:.2f} % (final epoch), "
                     f"best {100 * result.best_acc:.2f} %")
    card = result.card or {}
    if card.get("onnx"):
        lines.append(f"QONNX          {result.run_dir / card['onnx']['path']} (integer-exact "
                     f"{card['onnx']['integer_exact']})")
    if card:
        lines.append(f"model card     {result.run_dir / 'model_card.md'}")
    print("\n".join(lines))  # noqa: T201 (CLI output)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    try:
        cfg = resolve_config(args)
        if args.dry_run:
            print(cfg.to_yaml(), end="")  # noqa: T201 (CLI output)
            return 0
        result = train(cfg)
    except ToolkitError as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    if result.summary or result.card:
        _print_result(result)
    return result.exit_code
