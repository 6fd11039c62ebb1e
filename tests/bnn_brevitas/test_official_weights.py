# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/official.py against the official model definition, independently of our models.

The reference is ``scripts/gen_bnext_official_keys.py``: a plain-torch re-implementation of
upstream ``src/bnext.py`` (hpi-xnor/BNext @ dfcf347) whose state-dict names and shapes are the
committed fixture ``fixtures/bnext_official_keys.json.gz``. Random official state dicts are
built from that fixture (seeded) and loaded both into the upstream tree and into our model.

Exactness. With the stem's and head's quantizers disabled (upstream has none there) our
faithful model computes bit for bit what the upstream tree computes. (Upstream's eval-mode
sign is ``(sign(x) − c) + c`` with c = clamp(x, ±1.5); in float32 that is exactly ±1 for every
c of the same sign, checked exhaustively, so the binary convolutions see the same ±1 inputs.)
With them enabled, the stem and head differ only by their 8-bit quantization (per module).
"""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling

from bnn_brevitas import metrics
from bnn_brevitas.checkpoint import load_model, read_checkpoint
from bnn_brevitas.errors import ConfigError, InternalError, UserError
from bnn_brevitas.models import create_model
from bnn_brevitas.models.blocks import SqueezeExcite
from bnn_brevitas.official import (
    INPUT_NORMS,
    calibrate_scales,
    fold_input_norm,
    init_hw_from_faithful,
    load_official,
    main,
    official_rules,
    read_official,
    unwrap_state_dict,
)

ROOT = Path(__file__).resolve().parents[2]
SIZES = {"bnext_t": "tiny", "bnext_s": "small", "bnext_m": "middle", "bnext_l": "large"}


def _generator_module():
    spec = importlib.util.spec_from_file_location(
        "gen_bnext_official_keys", ROOT / "scripts" / "gen_bnext_official_keys.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator_module()
FIXTURE = GEN.load_fixture(Path(__file__).parent / "fixtures" / "bnext_official_keys.json.gz")


def random_official(size: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded official state dict with the fixture's names and shapes and plausible values."""
    g = torch.Generator().manual_seed(seed)

    def uni(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    sd = {}
    for name, shape, dtype, _ in FIXTURE["sizes"][size]:
        leaf = name.rsplit(".", 1)[-1]
        bn = ".norm" in name or ".bn1." in name
        if dtype == "int64":
            v = torch.randint(0, 10**6, shape, generator=g)
        elif leaf == "temperature":
            v = torch.full(shape, 0.9 ** 512)  # a finished run: upstream evaluates sign(w)
        elif leaf == "running_var":
            v = uni(shape, 0.5, 2.0)
        elif leaf == "running_mean" or (bn and leaf == "bias"):
            v = uni(shape, -0.3, 0.3)
        elif bn:
            v = uni(shape, 0.5, 1.5)
        elif leaf == "scale":
            v = uni(shape, -0.2, 1.2)  # outside [0, 1] too: upstream FFN_1x1 clamps in eval
        elif "activation" in name or name.endswith("prelu.weight"):
            v = uni(shape, -0.25, 0.5)
        elif leaf == "bias":
            v = uni(shape, -0.2, 0.2)
        else:  # conv / fc weights
            fan_in = math.prod(shape[1:]) or 1
            v = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        sd[name] = v.to(getattr(torch, dtype))
    return sd


def _disable_quant(module: torch.nn.Module) -> None:
    from brevitas.proxy.quant_proxy import QuantProxyFromInjector

    for m in module.modules():
        if isinstance(m, QuantProxyFromInjector):
            m.disable_quant = True


def with_batch_statistics(sd: dict[str, torch.Tensor], size: str) -> dict[str, torch.Tensor]:
    """``sd`` with the BN statistics of one train-mode pass of the upstream tree (seeded images
    at 64²), so that activations keep trained-network magnitudes instead of exploding through
    the ELM products; the α that upstream's train-mode forward clamps are restored."""
    ref = GEN.BNext(1000, size)
    ref.load_state_dict(sd)
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: one pass = that batch's statistics
    with torch.no_grad():
        ref.train()(torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    out = {k: v.clone() for k, v in ref.state_dict().items()}
    out.update({k: v for k, v in sd.items() if k.endswith(".scale")})
    return out


@pytest.fixture(scope="module")
def official_t():
    return with_batch_statistics(random_official("tiny"), "tiny")


@pytest.fixture(scope="module")
def upstream_t(official_t):
    ref = GEN.BNext(1000, "tiny")
    ref.load_state_dict(official_t, strict=True)
    return ref.eval()


@pytest.fixture(scope="module")
def ours_t64(official_t):
    model = create_model("bnext_t", img_size=64)
    load_official(model, official_t, input_norm="none")
    return model.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# ------------------------------------------------------------------- fixture and key mapping


def test_fixture_is_what_the_generator_derives_from_upstream():
    assert FIXTURE == GEN.build_fixture()
    assert FIXTURE["upstream"]["commit"] == "dfcf347a30e3bc08606b8cad2c8d4a329d5a5b28"
    assert FIXTURE["upstream"]["file"] == "src/bnext.py"


@pytest.mark.parametrize("name", [
    "bnext_t", "bnext_s", "bnext_m", pytest.param("bnext_l", marks=pytest.mark.slow)])
def test_the_loader_maps_exactly_the_official_keys(name):
    rules = official_rules(create_model(name))
    assert {r.official: list(r.shape) for r in rules} == \
        {k: shape for k, shape, _, _ in FIXTURE["sizes"][SIZES[name]]}
    assert len(rules) == len(FIXTURE["sizes"][SIZES[name]])


def test_every_tensor_is_mapped_as_documented(official_t, ours_t64):
    ours = ours_t64.state_dict()
    rules = official_rules(ours_t64)
    dropped = [r.official for r in rules if r.ours is None]
    assert len(rules) - len(dropped) == len(ours) == 604 and len(dropped) == 57
    assert all(k.endswith(("prelu.weight", "activation1.weight", "binary_activation.temperature"))
               for k in dropped)
    for r in rules:
        if r.ours is None:
            continue
        v = official_t[r.official]
        if r.kind == "temperature":
            assert float(ours[r.ours]) == 0.0 and ours[r.ours].shape == ()  # τ < 1e-7: sign
        elif r.kind == "alpha01":
            assert ".FFN" in r.official and torch.equal(ours[r.ours], v.clamp(0, 1))
        else:
            assert torch.equal(ours[r.ours], v), r.official


# ------------------------------------------------------------------- equal outputs


def test_outputs_equal_the_upstream_tree(upstream_t, ours_t64):
    model = copy.deepcopy(ours_t64)
    _disable_quant(model.stem)
    _disable_quant(model.head)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y, ref = model(x), upstream_t(x)
        s, s_ref = model.stem(x), upstream_t.feature[0](x)
    assert torch.equal(s, s_ref) and torch.equal(y, ref)
    assert 1e-2 < float(ref.abs().max()) < 1e3  # trained-network magnitudes, not overflow


def test_normalization_is_folded_into_the_stem(upstream_t, ours_t64):
    mean, std = INPUT_NORMS["imagenet"]
    stem = copy.deepcopy(ours_t64.stem)
    fold_input_norm(SimpleNamespace(stem=stem), mean, std)
    _disable_quant(stem)
    x = torch.randint(0, 256, (2, 3, 64, 64)).float() / 255.0
    xn = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        y, ref = stem(x), upstream_t.feature[0](xn)
    assert torch.allclose(y[:, :, 1:, 1:], ref[:, :, 1:, 1:], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(y[:, :, :1], ref[:, :, :1], atol=1e-3)  # the documented border


def test_quantized_stem_and_head_differ_only_by_8_bit_rounding(upstream_t, ours_t64):
    model = copy.deepcopy(ours_t64)
    x = torch.randint(0, 256, (2, 3, 64, 64)).float() / 255.0
    assert calibrate_scales(model, x) == 1  # the head's GAP quantizer, not in the file
    with torch.no_grad():
        assert _rel(model.stem(x), upstream_t.feature[0](x)) < 1e-2
        feats = x
        for block in upstream_t.feature:  # the trunk output the head's scale was set on
            feats = block(feats)
        ref_head = upstream_t.fc(upstream_t.prelu(feats).mean((2, 3)))
        assert _rel(model.head(feats), ref_head) < 2e-2


# ------------------------------------------------------------------- errors and formats


def _meta(size: str) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta", dtype=getattr(torch, d))
            for k, s, d, _ in FIXTURE["sizes"][size]}


@pytest.fixture(scope="module")
def bnext_t_model():
    return create_model("bnext_t")


def test_unknown_missing_and_misshaped_keys_are_named(bnext_t_model):
    sd = _meta("tiny")
    with pytest.raises(UserError, match=r"unknown key\(s\) 'feature\.1\.Attention\.extra'"):
        load_official(bnext_t_model, {**sd, "feature.1.Attention.extra": torch.zeros(1)})
    del sd["fc.bias"]
    with pytest.raises(UserError, match=r"do not match bnext_t: missing key\(s\) 'fc\.bias'"):
        load_official(bnext_t_model, sd)
    sd["fc.bias"] = torch.zeros(1000)
    sd["fc.weight"] = torch.zeros(10, 1024)
    with pytest.raises(UserError, match=r"key 'fc\.weight' has shape \(10, 1024\), bnext_t "
                                        r"expects \(1000, 1024\)"):
        load_official(bnext_t_model, sd)


def test_a_file_of_another_size_is_named(bnext_t_model):
    with pytest.raises(UserError, match=r"the file looks like bnext_m"):
        load_official(bnext_t_model, _meta("middle"))


def test_wrong_models_and_options_are_config_errors(bnext_t_model):
    with pytest.raises(ConfigError, match=r"faithful model .* bnext_t_hw has hw=True"):
        load_official(create_model("bnext_t_hw", widths=(8, 16, 32, 32)), {})
    with pytest.raises(ConfigError, match=r"bnext_t has binary_pad='minus_one' \(use 'auto' or"):
        load_official(create_model("bnext_t", widths=(8, 16, 32, 32), binary_pad="minus_one"), {})
    with pytest.raises(ConfigError, match=r"input_norm 'zscore' is unknown; valid: imagenet, none"):
        load_official(bnext_t_model, {}, input_norm="zscore")
    with pytest.raises(ConfigError, match=r"init_hw_from_faithful needs an hw-mode BNext"):
        init_hw_from_faithful(bnext_t_model, bnext_t_model)


def test_a_model_tensor_without_official_counterpart_is_an_internal_error():
    model = create_model("bnext_nano")
    model.head.register_buffer("novel", torch.zeros(1))
    with pytest.raises(InternalError, match=r"'head\.novel' .* out of date with the model"):
        official_rules(model)


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "model", "state_dict_and_model"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_wrappers_and_the_ddp_prefix_are_unwrapped(wrap, prefix):
    sd = {"fc.weight": torch.ones(2, 2), "feature.0.bn1.num_batches_tracked": torch.tensor(3)}
    inner = {prefix + k: v for k, v in sd.items()}
    obj = {"bare": inner, "state_dict": {"epoch": 5, "state_dict": inner, "optimizer": {}},
           "model": {"model": inner}, "state_dict_and_model": {"state_dict": inner,
                                                               "model": {"x": 1}}}[wrap]
    assert unwrap_state_dict(obj, "f") == sd


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"official weights '.*nope\.pth' do not exist"):
        read_official(tmp_path / "nope.pth")
    torch.save({"state_dict": {"a": torch.ones(1)}, "cfg": SimpleNamespace(x=1)}, tmp_path / "o.pt")
    with pytest.raises(UserError, match=r"cannot read .* with torch\.load\(weights_only=True\)"):
        read_official(tmp_path / "o.pt")
    torch.save({"a": [1, 2]}, tmp_path / "l.pt")
    with pytest.raises(UserError, match=r"entry 'a' is a list, not a tensor"):
        read_official(tmp_path / "l.pt")
    torch.save({"module.a": torch.ones(1), "a": torch.ones(1)}, tmp_path / "c.pt")
    with pytest.raises(UserError, match=r"key 'a' clashes with 'module\.a' once"):
        read_official(tmp_path / "c.pt")


# ------------------------------------------------------------------- conversion CLI, metrics


@pytest.fixture(scope="module")
def converted(tmp_path_factory, official_t):
    """The official format on disk (DDP prefix, training extras), converted by the CLI."""
    d = tmp_path_factory.mktemp("official")
    src = d / "checkpoint.pth.tar"
    torch.save({"epoch": 511, "state_dict": {f"module.{k}": v for k, v in official_t.items()},
                "best_top1_acc": torch.tensor([72.4]), "test_top1": [71.0, 72.4], "temp": [0.9],
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-7, "params": [0]}]}}, src)
    out = d / "bnext_t.pt"
    assert main([str(src), "--model", "bnext_t", "-o", str(out), "--calib-images", "1"]) == 0
    return src, out


