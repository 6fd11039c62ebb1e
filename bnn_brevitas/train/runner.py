# SPDX-License-Identifier: BSD-3-Clause
"""``train(cfg)``: build a session from a validated ``TrainConfig``, run it, finish it.

Order of work: validate → join DDP (under torchrun) → load data → fit the model's input shape
and classes to the data → create model, teacher, optimizer, schedule, loaders → restore a
checkpoint (``--resume``) → epochs (train, evaluate, checkpoint, metrics line) → on rank 0:
curves, QONNX export (checked), model card, summary. A SIGINT/SIGTERM saves a checkpoint and
returns exit code 130/143; ``--resume RUN`` then continues exactly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import read_checkpoint, save_checkpoint
from ..errors import ConfigError
from ..models import create_model, resolve_config
from . import loaders, report
from .augment import build_augment, resolve_augment
from .config import TrainConfig, validate
from .data import DataBundle, load_data
from .dist import DistContext, init_distributed, resolve_device
from .distill import CHECKPOINT_NAME, checkpoint_path, disable_quantization, load_teacher
from .finish import finish_run
from .loop import TrainSession, epoch_train_metrics, evaluate, train_epoch, zero_sums
from .recipe import build_optimizer, build_scheduler
from .state import (
    load_quant_stats_state,
    load_weights,
    quant_stats_state,
    rng_state,
    set_rng_state,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    test_acc: float | None
    best_acc: float
    interrupted: bool
    exit_code: int
    summary: str = ""
    card: dict[str, Any] | None = None


class _MainRankOnly(logging.Filter):
    """Non-zero ranks log warnings, and INFO records marked ``extra={"all_ranks": True}``."""

    def __init__(self, ctx: DistContext) -> None:
        super().__init__()
        self.ctx = ctx

    def filter(self, record: logging.LogRecord) -> bool:
        if self.ctx.is_main or record.levelno >= logging.WARNING:
            return True
        if getattr(record, "all_ranks", False):
            record.msg = f"[rank {self.ctx.rank}] {record.msg}"
            return True
        return False


def fit_model_to_data(cfg: TrainConfig, data: DataBundle) -> dict[str, Any]:
    """``cfg.model_overrides`` plus in_channels/img_size/num_classes from the data where the
    user did not set them; a user value that contradicts the data is a ``ConfigError``."""
    base = resolve_config(cfg.model, **cfg.model_overrides)
    wanted = {"in_channels": data.in_channels, "num_classes": data.num_classes}
    if data.img_size is not None:
        wanted["img_size"] = data.img_size
    out = dict(cfg.model_overrides)
    for key, value in wanted.items():
        if key in cfg.model_overrides and cfg.model_overrides[key] != value:
            raise ConfigError(f"model_overrides: {key}={cfg.model_overrides[key]} does not match "
                              f"dataset {data.name} ({key} {value}); drop the override")
        if key not in out and getattr(base, key) != value:
            out[key] = value
    try:
        resolve_config(cfg.model, **out)
    except ConfigError as e:
        raise ConfigError(f"model {cfg.model} cannot take {data.name} input ({data.in_channels}"
                          f"×{data.img_size or base.img_size}², {data.num_classes} classes): "
                          f"{e}") from None
    return out


def _new_run_dir(cfg: TrainConfig, ctx: DistContext) -> Path:
    if cfg.output_dir:
        path = Path(cfg.output_dir)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{cfg.model}-{stamp}"
        n = 1
        while path.exists():
            path, n = Path("runs") / f"{cfg.model}-{stamp}-{n}", n + 1
    path = Path(ctx.broadcast(str(path)))
    if cfg.resume is None and (path / CHECKPOINT_NAME).exists():
        raise ConfigError(f"output_dir: {str(path)!r} already holds a run ({CHECKPOINT_NAME}); "
                          f"continue it with --resume {path} or choose another --output-dir")
    return path


def _build_model(cfg: TrainConfig, device: torch.device, ckpt: dict[str, Any] | None
                 ) -> torch.nn.Module:
    """The student, with a resumed run's weights. Brevitas re-creates its quantizers (and their
    scale parameters) on ``load_state_dict``, so this must precede building the optimizer."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_overrides)
    if ckpt is not None:
        load_weights(model, ckpt["state_dict"], cfg.quantize)
        load_quant_stats_state(model, ckpt["extra"]["train_state"]["quant_stats"])
    if not cfg.quantize:
        disable_quantization(model)
    return model.to(device)


