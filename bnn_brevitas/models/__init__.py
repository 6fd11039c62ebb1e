# SPDX-License-Identifier: BSD-3-Clause
"""Model registry: ``create_model(name, **overrides)`` and ``list_models()``.

Sizes and variants are data: each registered name maps to a frozen config dataclass, and any
field of it can be overridden by keyword. Unknown names or fields raise ``UnknownNameError`` /
``ConfigError`` listing the valid choices. Every override is checked before the config is
built (:func:`check_override`): its type from the dataclass's type hint (a bool is ``true``
or ``false``, an int is not a bool, ``widths`` a non-empty list of ints) and, for counts and
sizes, its range (:data:`FIELD_RANGES`); the configs' own ``__post_init__`` checks the rest
(bit widths, layouts).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .. import _compat  # noqa: F401  (torch 2.13 shim for brevitas, see _compat)
from ..config_fields import check_value
from ..errors import ConfigError, UnknownNameError
from .bnext import BNext, BNextConfig
from .cnv import CNVConfig, CNVNet


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[[Any], nn.Module]
    config: Any
    description: str


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, builder: Callable[[Any], nn.Module], config: Any,
                   description: str) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelSpec(name, builder, config, description)


def list_models(family: str | None = None, hw: bool | None = None) -> list[str]:
    """Registered names, optionally filtered by family ("bnext", "cnv") and hw mode."""
    return sorted(
        n for n, s in _REGISTRY.items()
        if (family is None or s.config.family == family) and (hw is None or s.config.hw == hw)
    )


def get_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, list_models())
    return _REGISTRY[name]


#: the least (and, where there is one, the largest) value of the int fields that count or size
#: something, over every model config; an entry of ``widths`` is checked as a width
FIELD_RANGES: dict[str, tuple[int, int | None]] = {
    "widths": (1, None), "in_channels": (1, None), "img_size": (1, None),
    "num_classes": (2, None), "stem_kernel": (1, None), "stem_stride": (1, None),
    "se_ratio": (1, None), "in_bits": (1, 8),
}


def _range_text(lo: int, hi: int | None) -> str:
    return f"≥ {lo}" if hi is None else f"in [{lo}, {hi}]"


def check_override(cls: type, name: str, value: Any) -> Any:
    """``value`` for field ``name`` of the config class ``cls`` (a list made a tuple), or a
    ``ConfigError`` naming the field, what it takes and the value given."""
    hint = typing.get_type_hints(cls)[name]
    lo, hi = FIELD_RANGES.get(name, (None, None))
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{name}: expected a non-empty list of integers, got {value!r}")
        bad = [v for v in value if lo is not None and (v < lo or hi is not None and v > hi)]
        if bad:
            raise ConfigError(f"{name}: every entry must be {_range_text(lo, hi)}, got {bad[0]}")
        return tuple(value)
    check_value(cls, name, value)
    if lo is not None and (value < lo or hi is not None and value > hi):
        raise ConfigError(f"{name}: expected an integer {_range_text(lo, hi)}, got {value!r}")
    return value


def resolve_config(name: str, **overrides: Any) -> Any:
    """The config of ``name`` with ``overrides`` applied (validated)."""
    spec = get_spec(name)
    cls = type(spec.config)
    valid = [f.name for f in dataclasses.fields(spec.config) if f.init and f.name != "family"]
    bad = sorted(set(overrides) - set(valid))
    if bad:
        raise ConfigError(f"unknown override(s) {bad} for model {name!r}; valid: {', '.join(valid)}")
    try:
        checked = {k: check_override(cls, k, v) for k, v in overrides.items()}
        return dataclasses.replace(spec.config, **checked)
    except (ConfigError, TypeError, ValueError) as e:
        raise ConfigError(f"invalid override for model {name!r}: {e}") from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model. ``model.cfg`` holds the resolved config.

    >>> m = create_model("bnext_nano_hw")
    >>> m.cfg.hw, m.cfg.input_shape
    (True, (1, 28, 28))
    """
    cfg = resolve_config(name, **overrides)
    model = get_spec(name).builder(cfg)
    model.model_name = name
    return model


def _register_defaults() -> None:
    bnext_sizes = {
        "bnext_t": ((32, 64) + (128,) * 2 + (256,) * 2 + (512,) * 6 + (1024,) * 2, {}, "BNext-T"),
        "bnext_s": ((48, 96) + (192,) * 2 + (384,) * 2 + (768,) * 6 + (1536,) * 2, {}, "BNext-S"),
        "bnext_m": ((48, 96) + (192,) * 4 + (384,) * 4 + (768,) * 8 + (1536,) * 4, {}, "BNext-M"),
        "bnext_l": ((64, 128) + (256,) * 4 + (512,) * 4 + (1024,) * 16 + (2048,) * 4, {},
                    "BNext-L (the README's Large, code size 'super')"),
        "bnext_18": ((64,) * 3 + (128,) * 2 + (256,) * 2 + (512,) * 2,
                     dict(layout="bnext18", stem_kernel=7, stem_pool=True), "BNext-18"),
        # 6-bit trunk/activations: +6 points over 4 bits on Fashion-MNIST in the 2-epoch
        # default run (docs/RESULTS.md); 8 bits needs thresholds beyond float32's 2^24.
        "bnext_nano": ((16, 32, 64, 64, 128, 128),
                       dict(in_channels=1, img_size=28, num_classes=10, stem_stride=1,
                            trunk_bits=6, act_bits=6),
                       "small member for 28×28×1 (Fashion-MNIST)"),
        "bnext_micro": ((32, 64, 128, 128, 256, 256, 512, 512),
                        dict(in_channels=3, img_size=32, num_classes=10, stem_stride=1),
                        "small member for 32×32×3 (CIFAR-10)"),
    }
    for name, (widths, extra, desc) in bnext_sizes.items():
        cfg = BNextConfig(widths=widths, **extra)
        register_model(name, BNext, cfg, desc + ", faithful")
        register_model(name + "_hw", BNext, dataclasses.replace(cfg, hw=True), desc + ", hw mode")
    register_model("cnv_w1a1", CNVNet, CNVConfig(),
                   "FINN's CNV-W1A1 reference (brevitas_examples.bnn_pynq)")


_register_defaults()