def test_cli_writes_a_project_checkpoint(converted, official_t):
    src, out = converted
    extra = read_checkpoint(out)["extra"]["official"]
    assert extra["size"] == "tiny" and extra["tensors"] == 604 and extra["dropped"] == 57
    assert extra["input_norm"] == "imagenet" and extra["calibration"]["quantizers"] == 1
    model = load_model(out)  # strict: the calibrated GAP scale is in the checkpoint
    direct = create_model("bnext_t")
    load_official(direct, official_t)  # the same tensors, ImageNet normalization folded
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in direct.state_dict().items())


def test_cli_errors_exit_2(tmp_path, caplog, monkeypatch):
    import bnn_brevitas.official

    monkeypatch.setattr(bnn_brevitas.official, "setup_logging", lambda verbose=False: None)
    assert main([str(tmp_path / "x.pth"), "--model", "bnext_t", "-o", str(tmp_path / "o")]) == 2
    assert "do not exist" in caplog.text
    assert main([str(tmp_path / "x.pth"), "--model", "bnext_18", "-o", str(tmp_path / "o")]) == 2
    assert "unknown official BNext model 'bnext_18'; valid: bnext_l, bnext_l_hw" in caplog.text


def test_metrics_are_unchanged_by_loading(converted):
    """The counts ``python -m bnn_brevitas.metrics --model bnext_t`` prints (test_metrics.py
    pins its BOPs) hold for the loaded model, and its parameters are upstream's minus the
    PReLUs upstream builds but never calls, plus the head's 8-bit GAP quantizer scale."""
    model = load_model(converted[1])
    got = metrics.count_costs(model, model.cfg.input_shape)
    table = FIXTURE["sizes"]["tiny"]
    dropped = {r.official for r in official_rules(model) if r.ours is None}
    official = sum(math.prod(s) for _, s, _, kind in table if kind == "param")
    unused = sum(math.prod(s) for k, s, _, kind in table if kind == "param" and k in dropped)
    binary = sum(math.prod(s) for k, s, _, _ in table if k.endswith("binary_conv.weight"))
    scales = sum(m.value.numel() for m in model.modules()
                 if isinstance(m, ParameterFromRuntimeStatsScaling))
    assert (got.params, got.binary_params) == (official - unused + scales, binary)
    assert got.bops == 4_816_896_000 and scales == 1
    assert abs(official - 30.86e6) <= 0.01 * 30.86e6  # the reference count of test_metrics.py


