# SPDX-License-Identifier: BSD-3-Clause
"""``TrainConfig``: every training option, its documentation, its valid values and its validation.

One source of truth: each field carries in ``field(metadata=...)`` its help text, its choices,
its valid range (``bnn_brevitas.config_fields.Range``; floats are always finite) and whether
``--resume`` may change it (``resume_safe``, see ``resume.py``); the CLI (``cli.py``) is
generated from it. Values are resolved in this order, later wins:

    dataclass defaults  <  saved run config (``--resume``)  <  ``--config FILE.yaml``  <  CLI flags

``validate`` runs before anything is built; every error is a ``ConfigError`` naming the field
and its valid values. The resolved config is written to ``<output_dir>/config.yaml`` once the
run has started (for a resumed run: once its checkpoint is restored).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config_fields import Choices, Range, check_fields, check_value, option
from ..config_fields import field_type as _field_type
from ..errors import ConfigError, ToolkitError, UserError
from ..models import get_spec, list_models, resolve_config
from .data import DATASETS

DEVICES = ("auto", "cpu", "cuda")
AUGMENTS = ("auto", "none", "crop", "light", "randaugment")
#: BNext reaches exact binary weights at epoch 153 of 512 (0.9^153 ≈ 1e-7)
BNEXT_BINARIZE_AT = 153 / 512


def _f(default: Any, help: str, choices: Choices = None, *, resume_safe: bool,
       bounds: Range | None = None) -> Any:
    """A ``TrainConfig`` field. ``resume_safe``: may a ``--resume`` change it? Only options that
    change neither the schedule, the data nor the optimisation are (device, threads, …);
    ``resume.check_resume`` refuses every other change."""
    return option(default, help, choices, bounds, resume_safe=resume_safe)


_POSITIVE, _NON_NEG = Range(0, lo_open=True), Range(0)
_LR = Range(0, 1, lo_open=True)  # AdamW learning rates above 1 are never meant
_FRACTION = Range(0, 1)


@dataclass
class TrainConfig:
    """One training run. Defaults = ``configs/train/default.yaml`` (the ``make train`` job)."""

    model: str = _f("bnext_nano_hw", "registry model name (see bnn_brevitas.list_models())",
                    list_models, resume_safe=False)
    model_overrides: dict[str, Any] = _f(
        {}, "model config overrides (CLI: --set FIELD=VALUE); in_channels, img_size and "
            "num_classes follow the dataset unless set here", resume_safe=False)
    quantize: bool = _f(True, "train with every Brevitas quantizer active; --no-quantize trains "
                              "the same BNext network in float (e.g. as a KD teacher)",
                        resume_safe=False)
    dataset: str = _f("fashion_mnist", "dataset kind", tuple(DATASETS), resume_safe=False)
    data_dir: str | None = _f(None, "dataset directory (default for fashion_mnist: Debian's "
                                    "/usr/share/datasets/fashion-mnist)", resume_safe=False)
    max_train_samples: int | None = _f(None, "use a seeded random subset of the training set "
                                             "(after the validation images are held out)",
                                       resume_safe=False, bounds=Range(1))
    max_test_samples: int | None = _f(None, "use a seeded random subset of the test set",
                                      resume_safe=False, bounds=Range(1))
    val_samples: int = _f(5000, "images held out of the training set (seeded, disjoint) to "
                                "select the best epoch; the test set is evaluated once, for the "
                                "selected checkpoint (0: no validation split, the final epoch "
                                "is kept)", resume_safe=False, bounds=Range(0))
    epochs: int = _f(2, "training epochs", resume_safe=False, bounds=Range(1))
    batch_size: int = _f(64, "global batch size (split evenly across DDP processes)",
                         resume_safe=False, bounds=Range(2, note="BatchNorm needs 2 samples"))
    lr: float = _f(2e-3, "peak learning rate of AdamW (BNext: 1e-3 at batch 512)",
                   resume_safe=False, bounds=_LR)
    weight_decay: float = _f(1e-3, "AdamW weight decay of BN, PReLU, biases, alpha and FC "
                                   "weights", resume_safe=False, bounds=_FRACTION)
    conv_weight_decay: float = _f(1e-8, "weight decay of conv kernels, binary weights and "
                                        "quantizer scales (BNext: 1e-8, i.e. none)",
                                  resume_safe=False, bounds=_FRACTION)
    warmup_epochs: float = _f(0.1, "linear warm-up length in epochs (fractions allowed), at the "
                                   "start of every schedule segment", resume_safe=False,
                              bounds=_NON_NEG)
    warmup_lr: float = _f(1e-5, "learning rate at the first warm-up step", resume_safe=False,
                          bounds=_FRACTION)
    min_lr: float = _f(1e-7, "learning rate at the end of the cosine decay", resume_safe=False,
                       bounds=_FRACTION)
    restart_at: list[int] = _f(
        [], "epochs at which the schedule restarts (warm-up + cosine again until the next "
            "restart or the end); --resume RUN --extend-epochs N appends the run's epochs "
            "here (YAML only)", resume_safe=False)
    grad_clip: float = _f(5.0, "clip the global gradient norm to this value",
                          resume_safe=False, bounds=Range(0, note="0 disables clipping"))
    progressive: bool = _f(False, "BNext's progressive binarization of the weights (temperature "
                                  "schedule; on for BNext's long runs, off for the 2-epoch "
                                  "default, where it measured worse); off: exact sign from step 0",
                           resume_safe=False)
    binarize_at: float = _f(round(BNEXT_BINARIZE_AT, 4),
                            "fraction of the first schedule segment (all of training without "
                            "restarts) after which weights are exactly binary",
                            resume_safe=False, bounds=Range(0, 1, lo_open=True))
    teacher: str | None = _f(None, "knowledge distillation teacher: a checkpoint or run directory "
                                   "written by this CLI", resume_safe=False)
    kd_temperature: float = _f(1.0, "distillation temperature T (loss scaled by T²)",
                               resume_safe=False, bounds=Range(0, 100, lo_open=True))
    kd_alpha: float = _f(1.0, "weight of the distillation loss; 1 - alpha weighs the label "
                              "cross-entropy (1 = label-free, as BNext)", resume_safe=False,
                         bounds=_FRACTION)
    augment: str = _f("none", "train augmentation (auto: light for Fashion-MNIST, crop for "
                              "MNIST-style IDX, randaugment for RGB, none for synthetic)",
                      AUGMENTS, resume_safe=False)
    aug_magnitude: int = _f(7, "RandAugment magnitude on timm's 0-10 scale (BNext: 7)",
                            resume_safe=False, bounds=Range(0, 10, note="timm's scale"))
    seed: int = _f(0, "random seed (model init, validation split, sampling, augmentation)",
                   resume_safe=False, bounds=Range(0, 2**63 - 1))
    device: str = _f("auto", "training device", DEVICES, resume_safe=True)
    amp: bool = _f(False, "mixed precision (float16 autocast + grad scaling); CUDA only",
                   resume_safe=False)
    workers: int = _f(0, "DataLoader worker processes (0: load in the main process)",
                      resume_safe=True, bounds=Range(0))
    threads: int | None = _f(None, "CPU threads per process (default: torch's choice)",
                             resume_safe=True, bounds=Range(1))
    fast_train: bool = _f(True, "train with fused straight-through quantizer functions "
                                "(bnn_brevitas/fast_train.py): bit-identical values and "
                                "gradients, ~1.8-2x faster on the CPU; off: Brevitas' own "
                                "forward", resume_safe=True)
    fast_kernels: str = _f("eager", "the fast path's elementwise kernels: eager, compiled "
                                    "(torch.compile, checked bit-identical before use) or auto "
                                    "(compiled where inductor works)",
                           ("auto", "eager", "compiled"), resume_safe=True)
    output_dir: str | None = _f(None, "run directory (default: runs/<model>-<timestamp>); a "
                                      "resumed run stays in its own", resume_safe=False)
    resume: str | None = _f(None, "continue the run in this directory exactly where it stopped "
                                  "(a run directory, not a checkpoint file); options that would "
                                  "change its schedule or data are refused (see "
                                  "--extend-epochs)", resume_safe=True)
    export: bool = _f(True, "export the selected model to QONNX (checked) and write the model "
                            "card", resume_safe=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


def field_type(name: str) -> tuple[type, bool]:
    """(base type, optional) of a ``TrainConfig`` field: ``int | None`` → ``(int, True)``."""
    return _field_type(TrainConfig, name)


def merge(cfg: TrainConfig, values: dict[str, Any], source: str) -> TrainConfig:
    """``cfg`` with ``values`` applied (unknown keys and wrong types are ``ConfigError``)."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(FIELDS)}")
    for name, value in values.items():
        check_value(TrainConfig, name, value)
    values = {k: float(v) if field_type(k)[0] is float and v is not None else v
              for k, v in values.items()}
    if "model_overrides" in values:  # --set adds to the file's overrides
        values["model_overrides"] = {**cfg.model_overrides, **values["model_overrides"]}
    return dataclasses.replace(cfg, **values)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (``UserError`` if missing or not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse config file {str(path)!r}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of option: value")
    return data


def schedule_segments(epochs: int, restart_at: list[int]) -> list[tuple[int, int]]:
    """``(first epoch, end epoch)`` of every warm-up + cosine segment of the schedule."""
    edges = [0, *restart_at, epochs]
    return list(zip(edges[:-1], edges[1:]))


def _check_combinations(cfg: TrainConfig) -> None:
    """The rules that tie fields together (single-field ranges live in the field metadata)."""
    r = cfg.restart_at
    restarts_ok = (all(isinstance(e, int) and not isinstance(e, bool) for e in r)
                   and all(a < b for a, b in zip([0, *r], [*r, cfg.epochs])))
    rules: list[tuple[str, bool, str]] = [
        ("restart_at", restarts_ok, "must be increasing epochs in (0, epochs)"),
        ("warmup_lr", cfg.warmup_lr <= cfg.lr, "must be in [0, lr]"),
        ("min_lr", cfg.min_lr <= cfg.lr, "must be in [0, lr]"),
    ]
    for name, ok, rule in rules:
        if not ok:
            raise ConfigError(f"{name}: {rule}, got {getattr(cfg, name)!r}")
    shortest = min(b - a for a, b in schedule_segments(cfg.epochs, r))
    if cfg.warmup_epochs >= shortest:
        what = "epochs" if not r else f"the shortest schedule segment ({shortest} epochs)"
        raise ConfigError(f"warmup_epochs: must be in [0, {what}), got {cfg.warmup_epochs!r}")


def _check_environment(cfg: TrainConfig) -> None:
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise ConfigError("device: 'cuda' requested but torch sees no CUDA device; "
                          "valid here: auto, cpu")
    if cfg.amp and not (cfg.device == "cuda" or (cfg.device == "auto" and cuda)):
        raise ConfigError("amp: mixed precision needs a CUDA device; use --no-amp on the CPU")
    if not cfg.quantize and get_spec(cfg.model).config.family != "bnext":
        raise ConfigError(f"quantize: --no-quantize needs a BNext model (its PReLUs keep it "
                          f"non-linear); {cfg.model!r} would become a linear network")
    resolve_config(cfg.model, **cfg.model_overrides)  # raises ConfigError naming valid fields
    for name in ("data_dir", "teacher", "resume"):
        path = getattr(cfg, name)
        if path is not None and not Path(path).exists():
            raise ConfigError(f"{name}: {path!r} does not exist")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every field; raise ``ConfigError`` naming the field and its valid values."""
    check_fields(cfg)  # types, ranges, finiteness and choices (model and dataset registries)
    _check_combinations(cfg)
    try:
        _check_environment(cfg)
    except ConfigError:
        raise
    except ToolkitError as e:  # e.g. UnknownNameError from the registry
        raise ConfigError(f"model_overrides: {e}") from None
    return cfg
