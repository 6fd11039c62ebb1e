# SPDX-License-Identifier: BSD-3-Clause
"""The model registry and the BNext / CNV networks."""

from __future__ import annotations

import pytest
import torch

import bnn_brevitas as bb
from bnn_brevitas.models.bnext import BNext

SMALL = ["bnext_nano", "bnext_nano_hw", "bnext_micro", "bnext_micro_hw", "cnv_w1a1"]


def test_registry_lists_every_family_member():
    names = bb.list_models()
    for size in ("t", "s", "m", "l", "18", "nano", "micro"):
        assert f"bnext_{size}" in names and f"bnext_{size}_hw" in names
    assert "cnv_w1a1" in names
    assert bb.list_models(hw=True) == sorted(n for n in names if n.endswith("_hw") or n == "cnv_w1a1")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(bb.UnknownNameError, match=r"unknown model 'bnext_xl'; valid: bnext_18, "):
        bb.create_model("bnext_xl")


def test_unknown_override_lists_valid_fields():
    with pytest.raises(bb.ConfigError, match=r"unknown override\(s\) \['depth'\].*valid: widths"):
        bb.create_model("bnext_nano", depth=3)


@pytest.mark.parametrize("override,msg", [
    (dict(trunk_bits=1), "trunk_bits must be an integer in \\[2, 8\\]"),
    (dict(binary_pad="reflect"), "binary_pad must be one of"),
    (dict(widths=(16, 32, 48)), "must stay equal or double"),
])
def test_bad_override_values_are_rejected(override, msg):
    with pytest.raises((bb.ConfigError, ValueError), match=msg):
        bb.create_model("bnext_nano", **override)


def test_cnv_rejects_unsupported_size():
    with pytest.raises(bb.ConfigError, match="CNV supports img_size 28, 30 or 32"):
        bb.create_model("cnv_w1a1", img_size=24)


@pytest.mark.parametrize("name", SMALL + ["cnv_w1a1:28"])
def test_forward_backward_small_models(name):
    name, _, size = name.partition(":")
    kw = dict(in_channels=1, img_size=28) if size else {}
    model = bb.create_model(name, **kw).train()
    x = torch.rand(4, *model.cfg.input_shape)
    y = model(x)
    assert y.shape == (4, model.cfg.num_classes) and torch.isfinite(y).all()
    y.logsumexp(-1).mean().backward()
    convs = [m for m in model.modules() if getattr(m, "expected_weight_bits", None) == 1]
    assert convs and all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in convs)


def test_wrong_input_shape_is_a_clear_error():
    model = bb.create_model("bnext_nano_hw")
    with pytest.raises(bb.UserError, match=r"expected an input batch of shape \(N, 1, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))


def test_bnext_layout_follows_the_official_rules():
    m = bb.create_model("bnext_t")
    strides = [b.conv3x3.stride for b in m.blocks]
    elm = [b.conv3x3.elm for b in m.blocks]
    branches = [len(b.conv1x1) for b in m.blocks]
    # widths 64, 128×2, 256×2, 512×6, 1024×2 after the stem
    assert strides == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert elm == [i % 2 == 0 for i in range(1, 14)]
    assert branches == [2, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


def test_ablation_switches_remove_their_parts():
    m = bb.create_model("bnext_nano", elm_attention=False, infor_recoupling=False)
    procs = [p for p in m.modules() if type(p).__name__ == "Processor"]
    assert all(not p.elm and p.se is None and p.norm2 is None for p in procs)


def test_hw_mode_shares_one_trunk_quantizer_per_resolution():
    m = bb.create_model("bnext_nano_hw")
    assert isinstance(m, BNext) and len(m.trunks) == 3  # 28², 14², 7²
    procs = [p for p in m.modules() if type(p).__name__ == "Processor"]
    assert {id(p.trunk) for p in procs} <= {id(t) for t in m.trunks}
    assert all(p.minus_one_pad == (p.kernel == 3) for p in procs)
    assert all(p.act2.nonneg for p in procs)


def test_hw_prelu_slopes_are_clamped_nonnegative():
    m = bb.create_model("bnext_nano_hw")
    act = m.blocks[0].conv3x3.act2
    with torch.no_grad():
        act.weight.fill_(-0.5)
    c = act.weight.numel()
    assert torch.equal(act(-torch.ones(1, c, 1, 1)), torch.zeros(1, c, 1, 1))
    assert torch.equal(act(torch.ones(1, c, 1, 1)), torch.ones(1, c, 1, 1))
