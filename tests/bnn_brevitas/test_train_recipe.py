# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/train/recipe.py, distill.py, state.py: the recipe's parts, value by value."""

from __future__ import annotations

import math

import pytest
import torch
from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling

import bnn_brevitas as bb
from bnn_brevitas.train import distill, recipe, state

TINY = dict(widths=(8, 16, 32, 32))


def _group_of(groups, model):
    where = {}
    for gi, g in enumerate(groups):
        for p in g["params"]:
            assert id(p) not in where, "parameter in two groups"
            where[id(p)] = gi
    named = dict(model.named_parameters())
    return {n: where[id(p)] for n, p in named.items()}


def test_param_groups_follow_bnext_hw():
    model = bb.create_model("bnext_nano_hw", **TINY)
    groups = recipe.param_groups(model, weight_decay=1e-3, conv_weight_decay=1e-8)
    assert [g["weight_decay"] for g in groups] == [1e-8, 1e-3]
    of = _group_of(groups, model)
    assert len(of) == len(list(model.parameters()))
    low = {n for n, g in of.items() if g == 0}
    binary = [n for n in of if ".binary_conv." in n]
    assert binary and set(binary) <= low
    assert "stem.conv.weight" in low and "blocks.0.conv3x3.se.fc1.weight" in low
    scales = [n for n, m in model.named_modules() if isinstance(m, ParameterFromRuntimeStatsScaling)]
    assert scales and all(f"{s}.value" in low for s in scales)
    for n in ("stem.bn.weight", "stem.bn.bias", "blocks.0.conv3x3.act2.weight",
              "blocks.0.conv3x3.move.bias",  # (1, C, 1, 1): a bias, decayed despite being 4-D
              "blocks.0.conv3x3.se.bias1.bias", "head.fc.weight"):
        assert of[n] == 1, n


def test_param_groups_of_faithful_bnext_and_cnv():
    model = bb.create_model("bnext_nano", **TINY)
    of = _group_of(recipe.param_groups(model, 1e-3, 0.0), model)
    assert of["blocks.0.conv3x3.se.alpha"] == 1 and of["blocks.0.conv3x3.se.fc1.bias"] == 1
    assert of["blocks.0.conv3x3.se.fc1.weight"] == 0 and of["head.fc.bias"] == 1
    cnv = bb.create_model("cnv_w1a1")
    of = _group_of(recipe.param_groups(cnv, 1e-3, 0.0), cnv)
    conv_w = [n for n, p in cnv.named_parameters() if p.dim() == 4]
    assert conv_w and all(of[n] == 0 for n in conv_w)
    assert all(of[n] == 1 for n, p in cnv.named_parameters() if p.dim() == 2)  # FC weights


def test_warmup_cosine_values_per_step():
    s = recipe.WarmupCosine(total_steps=100, warmup_steps=10, lr=1e-3, warmup_lr=1e-5,
                            min_lr=1e-7)
    assert s.lr_at(0) == pytest.approx(1e-5)
    assert s.lr_at(5) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert s.lr_at(10) == pytest.approx(1e-3)
    assert s.lr_at(55) == pytest.approx(1e-7 + 0.5 * (1e-3 - 1e-7))  # half-way: cos(π/2) = 0
    assert s.lr_at(100) == pytest.approx(1e-7) and s.lr_at(150) == pytest.approx(1e-7)
    assert s.lr_at(32) == pytest.approx(1e-7 + 0.5 * (1e-3 - 1e-7) * (1 + math.cos(math.pi * 22 / 90)))


