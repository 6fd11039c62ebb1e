# SPDX-License-Identifier: BSD-3-Clause
"""``train(cfg)``: build a session from a validated ``TrainConfig``, run it, finish it.

Order of work: validate (a resume: against the run's checkpoint, ``resume.py``) → join DDP
(under torchrun) → load data → fit the model's input shape and classes to the data → create
model, teacher, optimizer, schedule, loaders → restore a checkpoint (``--resume``) → only now
write ``config.yaml`` → epochs (train, evaluate on the validation split, select, checkpoint,
metrics line) → test the selected model once (``selection.py``) → on rank 0: curves, QONNX
export (checked), model card, summary. Nothing is written before the run has started, so an
invalid config or a refused resume leaves the file system as it was.

A SIGINT/SIGTERM saves a checkpoint and returns exit code 130/143; ``--resume RUN`` then
continues exactly. A non-finite loss or gradient raises ``loop.TrainingDivergedError``
(exit 1), keeping the last finite checkpoint; so does a non-finite validation loss.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import save_checkpoint
from ..errors import ConfigError
from ..fast_train import enable_fast_train
from ..models import create_model, resolve_config
from . import loaders, report, resume, selection
from .augment import build_augment, resolve_augment
from .config import TrainConfig, validate
from .data import DataBundle, load_data
from .dist import DistContext, init_distributed, resolve_device
from .distill import CHECKPOINT_NAME, disable_quantization, load_teacher
from .finish import finish_run
from .loop import (
    TrainingDivergedError,
    TrainSession,
    epoch_train_metrics,
    evaluate,
    train_epoch,
    zero_sums,
)
from .recipe import build_optimizer, build_scheduler
from .state import load_quant_stats_state, load_weights, quant_stats_state, rng_state

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run returns: the selected epoch, its validation top-1 (None without a validation
    split) and its test top-1 (None until the run finished)."""

    run_dir: Path
    epochs_done: int
    test_acc: float | None
    val_acc: float | None
    selected_epoch: int | None
    interrupted: bool
    exit_code: int
    summary: str = ""
    card: dict[str, Any] | None = None

    @classmethod
    def of(cls, s: TrainSession, test_acc: float | None, exit_code: int, summary: str = "",
           card: dict[str, Any] | None = None) -> TrainResult:
        best = s.best or {}
        return cls(s.run_dir, s.epoch, test_acc, best.get("val_acc"), best.get("epoch"),
                   exit_code != 0, exit_code, summary, card)


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
    model = model.to(device)
    if cfg.fast_train:  # same values and gradients as Brevitas' forward, in training mode only
        enable_fast_train(model, cfg.fast_kernels)
    return model


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
    eval_batch = max(cfg.batch_size, 256)
    val_dl = None if data.val is None else loaders.test_loader(
        data.val, eval_batch, ctx.world_size, ctx.rank, workers, pin)
    test_dl = loaders.test_loader(data.test, eval_batch, ctx.world_size, ctx.rank, workers, pin)
    spe = loaders.steps_per_epoch(len(data.train), cfg.batch_size, ctx.world_size)
    if spe < 1:
        raise ConfigError(f"batch_size: {cfg.batch_size} exceeds the {len(data.train)} training "
                          f"samples ({ctx.world_size} process(es)); lower it")
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, cfg.conv_weight_decay)
    scheduler = build_scheduler(optimizer, cfg.epochs * spe, round(cfg.warmup_epochs * spe),
                                cfg.lr, cfg.warmup_lr, cfg.min_lr,
                                tuple(e * spe for e in cfg.restart_at))
    scaler = torch.amp.GradScaler("cuda") if cfg.amp else None
    teacher = None
    if cfg.teacher:
        teacher = load_teacher(cfg.teacher, model.cfg.input_shape, model.cfg.num_classes, device)
    augment = build_augment(resolve_augment(cfg.augment, cfg.dataset), model.cfg.img_size,
                            cfg.aug_magnitude)
    return TrainSession(cfg, ctx, device, model, net, optimizer, scheduler, scaler, teacher,
                        augment.to(device) if augment else None, train_dl, val_dl, test_dl, spe,
                        run_dir)


def save_state(s: TrainSession, data: DataBundle) -> None:
    """Write ``checkpoint.pt`` atomically (collective under DDP: every rank must call it)."""
    rngs = s.ctx.gather(rng_state())
    if not s.ctx.is_main:
        return
    train_state = {
        "epoch": s.epoch, "step_in_epoch": s.step_in_epoch, "global_step": s.global_step,
        "best": s.best, "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "scaler": s.scaler.state_dict() if s.scaler is not None else None,
        "rng": rngs, "partial": dict(s.partial), "history": list(s.history),
        "quant_stats": quant_stats_state(s.model), "world_size": s.ctx.world_size,
    }
    save_checkpoint(s.run_dir / CHECKPOINT_NAME, s.model, train_state=train_state,
                    train_config=s.cfg.to_dict(), dataset=data.name, quantize=s.cfg.quantize,
                    test_top1=None)


