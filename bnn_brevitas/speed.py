# SPDX-License-Identifier: BSD-3-Clause
"""Training throughput of the Brevitas reference path and the fast path, side by side.

Both models are built from one seed and train with the recipe's optimizer and gradient
clipping on the same seeded synthetic batches (uint8 pixels / 255, as the data pipeline feeds),
in one process, with interleaved timed rounds (the order alternates every round) so that a
noisy, shared machine slows both alike. Each model first runs ``warmup`` steps, enough to end
the activation quantizers' statistics phase (``quant.ACT_STATS_STEPS``), which runs Brevitas
on both paths. The report includes the losses of both paths, which must be identical
(the fast path computes the same values).

Used by ``scripts/bench_train.py``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError
from .fast_ops import Kernels, resolve_kernels
from .fast_train import enable_fast_train
from .models import create_model
from .quant import ACT_STATS_STEPS
from .train.recipe import build_optimizer, clip_gradients

#: the recipe defaults of ``bnn_brevitas.train.config.TrainConfig``
LR, WEIGHT_DECAY, CONV_WEIGHT_DECAY, GRAD_CLIP = 2e-3, 1e-3, 1e-8, 5.0
PATHS = ("reference", "fast")


@dataclass
class SpeedReport:
    """Images/s of each path per timed round, their medians and the fast/reference ratio."""

    model: str
    device: str
    threads: int
    batch: int
    steps_per_round: int
    rounds: int
    warmup: int
    img_per_s: dict[str, list[float]]
    median_img_per_s: dict[str, float]
    ratio: float
    round_ratios: list[float]
    losses_identical: bool
    kernels: str = "eager"
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, load, torch/brevitas versions, date."""
    import brevitas

    info: dict[str, Any] = {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "brevitas": brevitas.__version__, "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(), "cpu_capability":
            torch.backends.cpu.get_cpu_capability(),
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):
        info["loadavg"] = [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def resolve_bench_device(name: str) -> torch.device:
    """``cpu`` or ``cuda`` (``UserError`` if CUDA was asked for and is not available)."""
    if name not in ("cpu", "cuda"):
        raise UserError(f"device must be 'cpu' or 'cuda', got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but CUDA is not available "
                        f"(torch {torch.__version__}); use --device cpu")
    return torch.device(name)


def synthetic_batches(shape: tuple[int, ...], classes: int, batch: int, n: int, seed: int,
                      device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` seeded (images in [0, 1] on the uint8 grid, labels) batches on ``device``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randint(0, 256, (batch, *shape), generator=g).float().div_(255.0)
        y = torch.randint(0, classes, (batch,), generator=g)
        out.append((x.to(device), y.to(device)))
    return out


def build_trainee(name: str, overrides: dict[str, Any], fast: bool, device: torch.device,
                  seed: int, kernels: str | Kernels = "eager") -> tuple[nn.Module, torch.optim.Optimizer]:
    """A registry model in train mode (on the fast path if ``fast``) and its AdamW."""
    torch.manual_seed(seed)
    model = create_model(name, **overrides).to(device).train()
    if fast:
        enable_fast_train(model, kernels)
    return model, build_optimizer(model, LR, WEIGHT_DECAY, CONV_WEIGHT_DECAY)


def train_steps(model: nn.Module, opt: torch.optim.Optimizer,
                batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """One optimizer step per batch, as ``train.loop.train_step`` does; returns the losses."""
    losses = []
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, GRAD_CLIP)
        opt.step()
        losses.append(float(loss.detach()))  # a sync, as in the training loop
    return losses


def _timed(model: nn.Module, opt: torch.optim.Optimizer, batches: list, device: torch.device
           ) -> tuple[float, list[float]]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    losses = train_steps(model, opt, batches)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, losses


def measure(name: str = "bnext_nano_hw", overrides: dict[str, Any] | None = None, *,
            batch: int = 64, threads: int = 2, device: str = "cpu", steps: int = 5,
            rounds: int = 5, warmup: int = ACT_STATS_STEPS + 2, seed: int = 0,
            kernels: str = "auto") -> SpeedReport:
    """Time ``rounds`` × ``steps`` training steps of each path, interleaved (see the module).

    ``kernels``: the fast path's elementwise kernels (``fast_train.resolve_kernels``); any
    compilation happens before the timed rounds."""
    dev = resolve_bench_device(device)
    if threads < 1 or batch < 2 or steps < 1 or rounds < 1 or warmup < 0:
        raise UserError("threads, steps and rounds must be ≥ 1, batch ≥ 2, warmup ≥ 0")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(name, dict(overrides or {}), batch, threads, dev, steps, rounds, warmup,
                        seed, resolve_kernels(kernels))
    finally:
        torch.set_num_threads(previous)


def _measure(name: str, overrides: dict[str, Any], batch: int, threads: int,
             dev: torch.device, steps: int, rounds: int, warmup: int, seed: int,
             k: Kernels) -> SpeedReport:
    """``measure`` after argument checks, at the requested thread count."""
    trainees = {p: build_trainee(name, overrides, p == "fast", dev, seed, k) for p in PATHS}
    cfg = trainees["reference"][0].cfg
    batches = synthetic_batches(tuple(cfg.input_shape), cfg.num_classes, batch,
                                warmup + rounds * steps, seed + 1, dev)
    losses: dict[str, list[float]] = {p: [] for p in PATHS}
    for p in PATHS:
        losses[p] += train_steps(*trainees[p], batches[:warmup])
    rates: dict[str, list[float]] = {p: [] for p in PATHS}
    for r in range(rounds):
        chunk = batches[warmup + r * steps: warmup + (r + 1) * steps]
        for p in (PATHS if r % 2 == 0 else PATHS[::-1]):
            seconds, step_losses = _timed(*trainees[p], chunk, dev)
            rates[p].append(round(batch * steps / seconds, 1))
            losses[p] += step_losses
    med = {p: statistics.median(rates[p]) for p in PATHS}
    return SpeedReport(
        name, str(dev), threads, batch, steps, rounds, warmup, rates, med,
        round(med["fast"] / med["reference"], 3),
        [round(f / r, 3) for f, r in zip(rates["fast"], rates["reference"])],
        losses["fast"] == losses["reference"], k.name, machine_info(dev))
