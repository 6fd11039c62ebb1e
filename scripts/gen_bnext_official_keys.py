# SPDX-License-Identifier: BSD-3-Clause
"""The official BNext state-dict names and shapes, derived from the upstream model definition.

Upstream: ``hpi-xnor/BNext`` @ ``dfcf347`` (Apache-2.0), ``src/bnext.py`` — the file the
training script ``src/train_assistant_group_amp.py`` builds its student from
(``BNext(num_classes=1000, size="tiny"|"small"|"middle"|"large")``) and whose
``model_student.state_dict()`` (DDP-wrapped, so every key starts with ``module.``) it saves
under ``"state_dict"``.

The module tree below is a re-implementation of that file in plain ``torch.nn`` (no timm,
einops, torchinfo, and nothing from ``bnn_brevitas``): the same attribute names, registration
order, parameter/buffer shapes and eval-mode arithmetic, with the upstream quirks kept on
purpose because they are part of the checkpoint format:

* the stem builds ``nn.PReLU(oup, oup)`` (``num_parameters=oup, init=oup``) and never calls it;
* every module builds ``activation1`` but only ``Attention`` calls it;
* ``HardSign`` and ``HardBinaryConv`` register a ``temperature`` buffer of shape (1,);
* the squeeze-and-excitation convs are ``se.se.1`` and ``se.se.3`` of an ``nn.Sequential``.

It is the independent second load path of ``tests/bnn_brevitas/test_official_weights.py``,
and its ``state_dict()`` names and shapes are the committed fixture:

    .venv/bin/python scripts/gen_bnext_official_keys.py           # (re)write the fixture
    .venv/bin/python scripts/gen_bnext_official_keys.py --check   # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger("gen_bnext_official_keys")

UPSTREAM = {
    "repo": "hpi-xnor/BNext",
    "commit": "dfcf347a30e3bc08606b8cad2c8d4a329d5a5b28",
    "file": "src/bnext.py",
    "license": "Apache-2.0",
}
FIXTURE = (Path(__file__).resolve().parents[1] / "tests" / "bnn_brevitas" / "fixtures"
           / "bnext_official_keys.json.gz")

#: ``stage_out_channel_*`` of upstream ``src/bnext.py``
STAGE_OUT_CHANNEL: dict[str, list[int]] = {
    "tiny": [32] + [64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2,
    "small": [48] + [96] + [192] * 2 + [384] * 2 + [768] * 6 + [1536] * 2,
    "middle": [48] + [96] + [192] * 4 + [384] * 4 + [768] * 8 + [1536] * 4,
    "large": [64] + [128] + [256] * 4 + [512] * 4 + [1024] * 16 + [2048] * 4,
}


class LearnableBias(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias.expand_as(x)


class HardSign(nn.Module):
    """sign(x) forward (``progressive=False`` upstream); the temperature cannot change a sign."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("temperature", torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        replace = x.clamp(-1.5, 1.5)
        sign = x.div(self.temperature.clamp(min=1e-8)).clamp(-1, 1).sign()
        return (sign - replace).detach() + replace


class HardBinaryConv(nn.Module):
    """sign(w) once τ < 1e-7, else clamp(w/τ, −1, 1); padding k//2, no bias."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.stride, self.padding = stride, kernel // 2
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) * 0.001)
        self.register_buffer("temperature", torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        if self.temperature < 1e-7:
            wb = w.sign()
        else:
            wb = (w / self.temperature.clamp(min=1e-8)).clamp(-1, 1)
        if self.training:
            wb = wb.detach() - w.detach() + w
        return F.conv2d(x, wb, stride=self.stride, padding=self.padding)


class SqueezeAndExpand(nn.Module):
    """GAP → 1×1 conv (C→C/8, bias) → ReLU → 1×1 conv (C/8→C, bias) → sigmoid."""

    def __init__(self, channels: int, planes: int, ratio: int = 8) -> None:
        super().__init__()
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)),
                                nn.Conv2d(channels, channels // ratio, 1),
                                nn.ReLU(), nn.Conv2d(channels // ratio, planes, 1))
        self.attention = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(self.se(x))


class _Module(nn.Module):
    """The attributes shared by upstream ``Attention``, ``FFN_3x3`` and ``FFN_1x1`` (same order)."""

    def __init__(self, inplanes: int, planes: int, kernel: int, stride: int,
                 se_in: int) -> None:
        super().__init__()
        self.stride = stride
        self.move = LearnableBias(inplanes)
        self.binary_activation = HardSign()
        self.binary_conv = HardBinaryConv(inplanes, planes, kernel, stride)
        self.norm1 = nn.BatchNorm2d(planes)
        self.norm2 = nn.BatchNorm2d(planes)
        self.activation1 = nn.PReLU(inplanes)
        self.activation2 = nn.PReLU(planes)
        self.pooling = nn.AvgPool2d(2, 2) if stride == 2 else None
        self.se = SqueezeAndExpand(se_in, planes)
        self.scale = nn.Parameter(torch.ones(1, planes, 1, 1) * 0.5)

    def branch(self, inp: Tensor) -> Tensor:
        return self.activation2(self.norm1(self.binary_conv(self.binary_activation(
            self.move(inp)))))


class Attention(_Module):
    """ELM attention: residual PReLU₁(X) [pooled], branch · SE gate · residual, BN₂, + residual."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__(inplanes, planes, 3, stride, planes)

    def forward(self, inp: Tensor) -> Tensor:
        residual = self.activation1(inp)
        if self.stride == 2:
            residual = self.pooling(residual)
        x = self.branch(inp)
        if self.training:
            self.scale.data.clamp_(0, 1)
        if self.stride == 2:
            inp = self.pooling(inp)
        mix = self.scale * inp + x * (1 - self.scale)
        x = self.se(mix) * x
        x = self.norm2(x * residual)
        return x + residual


