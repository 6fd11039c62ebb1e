# SPDX-License-Identifier: BSD-3-Clause
"""``TrainConfig``: every training option, its documentation, its valid values and its validation.

One source of truth: each field carries its help text (and choices) in ``field(metadata=...)``;
the CLI (``cli.py``) is generated from it. Values are resolved in this order, later wins:

    dataclass defaults  <  saved run config (``--resume``)  <  ``--config FILE.yaml``  <  CLI flags

``validate`` runs before anything is built; every error is a ``ConfigError`` naming the field
and its valid values. The resolved config is written to ``<output_dir>/config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config_fields import check_fields, check_value
from ..config_fields import field_type as _field_type
from ..config_fields import option as _f
from ..errors import ConfigError, ToolkitError, UserError
from ..models import get_spec, list_models, resolve_config
from .data import DATASETS

DEVICES = ("auto", "cpu", "cuda")
AUGMENTS = ("auto", "none", "crop", "light", "randaugment")
#: BNext reaches exact binary weights at epoch 153 of 512 (0.9^153 ≈ 1e-7)
BNEXT_BINARIZE_AT = 153 / 512


@dataclass
class TrainConfig:
    """One training run. Defaults = ``configs/train/default.yaml`` (the ``make train`` job)."""

    model: str = _f("bnext_nano_hw", "registry model name (see bnn_brevitas.list_models())",
                    list_models)
    model_overrides: dict[str, Any] = _f(
        {}, "model config overrides (CLI: --set FIELD=VALUE); in_channels, img_size and "
            "num_classes follow the dataset unless set here")
    quantize: bool = _f(True, "train with every Brevitas quantizer active; --no-quantize trains "
                              "the same BNext network in float (e.g. as a KD teacher)")
    dataset: str = _f("fashion_mnist", "dataset kind", tuple(DATASETS))
    data_dir: str | None = _f(None, "dataset directory (default for fashion_mnist: Debian's "
                                    "/usr/share/datasets/fashion-mnist)")
    max_train_samples: int | None = _f(None, "use a seeded random subset of the training set")
    max_test_samples: int | None = _f(None, "use a seeded random subset of the test set")
    epochs: int = _f(2, "training epochs")
    batch_size: int = _f(64, "global batch size (split evenly across DDP processes)")
    lr: float = _f(2e-3, "peak learning rate of AdamW (BNext: 1e-3 at batch 512)")
    weight_decay: float = _f(1e-3, "AdamW weight decay of BN, PReLU, biases, alpha and FC weights")
    conv_weight_decay: float = _f(1e-8, "weight decay of conv kernels, binary weights and "
                                        "quantizer scales (BNext: 1e-8, i.e. none)")
    warmup_epochs: float = _f(0.1, "linear warm-up length in epochs (fractions allowed)")
    warmup_lr: float = _f(1e-5, "learning rate at the first warm-up step")
    min_lr: float = _f(1e-7, "learning rate at the end of the cosine decay")
    grad_clip: float = _f(5.0, "clip the global gradient norm to this value (0: off)")
    progressive: bool = _f(False, "BNext's progressive binarization of the weights (temperature "
                                  "schedule; on for BNext's long runs, off for the 2-epoch "
                                  "default, where it measured worse); off: exact sign from step 0")
    binarize_at: float = _f(round(BNEXT_BINARIZE_AT, 4),
                            "fraction of training after which weights are exactly binary")
    teacher: str | None = _f(None, "knowledge distillation teacher: a checkpoint or run directory "
                                   "written by this CLI")
    kd_temperature: float = _f(1.0, "distillation temperature T (loss scaled by T²)")
    kd_alpha: float = _f(1.0, "weight of the distillation loss; 1 - alpha weighs the label "
                              "cross-entropy (1 = label-free, as BNext)")
    augment: str = _f("none", "train augmentation (auto: light for Fashion-MNIST, crop for "
                              "MNIST-style IDX, randaugment for RGB, none for synthetic)", AUGMENTS)
    aug_magnitude: int = _f(7, "RandAugment magnitude on timm's 0-10 scale (BNext: 7)")
    seed: int = _f(0, "random seed (model init, sampling, augmentation)")
    device: str = _f("auto", "training device", DEVICES)
    amp: bool = _f(False, "mixed precision (float16 autocast + grad scaling); CUDA only")
    workers: int = _f(0, "DataLoader worker processes (0: load in the main process)")
    threads: int | None = _f(None, "CPU threads per process (default: torch's choice)")
    output_dir: str | None = _f(None, "run directory (default: runs/<model>-<timestamp>)")
    resume: str | None = _f(None, "continue the run in this directory (or checkpoint file) "
                                  "exactly where it stopped")
    export: bool = _f(True, "export the final model to QONNX (checked) and write the model card")

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


def _check_range(cfg: TrainConfig) -> None:
    rules: list[tuple[str, bool, str]] = [
        ("epochs", cfg.epochs >= 1, "must be ≥ 1"),
        ("batch_size", cfg.batch_size >= 2, "must be ≥ 2 (BatchNorm needs 2 samples)"),
        ("lr", cfg.lr > 0, "must be > 0"),
        ("weight_decay", cfg.weight_decay >= 0, "must be ≥ 0"),
        ("conv_weight_decay", cfg.conv_weight_decay >= 0, "must be ≥ 0"),
        ("warmup_epochs", 0 <= cfg.warmup_epochs < cfg.epochs, "must be in [0, epochs)"),
        ("warmup_lr", 0 <= cfg.warmup_lr <= cfg.lr, "must be in [0, lr]"),
        ("min_lr", 0 <= cfg.min_lr <= cfg.lr, "must be in [0, lr]"),
        ("grad_clip", cfg.grad_clip >= 0, "must be ≥ 0 (0 disables clipping)"),
        ("binarize_at", 0 < cfg.binarize_at <= 1, "must be in (0, 1]"),
        ("kd_temperature", cfg.kd_temperature > 0, "must be > 0"),
        ("kd_alpha", 0 <= cfg.kd_alpha <= 1, "must be in [0, 1]"),
        ("aug_magnitude", 0 <= cfg.aug_magnitude <= 10, "must be in [0, 10] (timm's scale)"),
        ("workers", cfg.workers >= 0, "must be ≥ 0"),
        ("threads", cfg.threads is None or cfg.threads >= 1, "must be ≥ 1"),
        ("max_train_samples", cfg.max_train_samples is None or cfg.max_train_samples >= 1,
         "must be ≥ 1"),
        ("max_test_samples", cfg.max_test_samples is None or cfg.max_test_samples >= 1,
         "must be ≥ 1"),
    ]
    for name, ok, rule in rules:
        if not ok:
            raise ConfigError(f"{name}: {rule}, got {getattr(cfg, name)!r}")


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
    check_fields(cfg)  # types, and choices (the model and dataset registries among them)
    _check_range(cfg)
    try:
        _check_environment(cfg)
    except ConfigError:
        raise
    except ToolkitError as e:  # e.g. UnknownNameError from the registry
        raise ConfigError(f"model_overrides: {e}") from None
    return cfg
