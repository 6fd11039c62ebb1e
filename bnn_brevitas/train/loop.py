# SPDX-License-Identifier: BSD-3-Clause
"""The training step, the epoch loop with its progress bar, and evaluation.

``TrainSession`` holds everything a run owns; ``runner.py`` builds it and drives the epochs.
The position in training is ``(epoch, step_in_epoch, global_step)``: ``epoch`` counts completed
epochs, and a session stopped by a signal resumes at ``step_in_epoch`` of the same epoch.

A non-finite loss or gradient norm raises ``TrainingDivergedError`` (exit 1) *before* the
optimizer applies the step, so the weights in memory and the last checkpoint on disk (never
written after a non-finite step) stay finite.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import CheckFailedError
from ..quant import set_binarization_temperature
from .augment import Augment
from .config import TrainConfig
from .dist import DistContext
from .distill import CHECKPOINT_NAME, teacher_logits, training_loss
from .loaders import start_epoch
from .recipe import binarization_temperature, clip_gradients
from .state import StopFlag


class TrainingDivergedError(CheckFailedError):
    """The loss or the gradients became NaN or infinite; training stopped (exit 1)."""


def zero_sums() -> dict[str, float]:
    """The running sums of an epoch, all zero (a fresh epoch, or a fresh run)."""
    return {"loss_sum": 0.0, "correct": 0.0, "count": 0.0, "seconds": 0.0}


@dataclass
class TrainSession:
    """A run's model, optimisation state, data and position in training."""

    cfg: TrainConfig
    ctx: DistContext
    device: torch.device
    model: nn.Module
    net: nn.Module  # ``model`` itself, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    teacher: nn.Module | None
    augment: Augment | None
    train_loader: DataLoader
    val_loader: DataLoader | None  # None: no validation split (val_samples 0)
    test_loader: DataLoader
    steps_per_epoch: int
    run_dir: Path
    stop: StopFlag = field(default_factory=StopFlag)
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    #: the selected epoch so far: ``{"epoch", "val_acc", "val_loss"}`` (``selection.py``)
    best: dict[str, Any] | None = None
    partial: dict[str, float] = field(default_factory=zero_sums)
    history: list[dict[str, Any]] = field(default_factory=list)
    tau: float = 1.0

    @property
    def total_steps(self) -> int:
        return self.cfg.epochs * self.steps_per_epoch

    @property
    def binarize_steps(self) -> int:
        """Steps of the first schedule segment, over which ``binarize_at`` is a fraction."""
        first = self.cfg.restart_at[0] if self.cfg.restart_at else self.cfg.epochs
        return first * self.steps_per_epoch

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()