def _epoch_record(s: TrainSession) -> dict[str, Any]:
    val_loss = val_acc = None
    if s.val_loader is not None:
        val_loss, val_acc = evaluate(s, s.val_loader)
        if not math.isfinite(val_loss):
            raise TrainingDivergedError(
                f"training diverged in epoch {s.epoch + 1}: validation loss {val_loss}; the "
                f"last finite checkpoint is kept. Lower --lr or lengthen --warmup-epochs")
    return {"epoch": s.epoch + 1, "global_step": s.global_step, "lr": s.lr, "tau": s.tau,
            **epoch_train_metrics(s), "val_loss": val_loss, "val_acc": val_acc,
            "time": datetime.now().isoformat(timespec="seconds")}


def _log_epoch(s: TrainSession, r: dict[str, Any]) -> None:
    val = ("" if r["val_acc"] is None else
           f" | val loss {r['val_loss']:.4f} top-1 {100 * r['val_acc']:.2f} %")
    log.info("epoch %d/%d: train loss %.4f top-1 %.2f %%%s | %.1f img/s", r["epoch"],
             s.cfg.epochs, r["train_loss"], 100 * r["train_acc"], val, r["img_per_s"])


def run_epochs(s: TrainSession, data: DataBundle) -> bool:
    """Train the remaining epochs; False if a stop signal interrupted them."""
    metrics = s.run_dir / "metrics.jsonl"
    while s.epoch < s.cfg.epochs:
        if not train_epoch(s):
            save_state(s, data)
            return False
        record = _epoch_record(s)
        s.history.append(record)
        selection.update_selection(s, data, record)  # best.pt before checkpoint.pt
        s.epoch, s.step_in_epoch, s.partial = s.epoch + 1, 0, zero_sums()
        save_state(s, data)
        if s.ctx.is_main:
            report.append_metrics(metrics, record)
            _log_epoch(s, record)
        if s.epoch < s.cfg.epochs and s.ctx.any(s.stop.requested, s.device):
            return False  # signalled during evaluation: the epoch's checkpoint is saved
    return True


def _load(cfg: TrainConfig, ctx: DistContext) -> tuple[TrainConfig, DataBundle, Path]:
    """Load the data and fit the model to it; decide the run directory. Writes nothing."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    probe = resolve_config(cfg.model, **cfg.model_overrides)
    data = load_data(cfg.dataset, cfg.data_dir, tuple(probe.input_shape), probe.num_classes,
                     max_train=cfg.max_train_samples, max_test=cfg.max_test_samples,
                     seed=cfg.seed, val_samples=cfg.val_samples)
    cfg = dataclasses.replace(cfg, model_overrides=fit_model_to_data(cfg, data))
    run_dir = _new_run_dir(cfg, ctx)
    cfg = dataclasses.replace(cfg, output_dir=str(run_dir))
    size = data.img_size or probe.img_size
    log.info("%s on %s: %d train / %d validation / %d test samples, input %d×%d×%d, "
             "%d classes → %s", cfg.model, data.name, len(data.train),
             len(data.val) if data.val is not None else 0, len(data.test), data.in_channels,
             size, size, data.num_classes, run_dir)
    return cfg, data, run_dir


def _write_run_files(s: TrainSession) -> None:
    """``config.yaml`` (and a resumed run's metrics), once the run has started: until then a
    failed start leaves the run directory as it was."""
    if not s.ctx.is_main:
        return
    s.run_dir.mkdir(parents=True, exist_ok=True)
    (s.run_dir / "config.yaml").write_text(dataclasses.replace(s.cfg, resume=None).to_yaml())
    if s.cfg.resume:  # the checkpoint's history is authoritative
        (s.run_dir / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n"
                                                         for h in s.history))


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) one training job; see the module docstring."""
    ckpt = resume.check_resume(cfg) if cfg.resume else None  # a refused resume says why first
    validate(cfg)
    ctx = init_distributed("cuda" if resolve_device(cfg.device, DistContext()).type == "cuda"
                           else "cpu")
    log_filter = _MainRankOnly(ctx)
    for h in logging.getLogger().handlers:
        h.addFilter(log_filter)
    threads = torch.get_num_threads()
    try:
        return _train(cfg, ctx, ckpt)
    finally:
        torch.set_num_threads(threads)
        for h in logging.getLogger().handlers:
            h.removeFilter(log_filter)
        ctx.close()


def _train(cfg: TrainConfig, ctx: DistContext, ckpt: dict[str, Any] | None) -> TrainResult:
    if ckpt is not None:
        resume.check_world_size(ckpt, ctx)
    cfg, data, run_dir = _load(cfg, ctx)
    s = _build_session(cfg, ctx, data, run_dir, ckpt)
    if ckpt is not None:
        resume.restore_state(s, ckpt)
    _write_run_files(s)
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
        return TrainResult.of(s, None, s.stop.exit_code())
    log.info("training done in %.0f s", time.perf_counter() - t0, extra={"all_ranks": True})
    test = selection.evaluate_selected(s, data)
    if not ctx.is_main:
        return TrainResult.of(s, test["test_acc"], 0)
    summary, card = finish_run(s, data, test)
    return TrainResult.of(s, test["test_acc"], 0, summary, card)
