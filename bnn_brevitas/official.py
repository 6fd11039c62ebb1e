# SPDX-License-Identifier: BSD-3-Clause
"""The official BNext weights (``hpi-xnor/BNext``) in the registry models: strict loading and
conversion to this toolkit's checkpoint format. Nothing is downloaded; the user passes the file.

    python -m bnn_brevitas.official BNext-T.pth.tar --model bnext_t -o checkpoints/bnext_t.pt

**Accepted files** (read with ``torch.load(weights_only=True)``): the dict the official training
script saves (``{"epoch": …, "state_dict": …, "optimizer": …}``), a dict with a ``"model"``
entry, or a bare state dict; ``"state_dict"`` wins over ``"model"``. Keys may carry DDP's
``module.`` prefix (the official files do). The names are those of upstream ``src/bnext.py``
@ ``dfcf347`` (``BNext(size="tiny"|"small"|"middle"|"large")``, ELM attention and
infor-recoupling on): ``bnext_t``/``_s``/``_m``/``_l`` here.

**Mapping** (``feature.0`` = stem, ``feature.i`` = ``blocks.{i-1}``, ``prelu``/``fc`` = head;
in a block ``Attention`` = ``conv3x3``, ``FFN``/``FFN_1``/``FFN_2`` = ``conv1x1.0``/``.0``/``.1``):

=====================================  ======================================================
official                               here
=====================================  ======================================================
``feature.0.conv1`` / ``bn1``          ``stem.conv`` / ``stem.bn`` (ImageNet normalization folded)
``….move.bias``, ``binary_conv.weight``  same names
``….norm1``, ``norm2`` (5 tensors)     same names
``….activation2`` / ``activation1``    ``act2`` / ``act1`` (``act1`` only in ELM modules)
``….se.se.1`` / ``se.se.3``            ``se.fc1`` / ``se.fc2``
``….scale``                            ``se.alpha`` (clamped to [0, 1] in the 1×1 modules,
                                       whose upstream forward clamps it in eval mode too)
``….binary_conv.temperature`` (1,)     the binary quantizer's ``temperature`` (): τ, or 0 once
                                       τ < 1e-7 (upstream's "exactly sign(w)" threshold)
``prelu``, ``fc``                      ``head.act``, ``head.fc``
dropped (never used upstream)          ``feature.0.prelu``, ``activation1`` of the FFN modules,
                                       ``binary_activation.temperature`` (sign(x/τ) = sign(x))
=====================================  ======================================================

Every official tensor is either mapped or in the dropped list, shapes are checked, and an
unknown, missing or mis-shaped key is a ``UserError`` naming it.

**Input range.** Upstream feeds ImageNet-normalized images; every registry model takes pixels in
[0, 1]. ``input_norm="imagenet"`` folds (x − mean)/std into the stem: W' = W/std per input
channel and BN's running mean μ' = μ + Σ W·mean/std. Exact except on the stem's top row and
left column, where the zero padding meets a raw 0 instead of a normalized 0 (i.e. the mean).

**What upstream does not have.** The faithful model quantizes its stem (uint8 input, 8-bit
weights) and head (8-bit GAP activations, 8-bit FC weights); the scale of the head's GAP
quantizer is not in the file, so :func:`convert` calibrates it (``calibrate_scales``) on
images from ``--calib-dir`` or, without one, on seeded random pixels (a rough scale: pass real
images for accuracy).

**hw mode** (:func:`init_hw_from_faithful`, for fine-tuning ``bnext_*_hw``). Carried over:
the stem conv + BN, every binary conv weight and temperature, ``move`` biases, BN₁, BN₂, PReLU
slopes, the SE FC₂ weight, the head PReLU and FC weight. Derived exactly: hw FC₁ acts on
[GAP(src), GAP(x)] so its weight is [W₁·α, W₁·(1−α)] (the α-mix folded in), and the SE biases
become the ``bias1``/``bias2`` modules. Start fresh: every activation quantizer scale (trunk,
activation, SE, gate, head; calibrated by ``convert``). Dropped: the head FC bias (the hw FC
has none). The function changes where hw mode differs: hard-sigmoid gate, −1 padding of the
binary 3×3 convs, PReLU slopes clamped ≥ 0, BN₂ scale clamped ≥ 1e-4, k-bit quantizers.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling
from torch import Tensor, nn

from .checkpoint import save_checkpoint
from .errors import ConfigError, InternalError, UnknownNameError, UserError
from .models import create_model, get_spec
from .models.blocks import PositiveBatchNorm2d, PReLU
from .models.bnext import BNext
from .utils import module_logger, run_cli, setup_logging, sha256_file

log = module_logger(__spec__, __name__)

#: registry name → ``size`` argument of upstream ``BNext``
OFFICIAL_SIZES = {"bnext_t": "tiny", "bnext_s": "small", "bnext_m": "middle", "bnext_l": "large"}
#: timm's IMAGENET_DEFAULT_MEAN / _STD, what the official training and evaluation normalize with
INPUT_NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "none": None,
}
#: upstream evaluates sign(w) once the temperature is below this (``HardBinaryConv``)
SIGN_TEMPERATURE = 1e-7
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class Rule:
    """One official tensor: where it goes (``ours`` None: dropped) and its expected shape."""

    official: str
    ours: str | None
    shape: tuple[int, ...]
    kind: str = "copy"  # copy | temperature | alpha01


@dataclass
class LoadReport:
    model: str
    source: str
    loaded: int
    dropped: list[str]
    max_temperature: float
    input_norm: str


def _check_faithful(model: nn.Module) -> str:
    name = getattr(model, "model_name", type(model).__name__)
    cfg = getattr(model, "cfg", None)
    if not isinstance(model, BNext) or cfg.layout != "bnext":
        raise ConfigError(f"official weights load into {', '.join(OFFICIAL_SIZES)}, not {name}")
    if cfg.hw or not (cfg.elm_attention and cfg.infor_recoupling):
        raise ConfigError(f"official weights need the faithful model with ELM attention and "
                          f"infor-recoupling; {name} has hw={cfg.hw}, elm_attention="
                          f"{cfg.elm_attention}, infor_recoupling={cfg.infor_recoupling} "
                          "(for hw mode use init_hw_from_faithful)")
    if cfg.precision().binary_pad != "zero":
        raise ConfigError(f"official weights were trained with zero padding of the binary "
                          f"convs; {name} has binary_pad={cfg.binary_pad!r} (use 'auto' or 'zero')")
    return name


def _temperature_key(prefix: str, conv: nn.Module) -> str | None:
    for n, m in conv.named_modules():
        if "temperature" in m._buffers:
            return ".".join(p for p in (prefix, n, "temperature") if p)
    return None


def _module_rules(off: str, ours: str, proc: nn.Module, shapes: dict[str, tuple[int, ...]]
                  ) -> list[Rule]:
    """The rules of one upstream Attention / FFN_3x3 / FFN_1x1 module (see the module table)."""
    ch = proc.move.bias.shape[1]

    def take(o: str, t: str, kind: str = "copy") -> Rule:
        return Rule(f"{off}.{o}", f"{ours}.{t}", shapes[f"{ours}.{t}"], kind)

    rules = [take("scale", "se.alpha", "alpha01" if proc.kernel == 1 else "copy"),
             take("move.bias", "move.bias"),
             Rule(f"{off}.binary_activation.temperature", None, (1,)),
             take("binary_conv.weight", "binary_conv.weight")]
    tkey = _temperature_key(f"{ours}.binary_conv", proc.binary_conv)
    rules.append(Rule(f"{off}.binary_conv.temperature", tkey, (1,), "temperature"))
    rules += [take(f"{bn}.{s}", f"{bn}.{s}") for bn in ("norm1", "norm2") for s in _BN]
    rules.append(take("activation1.weight", "act1.weight") if proc.elm
                 else Rule(f"{off}.activation1.weight", None, (ch,)))
    rules.append(take("activation2.weight", "act2.weight"))
    rules += [take(f"se.se.{i}.{p}", f"se.fc{j}.{p}")
              for i, j in ((1, 1), (3, 2)) for p in ("weight", "bias")]
    return rules


def official_rules(model: nn.Module) -> list[Rule]:
    """Every tensor of the upstream state dict of ``model``'s size, in upstream order.

    Raises ``InternalError`` if a tensor of ``model`` has no official counterpart (other than
    quantizer scales): the mapping is then out of date with the model code."""
    name = _check_faithful(model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    rules = [Rule("feature.0.conv1.weight", "stem.conv.weight", shapes["stem.conv.weight"])]
    rules += [Rule(f"feature.0.bn1.{s}", f"stem.bn.{s}", shapes[f"stem.bn.{s}"]) for s in _BN]
    rules.append(Rule("feature.0.prelu.weight", None, (model.cfg.widths[0],)))
    for i, block in enumerate(model.blocks, start=1):
        parts = [("Attention", "conv3x3", block.conv3x3)]
        ffn = list(block.conv1x1)
        parts += ([("FFN", "conv1x1.0", ffn[0])] if len(ffn) == 1 else
                  [(f"FFN_{j + 1}", f"conv1x1.{j}", m) for j, m in enumerate(ffn)])
        for off, ours, proc in parts:
            rules += _module_rules(f"feature.{i}.{off}", f"blocks.{i - 1}.{ours}", proc, shapes)
    rules += [Rule("prelu.weight", "head.act.weight", shapes["head.act.weight"]),
              Rule("fc.weight", "head.fc.weight", shapes["head.fc.weight"]),
              Rule("fc.bias", "head.fc.bias", shapes["head.fc.bias"])]
    covered = {r.ours for r in rules if r.ours}
    left = sorted(k for k in shapes if k not in covered and not _is_quant_scale(k))
    if left:
        raise InternalError(f"{name}: {left[0]!r} (+{len(left) - 1} more) has no official "
                            "counterpart; bnn_brevitas/official.py is out of date with the model")
    return rules


def _is_quant_scale(key: str) -> bool:
    return key.endswith(".scaling_impl.value")


def unwrap_state_dict(obj: Any, label: str) -> dict[str, Tensor]:
    """The state dict in a loaded file: ``obj["state_dict"]``, ``obj["model"]`` or ``obj``
    itself, with DDP's ``module.`` prefix removed."""
    if not isinstance(obj, Mapping):
        raise UserError(f"{label} holds a {type(obj).__name__}, not a dict with a state dict")
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    out: dict[str, Tensor] = {}
    original: dict[str, str] = {}
    for k, v in obj.items():
        if not isinstance(v, Tensor):
            raise UserError(f"{label}: entry {k!r} is a {type(v).__name__}, not a tensor "
                            "(expected a state dict, or a dict with 'state_dict' or 'model')")
        name = k.removeprefix("module.")
        if name in out:
            raise UserError(f"{label}: key {k!r} clashes with {original[name]!r} once "
                            "'module.' is removed")
        out[name], original[name] = v, k
    return out