def train_step(s: TrainSession, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    """One optimizer step on a batch of [0, 1] images; returns (loss, correct predictions)."""
    cfg = s.cfg
    s.tau = binarization_temperature(s.global_step, s.binarize_steps, cfg.binarize_at,
                                     cfg.progressive and cfg.quantize)
    set_binarization_temperature(s.model, s.tau)
    if s.augment is not None:
        x = s.augment(x)
    with s.autocast():
        t_logits = teacher_logits(s.teacher, x)
        logits = s.net(x)
        loss = training_loss(logits, y, t_logits, cfg.kd_temperature, cfg.kd_alpha)
    s.optimizer.zero_grad(set_to_none=True)
    loss_value = float(loss.detach())
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
        s.scaler.unscale_(s.optimizer)
        clip_gradients(s.model, cfg.grad_clip)
        check_finite(s, loss_value, 0.0)  # GradScaler itself skips steps with inf gradients
        s.scaler.step(s.optimizer)
        s.scaler.update()
    else:
        loss.backward()
        check_finite(s, loss_value, clip_gradients(s.model, cfg.grad_clip))
        s.optimizer.step()
    s.scheduler.step()
    return loss_value, int((logits.detach().argmax(-1) == y).sum())


def check_finite(s: TrainSession, loss: float, grad_norm: float) -> None:
    """Raise ``TrainingDivergedError`` if the loss or the gradient norm is not finite on any
    rank (collective under DDP, so every rank stops at the same step)."""
    bad = not (math.isfinite(loss) and math.isfinite(grad_norm))
    if not s.ctx.any(bad, s.device):
        return
    ckpt = s.run_dir / CHECKPOINT_NAME
    kept = (f"the last finite checkpoint is kept: {ckpt}" if ckpt.exists()
            else "no checkpoint was written yet")
    raise TrainingDivergedError(
        f"training diverged at epoch {s.epoch + 1}, step {s.step_in_epoch + 1}/"
        f"{s.steps_per_epoch} (lr {s.lr:.3g}): loss {loss:.4g}, gradient norm {grad_norm:.4g}; "
        f"stopped before applying the step, {kept}. Lower --lr, lengthen --warmup-epochs or "
        f"set --grad-clip")


def _progress(s: TrainSession) -> tqdm:
    return tqdm(total=s.steps_per_epoch, initial=s.step_in_epoch, unit="step",
                desc=f"epoch {s.epoch + 1}/{s.cfg.epochs}", disable=not s.ctx.is_main,
                file=sys.stderr, dynamic_ncols=True, mininterval=1.0, leave=True)


def train_epoch(s: TrainSession) -> bool:
    """Train the rest of epoch ``s.epoch``; False if a stop signal ended it early."""
    start_epoch(s.train_loader, s.epoch, s.step_in_epoch)
    s.net.train()
    sums, world = s.partial, s.ctx.world_size
    bar = _progress(s)
    t_last = time.perf_counter()
    try:
        for images, labels in s.train_loader:
            x = images.to(s.device, non_blocking=True).float().div_(255.0)
            y = labels.to(s.device, non_blocking=True)
            loss, correct = train_step(s, x, y)
            s.step_in_epoch += 1
            s.global_step += 1
            now = time.perf_counter()
            sums["seconds"] += now - t_last
            t_last = now
            sums["loss_sum"] += loss * len(y)
            sums["correct"] += correct
            sums["count"] += len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss_sum'] / sums['count']:.3f}",
                            acc=f"{sums['correct'] / sums['count']:.3f}",
                            img_s=f"{world * sums['count'] / sums['seconds']:.0f}",
                            lr=f"{s.lr:.2e}", refresh=False)
            if s.ctx.any(s.stop.requested, s.device):
                s.stop.signum = s.stop.signum or int(signal.SIGTERM)  # another rank's signal
                return False
    finally:
        bar.close()
    return True


def epoch_train_metrics(s: TrainSession) -> dict[str, float]:
    """Loss, accuracy and images/s of the (finished) epoch, summed over ranks."""
    loss_sum, correct, count = s.ctx.all_sum(
        [s.partial["loss_sum"], s.partial["correct"], s.partial["count"]], s.device)
    seconds = s.partial["seconds"]
    return {"train_loss": loss_sum / max(count, 1), "train_acc": correct / max(count, 1),
            "img_per_s": count / seconds if seconds > 0 else 0.0, "train_seconds": seconds}


@torch.no_grad()
def evaluate(s: TrainSession, loader: DataLoader) -> tuple[float, float]:
    """(loss, top-1) of the eval-mode (exactly binary) model on the whole split of ``loader``
    (collective under DDP: every rank evaluates its shard)."""
    model = s.model
    was_training = model.training
    model.eval()
    loss_sum = correct = count = 0.0
    try:
        for images, labels in loader:
            x = images.to(s.device, non_blocking=True).float().div_(255.0)
            y = labels.to(s.device, non_blocking=True)
            with s.autocast():
                logits = model(x)
            loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            count += len(y)
    finally:
        model.train(was_training)
    loss_sum, correct, count = s.ctx.all_sum([loss_sum, correct, count], s.device)
    return loss_sum / max(count, 1), correct / max(count, 1)