# ------------------------------------------------------------------- hw mode


def test_hw_init_carries_and_derives_as_documented(ours_t64):
    hw = create_model("bnext_t_hw", img_size=64)
    rep = init_hw_from_faithful(hw, ours_t64)
    assert rep.dropped == ["head.fc.bias"] and rep.fresh_quantizers > 0
    assert len(rep.copied) + len(rep.derived) == len(hw.state_dict())
    assert len(rep.derived) == 3 * sum(isinstance(m, SqueezeExcite) for m in hw.modules())
    src, dst = ours_t64.state_dict(), hw.state_dict()
    assert all(torch.equal(dst[k], src[k]) for k in rep.copied)
    # the α-mix folded into FC₁: FC₁(GAP(α·s + (1−α)·x)) = FC₁'([GAP(s), GAP(x)])
    f, h = ours_t64.blocks[1].conv3x3.se, hw.blocks[1].conv3x3.se
    s, x = torch.randn(2, 64, 8, 8), torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        want = f.fc1((f.alpha * s + (1 - f.alpha) * x).mean((2, 3), keepdim=True))
        cat = torch.cat([s.mean((2, 3), keepdim=True), x.mean((2, 3), keepdim=True)], 1)
        got = torch.nn.functional.conv2d(cat, h.fc1.weight) + h.bias1.bias
    assert torch.allclose(got, want, atol=1e-5)
    assert calibrate_scales(hw, torch.rand(1, 3, 64, 64)) == rep.fresh_quantizers
    with torch.no_grad():
        assert torch.isfinite(hw(torch.rand(1, 3, 64, 64))).all()


@pytest.mark.slow
def test_cli_converts_to_hw_mode(converted, tmp_path):
    out = tmp_path / "bnext_t_hw.pt"
    assert main([str(converted[0]), "--model", "bnext_t_hw", "-o", str(out),
                 "--calib-images", "1"]) == 0
    assert read_checkpoint(out)["extra"]["official"]["hw_init"] is True
    load_model(out)
