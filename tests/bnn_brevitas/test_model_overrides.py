# SPDX-License-Identifier: BSD-3-Clause
"""Model config overrides are checked against the field's type and range before a model is
built (``bnn_brevitas/models/__init__.py``): the error names the field, what it takes and the
value given; unknown fields list the valid ones. ``--set`` values arrive parsed as YAML."""

from __future__ import annotations

import logging

import pytest

import bnn_brevitas.metrics
from bnn_brevitas.errors import ConfigError
from bnn_brevitas.models import FIELD_RANGES, list_models, resolve_config

BAD = {
    "se_ratio_negative": ("bnext_nano_hw", dict(se_ratio=-1),
        "se_ratio: expected an integer ≥ 1, got -1"),
    "se_ratio_zero": ("bnext_nano_hw", dict(se_ratio=0), "se_ratio: expected an integer ≥ 1"),
    "se_ratio_float": ("bnext_nano_hw", dict(se_ratio=0.5),
        "se_ratio: expected an integer, got 0.5"),
    "hw_maybe": ("bnext_nano_hw", dict(hw="maybe"), "hw: expected true or false, got 'maybe'"),
    "hw_int": ("bnext_nano_hw", dict(hw=1), "hw: expected true or false, got 1"),
    "progressive_none": ("bnext_nano", dict(progressive=None), "progressive: a value is required"),
    "bits_bool": ("bnext_nano_hw", dict(trunk_bits=True),
        "trunk_bits: expected an integer, got True"),
    "bits_range": ("bnext_nano_hw", dict(act_bits=9), "act_bits must be an integer in [2, 8]"),
    "img_size_float": ("bnext_nano_hw", dict(img_size=28.0), "img_size: expected an integer"),
    "img_size_zero": ("bnext_nano_hw", dict(img_size=0), "img_size: expected an integer ≥ 1"),
    "in_channels_zero": ("bnext_nano_hw", dict(in_channels=0),
        "in_channels: expected an integer ≥ 1"),
    "num_classes_one": ("bnext_nano_hw", dict(num_classes=1),
        "num_classes: expected an integer ≥ 2"),
    "stem_stride_zero": ("bnext_nano_hw", dict(stem_stride=0),
        "stem_stride: expected an integer ≥ 1"),
    "stem_kernel_negative": ("bnext_t", dict(stem_kernel=-3),
        "stem_kernel: expected an integer ≥ 1"),
    "widths_scalar": ("bnext_nano_hw", dict(widths=16),
        "widths: expected a non-empty list of integers"),
    "widths_empty": ("bnext_nano_hw", dict(widths=[]), "widths: expected a non-empty list"),
    "widths_zero": ("bnext_nano_hw", dict(widths=[16, 0]),
        "widths: every entry must be ≥ 1, got 0"),
    "widths_text": ("bnext_nano_hw", dict(widths=["16"]), "widths: expected a non-empty list"),
    "layout_int": ("bnext_nano_hw", dict(layout=3), "layout: expected a string, got 3"),
    "layout_unknown": ("bnext_nano_hw", dict(layout="vgg"), "layout must be 'bnext' or 'bnext18'"),
    "pad_unknown": ("bnext_nano_hw", dict(binary_pad="one"), "binary_pad must be one of"),
    "unknown_field": ("bnext_nano_hw", dict(se_ration=4), "unknown override(s) ['se_ration']"),
    "family_is_not_a_field": ("bnext_nano_hw", dict(family="cnv"),
        "unknown override(s) ['family']"),
    "cnv_in_bits": ("cnv_w1a1", dict(in_bits=0), "in_bits: expected an integer in [1, 8], got 0"),
    "cnv_in_bits_high": ("cnv_w1a1", dict(in_bits=9), "in_bits: expected an integer in [1, 8]"),
    "cnv_weight_bits": ("cnv_w1a1", dict(weight_bits="1"), "weight_bits: expected an integer"),
    "cnv_img_size": ("cnv_w1a1", dict(img_size=31), "CNV supports img_size 28, 30 or 32"),
    "cnv_hw": ("cnv_w1a1", dict(hw="yes please"), "hw: expected true or false"),
}


@pytest.mark.parametrize("model, overrides, message", BAD.values(), ids=BAD.keys())
def test_a_bad_override_is_a_config_error_naming_the_field(model, overrides, message):
    with pytest.raises(ConfigError, match=f"model {model!r}") as err:
        resolve_config(model, **overrides)
    assert message in str(err.value)


@pytest.mark.parametrize("model, overrides", [
    ("bnext_nano_hw", dict(se_ratio=2, hw=False, widths=[8, 16, 16, 32, 32, 64])),
    ("bnext_nano_hw", dict(img_size=32, in_channels=3, num_classes=100, stem_stride=2)),
    ("cnv_w1a1", dict(in_channels=1, img_size=28, weight_bits=2, act_bits=2, in_bits=8)),
], ids=["bnext", "bnext_input", "cnv"])
def test_valid_overrides_still_resolve(model, overrides):
    cfg = resolve_config(model, **overrides)
    assert all(getattr(cfg, k) == (tuple(v) if isinstance(v, list) else v)
               for k, v in overrides.items())


def test_every_ranged_field_is_a_field_of_some_model():
    import dataclasses

    from bnn_brevitas.models import get_spec

    fields = {f.name for m in list_models() for f in dataclasses.fields(get_spec(m).config)}
    assert set(FIELD_RANGES) <= fields


@pytest.mark.parametrize("value, message", [
    ("se_ratio=-1", "se_ratio: expected an integer ≥ 1, got -1"),
    ("hw=maybe", "hw: expected true or false, got 'maybe'"),
    ("widths=[8, 0]", "widths: every entry must be ≥ 1"),
])
def test_the_metrics_cli_refuses_them_with_exit_2(monkeypatch, caplog, value, message):
    monkeypatch.setattr(bnn_brevitas.metrics, "setup_logging", lambda verbose=False: None)
    assert bnn_brevitas.metrics.main(["--model", "bnext_nano_hw", "--set", value]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0]