def test_scheduler_steps_the_optimizer_per_iteration():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [p]}, {"params": []}], lr=1e-3)
    sched = recipe.build_scheduler(opt, total_steps=20, warmup_steps=4, lr=1e-3, warmup_lr=0.0,
                                   min_lr=0.0)
    seen = []
    for _ in range(20):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[:5] == pytest.approx([0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert seen[12] == pytest.approx(0.5e-3)  # (12 - 4) / 16 = half-way down the cosine
    assert opt.param_groups[1]["lr"] == opt.param_groups[0]["lr"]
    state_dict = sched.state_dict()
    assert state_dict["last_epoch"] == 20 and state_dict["lr_lambdas"][0]["total_steps"] == 20


def test_binarization_temperature_schedule():
    total, at = 1000, 0.3
    taus = [recipe.binarization_temperature(t, total, at) for t in range(total)]
    assert taus[0] == 1.0
    assert taus[150] == pytest.approx(math.sqrt(1e-7))  # half-way to t_b = 300
    assert all(a > b for a, b in zip(taus[:299], taus[1:300]))
    assert taus[299] > 0.0 and taus[300] == 0.0 and set(taus[300:]) == {0.0}
    assert recipe.binarization_temperature(0, total, at, progressive=False) == 0.0


def test_binarization_schedule_equals_bnext_per_epoch_decay():
    # one step per epoch, 512 epochs: τ = 0.9^epoch until epoch 153, then exactly 0
    for epoch in (1, 10, 50, 100, 152):
        tau = recipe.binarization_temperature(epoch, 512, 153 / 512)
        assert tau == pytest.approx(0.9 ** epoch, rel=0.02)
    assert recipe.binarization_temperature(153, 512, 153 / 512) == 0.0


def test_temperature_reaches_the_model_and_eval_is_exactly_binary():
    from bnn_brevitas.quant import ProgressiveBinaryQuant, set_binarization_temperature

    model = bb.create_model("bnext_nano_hw", **TINY).train()
    assert set_binarization_temperature(model, 0.25) == 8
    conv = model.blocks[0].conv3x3.binary_conv
    w_soft = conv.quant_weight().value
    assert not set(w_soft.unique().tolist()) <= {-1.0, 1.0}
    model.eval()
    assert set(conv.quant_weight().value.unique().tolist()) <= {-1.0, 1.0}
    taus = {float(m.temperature) for m in model.modules() if isinstance(m, ProgressiveBinaryQuant)}
    assert taus == {0.25}


def test_kd_loss_on_hand_computed_logits():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])  # softmax = (3/4, 1/4)
    by_hand = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(distill.kd_loss(student, teacher, 1.0)) == pytest.approx(by_hand, rel=1e-6)
    p = math.sqrt(3) / (math.sqrt(3) + 1)  # softmax(teacher / 2)
    by_hand_t2 = 4 * (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))
    assert float(distill.kd_loss(student, teacher, 2.0)) == pytest.approx(by_hand_t2, rel=1e-6)
    assert float(distill.kd_loss(teacher, teacher, 3.0)) == pytest.approx(0.0, abs=1e-7)


def test_training_loss_mixes_kd_and_labels_by_alpha():
    torch.manual_seed(1)
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    y, y2 = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 4, 4])
    ce = torch.nn.functional.cross_entropy(s, y)
    kd = distill.kd_loss(s, t, 2.0)
    assert torch.equal(distill.training_loss(s, y, None, 2.0, 1.0), ce)
    assert distill.training_loss(s, y, t, 2.0, 1.0) == distill.training_loss(s, y2, t, 2.0, 1.0)
    assert float(distill.training_loss(s, y, t, 2.0, 0.0)) == pytest.approx(float(ce))
    assert float(distill.training_loss(s, y, t, 2.0, 0.25)) == pytest.approx(
        float(0.25 * kd + 0.75 * ce))


def test_gradient_clipping_to_the_global_norm():
    model = torch.nn.Linear(3, 4)
    model.weight.grad = torch.full((4, 3), 2.0)
    model.bias.grad = torch.zeros(4)
    norm = math.sqrt(12 * 4.0)
    assert recipe.clip_gradients(model, 5.0) == pytest.approx(norm)
    assert float(model.weight.grad.norm()) == pytest.approx(5.0, rel=1e-5)
    model.weight.grad = torch.full((4, 3), 2.0)
    assert recipe.clip_gradients(model, 0.0) == pytest.approx(norm)
    assert float(model.weight.grad.norm()) == pytest.approx(norm)


def test_quantizer_statistics_survive_a_checkpoint_mid_collection(tmp_path):
    """Brevitas' load_state_dict ends statistics collection; the saved state undoes that."""
    from bnn_brevitas.checkpoint import save_checkpoint

    model = bb.create_model("bnext_nano_hw", **TINY).train()
    for _ in range(3):
        model(torch.rand(4, 1, 28, 28))
    saved = state.quant_stats_state(model)
    counters = {s["counter"] for s in saved.values()}  # shared trunk quantizers count per call
    assert 3 in counters and min(counters) < 30
    save_checkpoint(tmp_path / "c.pt", model, quant_stats=saved)
    ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
    again = bb.create_model("bnext_nano_hw", **TINY).train()
    again.load_state_dict(ckpt["state_dict"])
    scales = dict((n, m) for n, m in again.named_modules()
                  if isinstance(m, ParameterFromRuntimeStatsScaling))
    assert {m.counter for m in scales.values()} == {31}  # Brevitas: collection over
    state.load_quant_stats_state(again, ckpt["extra"]["quant_stats"])
    assert {n: m.counter for n, m in scales.items()} == {n: s["counter"] for n, s in saved.items()}
    torch.manual_seed(7)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(model(x), again(x))


def test_stop_flag_turns_signals_into_a_request():
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    flag = state.StopFlag().install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.requested and flag.exit_code() == 143
    finally:
        flag.uninstall()
    assert signal.getsignal(signal.SIGTERM) is before