def _build_session(cfg: TrainConfig, ctx: DistContext, data: DataBundle, run_dir: Path,
                   ckpt: dict[str, Any] | None = None) -> TrainSession:
    device = resolve_device(cfg.device, ctx)
    model = _build_model(cfg, device, ckpt)
    torch.manual_seed(cfg.seed + ctx.rank)  # the data/augmentation stream of this rank
    net = model
    if ctx.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=not cfg.quantize)
    workers, pin = cfg.workers, device.type == "cuda"
    train_dl = loaders.train_loader(data.train, cfg.batch_size, ctx.world_size, ctx.rank,
                                    cfg.seed, workers, pin)
    test_dl = loaders.test_loader(data.test, max(cfg.batch_size, 256), ctx.world_size, ctx.rank,
                                  workers, pin)
    spe = loaders.steps_per_epoch(len(data.train), cfg.batch_size, ctx.world_size)
    if spe < 1:
        raise ConfigError(f"batch_size: {cfg.batch_size} exceeds the {len(data.train)} training "
                          f"samples ({ctx.world_size} process(es)); lower it")
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.conv_weight_decay)
    scheduler = build_scheduler(optimizer, cfg.epochs * spe, round(cfg.warmup_epochs * spe),
                                cfg.lr, cfg.warmup_lr, cfg.min_lr)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp else None
    teacher = None
    if cfg.teacher:
        teacher = load_teacher(cfg.teacher, model.cfg.input_shape, model.cfg.num_classes, device)
    augment = build_augment(resolve_augment(cfg.augment, cfg.dataset), model.cfg.img_size,
                            cfg.aug_magnitude)
    return TrainSession(cfg, ctx, device, model, net, optimizer, scheduler, scaler, teacher,
                        augment.to(device) if augment else None, train_dl, test_dl, spe, run_dir)


