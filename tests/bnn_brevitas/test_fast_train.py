# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/fast_train.py: the fast training path is Brevitas, bit for bit.

Two copies of a small model built from one seed, one switched to the fast path, train side by
side on the same batches: outputs, losses, every gradient and every parameter after every
optimizer step must be ``torch.equal``, through the statistics phase of the activation scales
and after it, and the fast-trained model exports to the same QONNX graph.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling

import bnn_brevitas as bb
from bnn_brevitas import fast_train as ft
from bnn_brevitas.quant import set_binarization_temperature
from bnn_brevitas.train.recipe import build_optimizer, clip_gradients

#: stride 1 and 2 modules, ELM and FFN, one and two 1×1 branches, three trunk levels
SMALL = {"widths": (4, 8, 16, 16), "img_size": 8, "num_classes": 10}
CASES = {"bnext_nano_hw": SMALL, "bnext_nano": SMALL,
         "cnv_w1a1": {"in_channels": 1, "img_size": 28}}


def _pair(name: str = "bnext_nano_hw", kernels="eager"):
    """(reference, fast) models with equal weights, and an AdamW for each."""
    out = []
    for fast in (False, True):
        torch.manual_seed(0)
        model = bb.create_model(name, **CASES[name])
        if fast:
            assert ft.enable_fast_train(model, kernels) > 0
        out.append((model, build_optimizer(model, 2e-3, 1e-3, 1e-8)))
    return out


@pytest.fixture(scope="module")
def compiled():
    """The compiled kernels for every tensor size (skipped where inductor cannot build)."""
    k = ft.resolve_kernels("auto")
    if k.name != "compiled":
        pytest.skip("torch.compile (inductor) is not available here")
    every = copy.copy(k)
    every.MIN_NUMEL = 0
    return every


def _finish_statistics(model: torch.nn.Module) -> None:
    """End the runtime-statistics phase of every activation scale now (as step 31 would)."""
    for m in model.modules():
        if isinstance(m, ParameterFromRuntimeStatsScaling):
            m.init_scale()


