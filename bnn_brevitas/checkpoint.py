# SPDX-License-Identifier: BSD-3-Clause
"""Checkpoint format: one ``torch.save`` dict, loadable with ``weights_only=True``.

``{"format": 1, "model": name, "config": {field: value}, "state_dict": {...}, "extra": {...}}``
The config holds only primitives, so the model is rebuilt from the registry, never unpickled.
Writes are atomic (temporary file + rename): a crash never leaves a truncated checkpoint.
Reading validates the layout and the stored model config (``build_model``): a corrupt or
foreign file is a ``UserError`` naming the file, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ToolkitError, UserError
from .models import create_model, get_spec
from .outputs import atomic_write_file
from .utils import module_logger, run_cli, setup_logging, sha256_file

log = module_logger(__spec__, __name__)

FORMAT_VERSION = 1


def config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's resolved config as primitives (tuples become lists)."""
    return config_dict_of(model.cfg)


def config_overrides(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Only the fields of ``config`` that differ from the registered default of ``name``."""
    default = config_dict_of(get_spec(name).config)
    return {k: v for k, v in config.items() if k in default and default[k] != v}


def config_dict_of(cfg: Any) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d.pop("family", None)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` all or nothing (``outputs.atomic_write_file``: a temporary sibling, then
    a rename over ``path``)."""
    atomic_write_file(path, lambda tmp: torch.save(obj, tmp))


def save_checkpoint(path: str | Path, model: nn.Module, **extra: Any) -> None:
    atomic_save({
        "format": FORMAT_VERSION,
        "model": model.model_name,
        "config": config_dict(model),
        "state_dict": model.state_dict(),
        "extra": extra,
    }, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint dict (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise UserError(f"cannot read checkpoint {str(path)!r}: {type(e).__name__}: {e}") from None
    if not isinstance(ckpt, dict) or {"model", "config", "state_dict"} - set(ckpt):
        raise UserError(f"{str(path)!r} is not a bnn_brevitas checkpoint "
                        "(expected keys 'model', 'config', 'state_dict')")
    if ckpt.get("format", 0) > FORMAT_VERSION:
        raise UserError(f"checkpoint {str(path)!r} has format {ckpt['format']}, "
                        f"newer than this toolkit's {FORMAT_VERSION}")
    kinds = {"model": str, "config": dict, "state_dict": dict, "extra": dict}
    bad = [k for k, kind in kinds.items() if k in ckpt and not isinstance(ckpt[k], kind)]
    if bad:
        raise UserError(f"checkpoint {str(path)!r} is malformed: "
                        + ", ".join(f"{k!r} is a {type(ckpt[k]).__name__}, not a "
                                    f"{kinds[k].__name__}" for k in bad))
    return ckpt


def build_model(ckpt: dict[str, Any], path: str | Path,
                overrides: dict[str, Any] | None = None) -> nn.Module:
    """The registry model of a checkpoint read by ``read_checkpoint``, weights not loaded.

    Its stored config must be valid for the registry model (else ``UserError`` naming the
    file). ``overrides`` (e.g. ``export --set``) may only repeat stored values: the weights fix
    the architecture, so a different value is a ``UserError``, never silently ignored."""
    name, stored = ckpt["model"], ckpt["config"]
    try:
        default = config_dict_of(get_spec(name).config)
    except ToolkitError as e:
        raise UserError(f"checkpoint {str(path)!r}: {e}") from None
    unknown = sorted(set(stored) - set(default)) + sorted(set(overrides or {}) - set(default))
    if unknown:
        raise UserError(f"checkpoint {str(path)!r}: unknown {name} config field(s) {unknown}; "
                        f"valid: {', '.join(default)}")
    for key, value in (overrides or {}).items():
        have = stored.get(key, default[key])
        if (list(value) if isinstance(value, tuple) else value) != have:
            raise UserError(f"checkpoint {str(path)!r}: override {key}={value!r} contradicts the "
                            f"checkpoint's {key}={have!r}; its weights fix the model config")
    try:
        return create_model(name, **config_overrides(name, stored))
    except ToolkitError as e:
        raise UserError(f"checkpoint {str(path)!r} has an invalid model config: {e}") from None
    except (TypeError, ValueError, AttributeError) as e:  # a builder choking on a stored value
        raise UserError(f"checkpoint {str(path)!r} has an invalid model config: "
                        f"{type(e).__name__}: {e}") from None


def load_model(path: str | Path, overrides: dict[str, Any] | None = None) -> nn.Module:
    """Rebuild the registry model of a checkpoint and load its weights (eval mode);
    ``overrides``: see ``build_model``."""
    ckpt = read_checkpoint(path)
    model = build_model(ckpt, path, overrides)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise UserError(f"checkpoint {str(path)!r} does not match model {ckpt['model']!r}: {e}") \
            from None
    return model.eval()


def publish(run: str | Path, out: str | Path) -> str:
    """Write the weights-only checkpoint of a training run to ``out`` with the run's model
    card numbers in ``extra``, record its sha256 in ``SHA256SUMS`` next to it, and return the
    digest. ``run``: a checkpoint file, or a run directory, whose model card names the
    checkpoint it describes (the selected epoch's; else ``checkpoint.pt``)."""
    import json

    src = Path(run)
    card_path = (src if src.is_dir() else src.parent) / "model_card.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    selected = card.get("checkpoint", {}).get("path", "checkpoint.pt")
    ckpt_path = src / selected if src.is_dir() else src
    model = load_model(ckpt_path)
    extra = {k: card[k] for k in ("dataset", "results", "training") if k in card}
    out = Path(out)
    save_checkpoint(out, model, source=str(ckpt_path), **extra)
    digest = sha256_file(out)
    sums = out.parent / "SHA256SUMS"
    lines = [ln for ln in (sums.read_text().splitlines() if sums.is_file() else [])
             if not ln.endswith(f"  {out.name}")]
    sums.write_text("\n".join(sorted(lines + [f"{digest}  {out.name}"])) + "\n")
    return digest


def main(argv: list[str] | None = None) -> int:
    """``python -m bnn_brevitas.checkpoint RUN -o FILE``: publish a run's weights (see publish)."""
    ap = argparse.ArgumentParser(prog="python -m bnn_brevitas.checkpoint",
                                 description=publish.__doc__)
    ap.add_argument("run", help="training run directory or its checkpoint.pt")
    ap.add_argument("-o", "--out", required=True, type=Path, help="weights-only checkpoint to write")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> None:
        digest = publish(args.run, args.out)
        log.info("%s  %s", digest, args.out)

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    import sys

    sys.exit(main())