def save_state(s: TrainSession, data: DataBundle, test_acc: float | None) -> None:
    """Write ``checkpoint.pt`` atomically (collective under DDP: every rank must call it)."""
    rngs = s.ctx.gather(rng_state())
    if not s.ctx.is_main:
        return
    train_state = {
        "epoch": s.epoch, "step_in_epoch": s.step_in_epoch, "global_step": s.global_step,
        "best_acc": s.best_acc, "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "scaler": s.scaler.state_dict() if s.scaler is not None else None,
        "rng": rngs, "partial": dict(s.partial), "history": list(s.history),
        "quant_stats": quant_stats_state(s.model), "world_size": s.ctx.world_size,
    }
    save_checkpoint(s.run_dir / CHECKPOINT_NAME, s.model, train_state=train_state,
                    train_config=s.cfg.to_dict(), dataset=data.name, quantize=s.cfg.quantize,
                    test_top1=test_acc)


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by ``save_state`` (``ConfigError`` if it has no training state)."""

    ckpt = read_checkpoint(checkpoint_path(path))
    if "train_state" not in ckpt.get("extra", {}):
        raise ConfigError(f"resume: {path} is a model checkpoint without training state")
    return ckpt


def restore_state(s: TrainSession, ckpt: dict[str, Any], path: str | Path) -> None:
    """Continue from ``ckpt`` (same schedule, RNG, position); the weights are already loaded
    by ``_build_model``."""
    st = ckpt["extra"]["train_state"]
    if st["world_size"] != s.ctx.world_size:
        log.warning("resuming a %d-process run with %d processes: the data order differs",
                    st["world_size"], s.ctx.world_size)
    s.optimizer.load_state_dict(st["optimizer"])
    s.scheduler.load_state_dict(st["scheduler"])
    if s.scaler is not None and st["scaler"] is not None:
        s.scaler.load_state_dict(st["scaler"])
    s.epoch, s.step_in_epoch, s.global_step = st["epoch"], st["step_in_epoch"], st["global_step"]
    s.best_acc, s.partial, s.history = st["best_acc"], dict(st["partial"]), list(st["history"])
    rngs = st["rng"]
    set_rng_state(rngs[s.ctx.rank] if s.ctx.rank < len(rngs) else rngs[0])
    log.info("resumed %s at epoch %d, step %d of %d (global step %d, lr %.3e)", path,
             s.epoch + 1, s.step_in_epoch, s.steps_per_epoch, s.global_step, s.lr)


def _epoch_record(s: TrainSession, test_loss: float, test_acc: float) -> dict[str, Any]:
    return {"epoch": s.epoch + 1, "global_step": s.global_step, "lr": s.lr, "tau": s.tau,
            **epoch_train_metrics(s), "test_loss": test_loss, "test_acc": test_acc,
            "time": datetime.now().isoformat(timespec="seconds")}


def run_epochs(s: TrainSession, data: DataBundle) -> bool:
    """Train the remaining epochs; False if a stop signal interrupted them."""
    metrics = s.run_dir / "metrics.jsonl"
    while s.epoch < s.cfg.epochs:
        if not train_epoch(s):
            save_state(s, data, None)
            return False
        test_loss, test_acc = evaluate(s)
        record = _epoch_record(s, test_loss, test_acc)
        s.history.append(record)
        s.best_acc = max(s.best_acc, test_acc)
        s.epoch, s.step_in_epoch, s.partial = s.epoch + 1, 0, zero_sums()
        save_state(s, data, test_acc)
        if s.ctx.is_main:
            report.append_metrics(metrics, record)
            log.info("epoch %d/%d: train loss %.4f top-1 %.2f %% | test loss %.4f top-1 "
                     "%.2f %% | %.1f img/s", record["epoch"], s.cfg.epochs, record["train_loss"],
                     100 * record["train_acc"], test_loss, 100 * test_acc, record["img_per_s"])
        if s.epoch < s.cfg.epochs and s.ctx.any(s.stop.requested, s.device):
            return False  # signalled during evaluation: the epoch's checkpoint is saved
    return True


def _prepare(cfg: TrainConfig, ctx: DistContext) -> tuple[TrainConfig, DataBundle, Path]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    probe = resolve_config(cfg.model, **cfg.model_overrides)
    data = load_data(cfg.dataset, cfg.data_dir, tuple(probe.input_shape), probe.num_classes,
                     max_train=cfg.max_train_samples, max_test=cfg.max_test_samples,
                     seed=cfg.seed)
    cfg = dataclasses.replace(cfg, model_overrides=fit_model_to_data(cfg, data))
    run_dir = _new_run_dir(cfg, ctx)
    cfg = dataclasses.replace(cfg, output_dir=str(run_dir))
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dataclasses.replace(cfg, resume=None).to_yaml())
    log.info("%s on %s: %d train / %d test samples, input %d×%d×%d, %d classes → %s",
             cfg.model, data.name, len(data.train), len(data.test), data.in_channels,
             data.img_size or probe.img_size, data.img_size or probe.img_size, data.num_classes,
             run_dir)
    return cfg, data, run_dir


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) one training job; see the module docstring."""
    validate(cfg)
    ctx = init_distributed("cuda" if resolve_device(cfg.device, DistContext()).type == "cuda"
                           else "cpu")
    log_filter = _MainRankOnly(ctx)
    for h in logging.getLogger().handlers:
        h.addFilter(log_filter)
    threads = torch.get_num_threads()
    try:
        return _train(cfg, ctx)
    finally:
        torch.set_num_threads(threads)
        for h in logging.getLogger().handlers:
            h.removeFilter(log_filter)
        ctx.close()


def _train(cfg: TrainConfig, ctx: DistContext) -> TrainResult:
    cfg, data, run_dir = _prepare(cfg, ctx)
    ckpt = read_training_checkpoint(cfg.resume) if cfg.resume else None
    s = _build_session(cfg, ctx, data, run_dir, ckpt)
    if ckpt is not None:
        restore_state(s, ckpt, cfg.resume)
        if ctx.is_main:  # the checkpoint's history is authoritative
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in s.history))
    s.stop.install()
    t0 = time.perf_counter()
    try:
        finished = run_epochs(s, data)
    finally:
        s.stop.uninstall()
    if not finished:
        log.warning("stopped at epoch %d, step %d/%d; checkpoint saved. Continue with: "
                    "python -m bnn_brevitas.train --resume %s", s.epoch + 1, s.step_in_epoch,
                    s.steps_per_epoch, run_dir)
        return TrainResult(run_dir, s.epoch, None, s.best_acc, True, s.stop.exit_code())
    log.info("training done in %.0f s", time.perf_counter() - t0, extra={"all_ranks": True})
    ctx.barrier()
    if not ctx.is_main:
        return TrainResult(run_dir, s.epoch, None, s.best_acc, False, 0)
    summary, card = finish_run(s, data)
    test_acc = s.history[-1]["test_acc"] if s.history else None
    return TrainResult(run_dir, s.epoch, test_acc, s.best_acc, False, 0, summary, card)