def _step(model, opt, x, y):
    model.train()
    out = model(x)
    loss = F.cross_entropy(out, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    clip_gradients(model, 5.0)
    opt.step()
    return out.detach(), loss.detach(), grads


def _assert_same_training(pair, steps: int, batch: int = 6, seed: int = 1):
    (ref, ref_opt), (fast, fast_opt) = pair
    g = torch.Generator().manual_seed(seed)
    shape = ref.cfg.input_shape
    for i in range(steps):
        x = torch.randint(0, 256, (batch, *shape), generator=g).float() / 255.0
        y = torch.randint(0, ref.cfg.num_classes, (batch,), generator=g)
        out_r, loss_r, grad_r = _step(ref, ref_opt, x, y)
        out_f, loss_f, grad_f = _step(fast, fast_opt, x, y)
        assert torch.equal(out_r, out_f), f"step {i}: outputs differ"
        assert torch.equal(loss_r, loss_f), f"step {i}: {float(loss_r)} != {float(loss_f)}"
        assert grad_r.keys() == grad_f.keys()
        bad = [n for n in grad_r if not torch.equal(grad_r[n], grad_f[n])]
        assert not bad, f"step {i}: gradients differ for {bad[:5]}"
    sd_r, sd_f = ref.state_dict(), fast.state_dict()
    assert list(sd_r) == list(sd_f)
    assert all(torch.equal(sd_r[k], sd_f[k]) for k in sd_r)


def test_every_quant_layer_of_the_default_model_is_switched():
    model = bb.create_model("bnext_nano_hw")
    n = ft.enable_fast_train(model)
    layers = [m for m in model.modules() if type(m).__name__ in
              ("QuantIdentity", "QuantReLU", "QuantConv2d", "QuantLinear", "PReLU")]
    assert n == len(layers) and ft.is_fast_train(model)
    assert ft.enable_fast_train(model) == 0  # idempotent
    assert ft.disable_fast_train(model) == n and not ft.is_fast_train(model)
    assert all("forward" not in m.__dict__ for m in model.modules())


@pytest.mark.parametrize("name", list(CASES))
def test_training_steps_are_bit_identical(name):
    pair = _pair(name)
    _assert_same_training(pair, steps=1, batch=4)  # statistics phase: Brevitas on both sides
    for model, _ in pair:
        _finish_statistics(model)
    _assert_same_training(pair, steps=2, seed=2)  # learned scales: the fused functions


def test_compiled_kernels_are_bit_identical(compiled):
    assert compiled.self_check()
    pair = _pair(kernels=compiled)
    for model, _ in pair:
        _finish_statistics(model)
    _assert_same_training(pair, steps=2)


def test_no_quantize_and_reloaded_quantizers_match():
    from bnn_brevitas.train.distill import disable_quantization

    pair = _pair()
    for model, _ in pair:
        disable_quantization(model)
    _assert_same_training(pair, steps=1)
    pair = _pair()
    _assert_same_training(pair, steps=1)
    state = pair[0][0].state_dict()
    for model, _ in pair:  # Brevitas re-creates every quantizer here
        model.load_state_dict(state)
    _assert_same_training(pair, steps=2, seed=4)


def test_progressive_binarization_falls_back_and_matches():
    pair = _pair()
    for model, _ in pair:
        _finish_statistics(model)
        set_binarization_temperature(model, 0.3)
    _assert_same_training(pair, steps=1)
    for model, _ in pair:
        set_binarization_temperature(model, 0.0)
    _assert_same_training(pair, steps=1, seed=3)


def test_eval_mode_and_quant_tensor_layers_use_brevitas():
    from brevitas.quant_tensor import QuantTensor

    act = bb.quant.binary_act(return_quant_tensor=True)
    assert ft.enable_fast_train(act) == 0  # returns a QuantTensor: left alone
    (ref, _), (fast, _) = _pair()
    for model in (ref, fast):
        _finish_statistics(model)
        model.eval()
    x = torch.rand(3, *ref.cfg.input_shape)
    with torch.no_grad():
        assert torch.equal(ref(x), fast(x))
    assert isinstance(fast.stem.conv.quant_weight(), QuantTensor)


def test_switched_model_deep_copies():
    (_, _), (fast, _) = _pair()
    clone = copy.deepcopy(fast)  # (Brevitas models cannot be pickled, switched or not)
    assert ft.is_fast_train(clone)
    assert clone.stem.conv.forward.args[0] is clone.stem.conv
    x = torch.rand(2, *fast.cfg.input_shape)
    assert torch.equal(clone(x), fast(x))


def test_fast_trained_model_exports_the_same_qonnx_graph(tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from bnn_brevitas import export

    pair = _pair()
    for model, _ in pair:
        _finish_statistics(model)
    _assert_same_training(pair, steps=2)
    graphs = []
    for (model, _), tag in zip(pair, ("ref", "fast")):
        rep = export.export_checked(model, tmp_path / f"{tag}.onnx", samples=1)
        assert rep.integer_exact and rep.top1_agree
        mw = ModelWrapper(str(tmp_path / f"{tag}.onnx"))
        graphs.append(mw)
    ref, fast = graphs
    assert [n.op_type for n in ref.graph.node] == [n.op_type for n in fast.graph.node]
    for a, b in zip(ref.graph.node, fast.graph.node):
        if a.op_type in ("Quant", "BipolarQuant"):
            for ia, ib in zip(a.input[1:], b.input[1:]):  # scale, zero point, bit width
                assert np.array_equal(ref.get_initializer(ia), fast.get_initializer(ib))
    inits_r = {i.name: i for i in ref.graph.initializer}
    inits_f = {i.name: i for i in fast.graph.initializer}
    assert inits_r.keys() == inits_f.keys()
    assert all(inits_r[k] == inits_f[k] for k in inits_r)


def test_speed_report_compares_the_two_paths_on_equal_losses():
    from bnn_brevitas import speed

    rep = speed.measure("bnext_nano_hw", SMALL, batch=4, threads=1, steps=1, rounds=2,
                        warmup=2, kernels="eager")
    assert rep.losses_identical and rep.kernels == "eager" and rep.ratio > 0
    assert len(rep.img_per_s["fast"]) == len(rep.round_ratios) == 2
    assert {"cpu", "torch", "date", "torch_threads"} <= set(rep.machine)
    json.dumps(rep.to_dict())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_bench_script_fails_cleanly_without_cuda(tmp_path, capfd):
    spec = importlib.util.spec_from_file_location(
        "bench_train", Path(__file__).resolve().parents[2] / "scripts" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--device", "cuda", "--out", str(tmp_path / "b.json")]) == 2
    assert "CUDA is not available" in capfd.readouterr().err
    assert not (tmp_path / "b.json").exists()
