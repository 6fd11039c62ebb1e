# SPDX-License-Identifier: BSD-3-Clause
"""``--resume RUN``: continue a run exactly where it stopped, or refuse.

``RUN`` is a run directory (``checkpoint.pt`` + ``config.yaml``); a checkpoint *file* is refused
(exit 2, nothing read or written): the run's files live beside it, and a resumed run writes
them, so the directory is what is resumed. The checkpoint's ``train_config`` is the run's
config; ``config.yaml`` is its readable copy and is rewritten only after the resumed run has
restored its state (``runner``), so a refused or failed resume leaves the run as it was.

**Exact or refused.** Every ``TrainConfig`` field says in its metadata whether a resume may
change it (``resume_safe``: device, workers, threads, export; ``resume`` itself). A resumed
config that differs from the run's in any other field (epochs, batch size, lr, model, dataset,
seed, …) is a ``ConfigError`` naming each such field with both values. So is a different
number of DDP processes (it changes the data order).

**Training longer** (``--extend-epochs N``, ``extend_config``): the run gets N more epochs as a
warm restart of its schedule: ``restart_at`` gains the run's current ``epochs`` E, and over
epochs E..E+N the learning rate warms up from ``warmup_lr`` to ``lr`` over ``warmup_epochs``
and decays by cosine to ``min_lr`` (SGDR). Optimizer moments, data order, RNG streams and the
model selection continue; epochs already trained are unchanged, and so is the progressive
binarization (a fraction of the first segment). An extended run resumes like any other.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..checkpoint import read_checkpoint
from ..errors import ConfigError
from .config import FIELDS, TrainConfig, merge
from .dist import DistContext
from .distill import CHECKPOINT_NAME
from .loop import TrainSession
from .recipe import load_scheduler_position
from .state import set_rng_state

log = logging.getLogger(__name__)

#: the fields a resume may change (declared per field in ``TrainConfig``'s metadata)
RESUME_SAFE = tuple(name for name, f in FIELDS.items() if f.metadata["resume_safe"])


def resume_dir(path: str | Path) -> Path:
    """The run directory ``path``, checked to hold a training checkpoint (else ``ConfigError``)."""
    p = Path(path)
    if p.is_file():
        hint = f"; here: --resume {p.parent}" if (p.parent / CHECKPOINT_NAME).is_file() else ""
        raise ConfigError(f"resume: {str(p)!r} is a file; --resume takes the run directory that "
                          f"holds {CHECKPOINT_NAME} and config.yaml{hint}")
    if not p.is_dir():
        raise ConfigError(f"resume: {str(p)!r} does not exist")
    if not (p / CHECKPOINT_NAME).is_file():
        raise ConfigError(f"resume: {str(p)!r} holds no {CHECKPOINT_NAME}: not a training run "
                          f"directory")
    return p


def read_training_checkpoint(run: str | Path) -> dict[str, Any]:
    """The checkpoint of run directory ``run`` (``ConfigError`` if it has no training state)."""
    path = resume_dir(run) / CHECKPOINT_NAME
    ckpt = read_checkpoint(path)
    extra = ckpt.get("extra", {})
    if "train_state" not in extra or not isinstance(extra.get("train_config"), dict):
        raise ConfigError(f"resume: {path} is a model checkpoint without training state")
    return ckpt


def stored_config(ckpt: dict[str, Any], run: str | Path) -> TrainConfig:
    """The run's config from its checkpoint, located at ``run`` (``resume`` = ``run``)."""
    values = dict(ckpt["extra"]["train_config"])
    missing = [n for n in FIELDS if n not in values and n not in RESUME_SAFE]
    if missing:
        raise ConfigError(f"resume: {run} was written by an older version without option(s) "
                          f"{', '.join(missing)}; it cannot be resumed exactly")
    values.update(output_dir=str(run), resume=str(run))
    return merge(TrainConfig(), values, f"resume: {run}/{CHECKPOINT_NAME} train_config")


def extend_config(cfg: TrainConfig, extra_epochs: int) -> TrainConfig:
    """``cfg`` trained ``extra_epochs`` longer, as a warm restart (see the module docstring)."""
    if extra_epochs < 1:
        raise ConfigError(f"extend_epochs: must be ≥ 1, got {extra_epochs}")
    return dataclasses.replace(cfg, epochs=cfg.epochs + extra_epochs,
                               restart_at=[*cfg.restart_at, cfg.epochs])


def refuse_unsafe_changes(saved: TrainConfig, cfg: TrainConfig) -> None:
    """``ConfigError`` naming every field ``cfg`` changes that a resume may not change; an
    extension of ``saved`` (``extend_config``) is the allowed change of epochs/restart_at."""
    extended = (cfg.restart_at == [*saved.restart_at, saved.epochs] and cfg.epochs > saved.epochs)
    base = extend_config(saved, cfg.epochs - saved.epochs) if extended else saved
    changed = [f"{n} {getattr(cfg, n)!r} (the run's: {getattr(base, n)!r})" for n in FIELDS
               if n not in RESUME_SAFE and getattr(cfg, n) != getattr(base, n)]
    if changed:
        raise ConfigError(
            f"resume: --resume continues {saved.resume} exactly, so these options cannot "
            f"change: {'; '.join(changed)}. Drop them (to train longer: --extend-epochs N), "
            f"or start a new run")


def check_resume(cfg: TrainConfig) -> dict[str, Any]:
    """Check that ``cfg`` resumes its run exactly; return the run's checkpoint."""
    ckpt = read_training_checkpoint(cfg.resume)
    refuse_unsafe_changes(stored_config(ckpt, cfg.resume), cfg)
    return ckpt


def check_world_size(ckpt: dict[str, Any], ctx: DistContext) -> None:
    """A resumed run needs the run's number of DDP processes (else the data order differs)."""
    world = ckpt["extra"]["train_state"]["world_size"]
    if world != ctx.world_size:
        how = f"torchrun --nproc_per_node {world}" if world > 1 else "one process (no torchrun)"
        raise ConfigError(f"resume: the run was trained by {world} process(es), this run has "
                          f"{ctx.world_size}: the data order would differ; resume it with {how}")


def restore_state(s: TrainSession, ckpt: dict[str, Any]) -> None:
    """Continue from ``ckpt`` (position, optimizer, RNG, selection); the weights are already
    loaded by the runner, and the schedule is the one ``s`` was built with (an extension's)."""
    st = ckpt["extra"]["train_state"]
    s.optimizer.load_state_dict(st["optimizer"])
    load_scheduler_position(s.scheduler, st["scheduler"])
    if s.scaler is not None and st["scaler"] is not None:
        s.scaler.load_state_dict(st["scaler"])
    s.epoch, s.step_in_epoch, s.global_step = st["epoch"], st["step_in_epoch"], st["global_step"]
    s.best, s.partial, s.history = st["best"], dict(st["partial"]), list(st["history"])
    rngs = st["rng"]
    set_rng_state(rngs[s.ctx.rank])
    log.info("resumed %s at epoch %d, step %d of %d (global step %d, lr %.3e)", s.cfg.resume,
             s.epoch + 1, s.step_in_epoch, s.steps_per_epoch, s.global_step, s.lr)