def read_official(path: str | Path) -> dict[str, Tensor]:
    """Read an official BNext file (``torch.load(weights_only=True)``) and unwrap its state dict."""
    path = Path(path)
    label = f"official weights {str(path)!r}"
    if not path.is_file():
        raise UserError(f"{label} do not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        first = (str(e).strip().splitlines() or [""])[0]
        raise UserError(f"cannot read {label} with torch.load(weights_only=True): "
                        f"{type(e).__name__}: {first}") from e
    return unwrap_state_dict(obj, label)


def guess_model(sd: Mapping[str, Tensor]) -> str | None:
    """The official model whose stem width and block count match ``sd``, if any."""
    stem = sd.get("feature.0.conv1.weight")
    parts = [k.split(".") for k in sd if k.startswith("feature.")]
    idx = {int(p[1]) for p in parts if len(p) > 1 and p[1].isdigit()}
    if stem is None or stem.dim() != 4 or not idx:
        return None
    for name in OFFICIAL_SIZES:
        w = get_spec(name).config.widths
        if (w[0], len(w)) == (stem.shape[0], max(idx) + 1):
            return name
    return None


def _few(keys: list[str]) -> str:
    more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
    return ", ".join(repr(k) for k in keys[:3]) + more


def check_keys(sd: Mapping[str, Tensor], rules: list[Rule], name: str, label: str) -> None:
    """Raise a ``UserError`` naming the first unknown, missing or mis-shaped keys."""
    expected = {r.official: r.shape for r in rules}
    unknown = [k for k in sd if k not in expected]
    missing = [k for k in expected if k not in sd]
    if unknown or missing:
        guess = guess_model(sd)
        hint = (f"; the file looks like {guess}" if guess and guess != name else
                f"; expected the {len(expected)} keys of upstream BNext(size="
                f"{OFFICIAL_SIZES.get(name.removesuffix('_hw'), '?')!r})")
        parts = ([f"unknown key(s) {_few(unknown)}"] if unknown else []) + \
                ([f"missing key(s) {_few(missing)}"] if missing else [])
        raise UserError(f"{label} do not match {name}: {' and '.join(parts)}{hint}")
    for k, shape in expected.items():
        if tuple(sd[k].shape) != shape:
            raise UserError(f"{label}: key {k!r} has shape {tuple(sd[k].shape)}, "
                            f"{name} expects {shape}")


def fold_input_norm(model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """Make the stem take [0, 1] pixels where it took (x − mean)/std (see the module docstring)."""
    conv, bn = model.stem.conv, model.stem.bn
    if conv.bias is not None or conv.weight.shape[1] != len(mean):
        raise InternalError(f"stem conv {tuple(conv.weight.shape)} cannot fold a "
                            f"{len(mean)}-channel normalization")
    with torch.no_grad():
        m = torch.tensor(mean).view(1, -1, 1, 1)
        s = torch.tensor(std).view(1, -1, 1, 1)
        offset = (conv.weight * (m / s)).sum((1, 2, 3))  # conv(−mean/std) = −offset
        conv.weight.div_(s)
        bn.running_mean.add_(offset)


def _converted(rule: Rule, value: Tensor) -> Tensor:
    if rule.kind == "temperature":
        t = float(value.reshape(-1)[0])
        return torch.tensor(t if t >= SIGN_TEMPERATURE else 0.0)
    if rule.kind == "alpha01":
        return value.clamp(0.0, 1.0)
    return value


def load_official(model: nn.Module, source: str | Path | Mapping[str, Tensor], *,
                  input_norm: str = "imagenet") -> LoadReport:
    """Load official BNext weights (a file or its state dict) into a faithful ``bnext_*`` model.

    Args:
        model: ``create_model("bnext_t")`` (or ``_s``/``_m``/``_l``), modified in place.
        source: the official file, or a state dict (``module.`` prefixes allowed).
        input_norm: ``"imagenet"`` folds upstream's input normalization into the stem,
            ``"none"`` copies the stem as it is (for weights trained on [0, 1] inputs).

    Raises:
        UserError: unreadable file, or an unknown, missing or mis-shaped key (named).
        ConfigError: not a faithful BNext model, or an unknown ``input_norm``.
    """
    if input_norm not in INPUT_NORMS:
        raise ConfigError(f"input_norm {input_norm!r} is unknown; valid: {', '.join(INPUT_NORMS)}")
    name = _check_faithful(model)
    if isinstance(source, Mapping):
        label, sd = "official state dict", unwrap_state_dict(source, "official state dict")
    else:
        label, sd = f"official weights {str(source)!r}", read_official(source)
    rules = official_rules(model)
    check_keys(sd, rules, name, label)
    target = model.state_dict()  # shares storage with the model's parameters and buffers
    temps = [float(sd[r.official].reshape(-1)[0]) for r in rules if r.kind == "temperature"]
    with torch.no_grad():
        for r in rules:
            if r.ours is not None:
                target[r.ours].copy_(_converted(r, sd[r.official]))
    norm = INPUT_NORMS[input_norm]
    if norm is not None:
        fold_input_norm(model, *norm)
    if temps and max(temps) >= SIGN_TEMPERATURE:
        log.warning("%s: binary-weight temperature up to %.3g ≥ %g: upstream evaluates these "
                    "weights soft (clamp(w/τ)), this model evaluates sign(w)", label,
                    max(temps), SIGN_TEMPERATURE)
    dropped = [r.official for r in rules if r.ours is None]
    log.info("%s: %d tensors loaded into %s, %d unused upstream dropped, input norm %s",
             label, len(rules) - len(dropped), name, len(dropped), input_norm)
    return LoadReport(name, str(source) if not isinstance(source, Mapping) else label,
                      len(rules) - len(dropped), dropped, max(temps, default=0.0), input_norm)


# ----------------------------------------------------------------------------- hw mode


@dataclass
class HwInitReport:
    copied: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)  # SE FC₁ (α folded in), bias1, bias2
    dropped: list[str] = field(default_factory=list)  # faithful tensors with no hw place
    fresh_quantizers: int = 0  # activation-quantizer scales left to calibration / training


def _hw_value(key: str, src: Mapping[str, Tensor]) -> tuple[Tensor, list[str]] | None:
    """The faithful value of hw tensor ``key`` and the faithful keys it uses (None: not derived)."""
    base, _, leaf = key.rpartition(".se.")
    if leaf == "fc1.weight":
        w, alpha = src[f"{base}.se.fc1.weight"], src[f"{base}.se.alpha"]
        return torch.cat([w * alpha, w * (1.0 - alpha)], dim=1), [
            f"{base}.se.fc1.weight", f"{base}.se.alpha"]
    if leaf in ("bias1.bias", "bias2.bias"):
        k = f"{base}.se.fc{leaf[4]}.bias"
        return src[k].view(1, -1, 1, 1), [k]
    return None


def init_hw_from_faithful(hw_model: nn.Module, faithful: nn.Module | Mapping[str, Tensor]
                          ) -> HwInitReport:
    """Initialise ``bnext_*_hw`` from a faithful model (or its state dict) for fine-tuning.

    What carries over, what is derived and what starts fresh: see the module docstring.
    ``hw_model`` is modified in place; its quantizer scales are untouched (fresh).

    Raises:
        ConfigError: ``hw_model`` is not an hw-mode BNext.
        UserError: a tensor is missing from ``faithful``, has the wrong shape, or is left over.
    """
    cfg = getattr(hw_model, "cfg", None)
    if not isinstance(hw_model, BNext) or not cfg.hw:
        raise ConfigError(f"init_hw_from_faithful needs an hw-mode BNext (e.g. bnext_t_hw), "
                          f"not {getattr(hw_model, 'model_name', type(hw_model).__name__)}")
    src = faithful.state_dict() if isinstance(faithful, nn.Module) else dict(faithful)
    rep, used = HwInitReport(), set()
    target = hw_model.state_dict()
    with torch.no_grad():
        for key, t in target.items():
            if _is_quant_scale(key):
                continue
            derived = _hw_value(key, src) if ".se." in key else None
            if derived is None and key not in src:
                raise UserError(f"faithful weights have no {key!r} for {hw_model.model_name}")
            value, keys = derived if derived is not None else (src[key], [key])
            if tuple(value.shape) != tuple(t.shape):
                raise UserError(f"faithful key {keys[0]!r} gives shape {tuple(value.shape)}, "
                                f"{hw_model.model_name} expects {tuple(t.shape)} for {key!r}")
            t.copy_(value)
            (rep.derived if derived is not None else rep.copied).append(key)
            used.update(keys)
    rep.dropped = sorted(k for k in src if k not in used and not _is_quant_scale(k))
    if [k for k in rep.dropped if k != "head.fc.bias"]:
        raise UserError(f"faithful weights have tensors hw mode has no place for: "
                        f"{_few([k for k in rep.dropped if k != 'head.fc.bias'])}")
    rep.fresh_quantizers = sum(isinstance(m, ParameterFromRuntimeStatsScaling)
                               for m in hw_model.modules())
    _log_hw_clamps(hw_model)
    log.info("%s from faithful weights: %d copied, %d derived (SE), dropped %s, %d quantizer "
             "scales fresh", hw_model.model_name, len(rep.copied), len(rep.derived),
             rep.dropped or "nothing", rep.fresh_quantizers)
    return rep


def _log_hw_clamps(hw_model: nn.Module) -> None:
    """Report the carried values hw mode's monotonicity clamps change (PReLU < 0, BN₂ γ ≤ 0)."""
    slopes = sum(int((m.weight < 0).sum()) for m in hw_model.modules()
                 if isinstance(m, PReLU) and m.nonneg)
    gammas = sum(int((m.weight < 1e-4).sum()) for m in hw_model.modules()
                 if isinstance(m, PositiveBatchNorm2d))
    if slopes or gammas:
        log.info("hw mode clamps %d negative PReLU slopes to 0 and %d BN₂ scales to 1e-4",
                 slopes, gammas)


# ----------------------------------------------------------------------------- calibration


def calibrate_scales(model: nn.Module, images: Tensor, batch: int = 16) -> int:
    """Set the activation-quantizer scales that hold no value yet from ``images`` ([0, 1],
    NCHW): eval-mode passes (BatchNorm statistics and weights untouched) with only those
    quantizers collecting statistics. Returns how many were calibrated."""
    todo = [m for m in model.modules()
            if isinstance(m, ParameterFromRuntimeStatsScaling) and m.counter == 0]
    if not todo:
        return 0
    model.eval()
    for m in todo:
        m.train()
    try:
        with torch.no_grad():
            for chunk in images.split(batch):
                model(chunk)
    finally:
        model.eval()
    return len(todo)


def calibration_images(shape: tuple[int, ...], n: int, seed: int = 0,
                       calib_dir: str | Path | None = None) -> Tensor:
    """``n`` images in [0, 1]: from ``calib_dir`` (any image files below it, resized and
    centre-cropped like the evaluation data) or, without one, seeded random pixels."""
    g = torch.Generator().manual_seed(seed)
    if calib_dir is None:
        return torch.randint(0, 256, (n, *shape), generator=g).float() / 255.0
    from .train.data import IMAGE_SUFFIXES, FolderDataset  # lazy: PIL, only with --calib-dir

    root = Path(calib_dir)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) \
        if root.is_dir() else []
    if not files:
        raise UserError(f"calib_dir {str(root)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    pick = torch.randperm(len(files), generator=g)[:n].tolist()
    ds = FolderDataset([(files[i], 0) for i in sorted(pick)], shape[-1])
    return torch.stack([ds[i][0] for i in range(len(ds))]).float() / 255.0


# ----------------------------------------------------------------------------- conversion


def official_model_names() -> list[str]:
    return sorted([*OFFICIAL_SIZES, *(f"{n}_hw" for n in OFFICIAL_SIZES)])


def convert(path: str | Path, model_name: str, out: str | Path, *, input_norm: str = "imagenet",
            calib_dir: str | Path | None = None, calib_images: int = 32, seed: int = 0
            ) -> nn.Module:
    """Official file → project checkpoint ``out`` (``bnn_brevitas.checkpoint`` format) of
    ``model_name`` (``bnext_t``… or ``bnext_t_hw``…: hw mode via :func:`init_hw_from_faithful`),
    with the quantizer scales the file lacks calibrated. Returns the model (eval mode)."""
    if model_name not in official_model_names():
        raise UnknownNameError("official BNext model", model_name, official_model_names())
    if calib_images < 1:
        raise ConfigError(f"calib_images must be ≥ 1, got {calib_images}")
    base = model_name.removesuffix("_hw")
    model = create_model(base)
    report = load_official(model, path, input_norm=input_norm)
    hw = None
    if model_name != base:
        faithful, model = model, create_model(model_name)
        hw = init_hw_from_faithful(model, faithful)
        del faithful
    images = calibration_images(model.cfg.input_shape, calib_images, seed, calib_dir)
    n = calibrate_scales(model, images)
    source = str(calib_dir) if calib_dir is not None else f"random pixels (seed {seed})"
    log.info("calibrated %d quantizer scale(s) on %d image(s) from %s", n, len(images), source)
    if calib_dir is None and n:
        log.warning("quantizer scales come from random pixels; pass --calib-dir with real "
                    "images for accurate scales")
    save_checkpoint(out, model, official={
        "file": str(path), "sha256": sha256_file(path), "upstream": "hpi-xnor/BNext src/bnext.py",
        "size": OFFICIAL_SIZES[base], "input_norm": input_norm, "tensors": report.loaded,
        "dropped": len(report.dropped), "hw_init": hw is not None,
        "calibration": {"quantizers": n, "images": len(images), "source": source},
    })
    log.info("wrote %s (%s)", out, model_name)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    """``python -m bnn_brevitas.official FILE --model bnext_t -o CKPT`` (module docstring)."""
    ap = argparse.ArgumentParser(
        prog="python -m bnn_brevitas.official",
        description="Convert an official BNext file (hpi-xnor/BNext) into a bnn_brevitas "
                    "checkpoint (usable by export, the flow and training).")
    ap.add_argument("file", type=Path, help="the official .pth.tar (or any state-dict file)")
    ap.add_argument("--model", required=True, help=f"one of {', '.join(official_model_names())}")
    ap.add_argument("-o", "--out", required=True, type=Path, help="checkpoint to write")
    ap.add_argument("--input-norm", default="imagenet", choices=sorted(INPUT_NORMS),
                    help="input normalization the weights were trained with (folded into the "
                         "stem; default: imagenet)")
    ap.add_argument("--calib-dir", type=Path, help="images to calibrate quantizer scales on "
                    "(default: seeded random pixels)")
    ap.add_argument("--calib-images", type=int, default=32, help="how many (default: 32)")
    ap.add_argument("--seed", type=int, default=0, help="calibration seed (default: 0)")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> None:
        convert(args.file, args.model, args.out, input_norm=args.input_norm,
                calib_dir=args.calib_dir, calib_images=args.calib_images, seed=args.seed)

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    import sys

    sys.exit(main())