class FFN_3x3(_Module):  # noqa: N801 (the upstream class name)
    """branch · SE gate, BN₂, + input [pooled]."""

    kernel = 3

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__(inplanes, planes, self.kernel, stride, inplanes)

    def forward(self, inp: Tensor) -> Tensor:
        residual = self.pooling(inp) if self.stride == 2 else inp
        x = self.branch(inp)
        if self.training or self.kernel == 1:  # upstream FFN_1x1 clamps α in eval mode too
            self.scale.data.clamp_(0, 1)
        if self.stride == 2:
            inp = self.pooling(inp)
        mix = self.scale * inp + (1 - self.scale) * x
        x = self.norm2(self.se(mix) * x)
        return x + residual


class FFN_1x1(FFN_3x3):  # noqa: N801 (the upstream class name)
    kernel = 1


class BasicBlock(nn.Module):
    """``Attention`` (mode "scale") or ``FFN_3x3`` ("bias"), then ``FFN`` or ``FFN_1``/``_2``."""

    def __init__(self, inplanes: int, planes: int, stride: int, mode: str) -> None:
        super().__init__()
        self.inplanes, self.planes = inplanes, planes
        cls = Attention if mode == "scale" else FFN_3x3
        self.Attention = cls(inplanes, inplanes, stride)  # noqa: N815 (upstream name)
        if inplanes == planes:
            self.FFN = FFN_1x1(inplanes, inplanes)  # noqa: N815
        else:
            self.FFN_1 = FFN_1x1(inplanes, inplanes)  # noqa: N815
            self.FFN_2 = FFN_1x1(inplanes, inplanes)  # noqa: N815

    def forward(self, x: Tensor) -> Tensor:
        x = self.Attention(x)
        if self.inplanes == self.planes:
            return self.FFN(x)
        return torch.cat((self.FFN_1(x), self.FFN_2(x)), dim=1)


class FirstConv3x3(nn.Module):
    """Upstream ``firstconv3x3``: conv → BN; the PReLU is built (init = oup) but never called."""

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, oup, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(oup)
        self.prelu = nn.PReLU(oup, oup)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn1(self.conv1(x))


class BNext(nn.Module):
    """Upstream ``BNext(num_classes, size)`` with ELM attention and infor-recoupling (defaults)."""

    def __init__(self, num_classes: int = 1000, size: str = "tiny") -> None:
        super().__init__()
        ch = STAGE_OUT_CHANNEL[size]
        self.feature = nn.ModuleList()
        for i in range(len(ch)):
            if i == 0:
                self.feature.append(FirstConv3x3(3, ch[0], 1 if num_classes != 1000 else 2))
                continue
            stride = 2 if i > 1 and ch[i - 1] != ch[i] and ch[i] != ch[1] else 1
            mode = "scale" if i % 2 == 0 and i > 1 else "bias"
            self.feature.append(BasicBlock(ch[i - 1], ch[i], stride, mode))
        self.prelu = nn.PReLU(ch[-1])
        self.pool1 = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.feature:
            x = block(x)
        return self.fc(self.pool1(self.prelu(x)).flatten(1))


def key_table(size: str) -> list[list]:
    """``[name, shape, dtype, "param"|"buffer"]`` of ``BNext(size=size).state_dict()``, in order."""
    with torch.device("meta"):
        model = BNext(1000, size)
    params = {n for n, _ in model.named_parameters()}
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch."),
             "param" if k in params else "buffer"] for k, v in model.state_dict().items()]


def build_fixture() -> dict:
    return {
        "about": "state-dict names, shapes, dtypes of the official BNext models, generated by "
                 "scripts/gen_bnext_official_keys.py from a plain-torch re-implementation of the "
                 "upstream file (no bnn_brevitas code involved); keys without the DDP 'module.' "
                 "prefix the training script's checkpoints carry",
        "upstream": UPSTREAM,
        "generator": "scripts/gen_bnext_official_keys.py",
        "num_classes": 1000,
        "sizes": {size: key_table(size) for size in STAGE_OUT_CHANNEL},
    }


def _encode(fixture: dict) -> bytes:
    text = json.dumps(fixture, indent=0, separators=(",", ":")) + "\n"
    return gzip.compress(text.encode(), mtime=0)


def load_fixture(path: Path = FIXTURE) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=FIXTURE, help="fixture file to write")
    ap.add_argument("--check", action="store_true", help="only compare with the existing file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    fixture = build_fixture()
    counts = ", ".join(f"{s} {len(t)}" for s, t in fixture["sizes"].items())
    if args.check:
        same = args.out.is_file() and load_fixture(args.out) == fixture
        (log.info if same else log.error)("%s is %s (%s keys)", args.out,
                                           "up to date" if same else "stale", counts)
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(_encode(fixture))
    log.info("wrote %s (%s keys)", args.out, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
