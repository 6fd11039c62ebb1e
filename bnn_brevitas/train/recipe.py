# SPDX-License-Identifier: BSD-3-Clause
"""BNext's optimisation recipe (``../shared/notes/bnext.md`` §2), one switchable part each.

* **Two AdamW parameter groups.** Convolution kernels (4-D ``weight`` of any ``nn.Conv2d``,
  binary or not), every parameter of a binary convolution, and Brevitas' learned quantizer
  scales get ``conv_weight_decay`` (BNext: 1e-8, i.e. none); everything else (BN, PReLU,
  biases, α, FC weights) gets ``weight_decay``. The official rule is ``p.ndim == 4 or
  'binary_conv' in name``; we apply the 4-D part to conv kernels only, so the (1, C, 1, 1)-shaped
  learnable biases and α of this implementation are decayed like the biases they are.
* **Cosine schedule with linear warm-up, stepped per iteration** (``WarmupCosine``): from
  ``warmup_lr`` to ``lr`` over the warm-up steps, then ``min_lr + (lr - min_lr)·(1 + cos πu)/2``
  for u = progress through the remaining steps. BNext uses timm's per-epoch version of the
  same curve (5 warm-up epochs of 512, lr 1e-3 → 1e-7). With ``restarts`` (``restart_at``,
  ``--extend-epochs``) the schedule is a sequence of such segments, each a warm restart
  (SGDR): warm-up from ``warmup_lr`` to ``lr``, then cosine to ``min_lr`` by its end.
* **Progressive binarization** (``binarization_temperature``): BNext multiplies τ by 0.9 after
  every epoch, starting at 1, and weights are exactly ±1 once τ < 1e-7 (epoch 153 of 512).
  Here τ(t) = 1e-7^(t / t_b) per step, t_b = ``binarize_at``·(steps of the first schedule
  segment: all steps without restarts, so extending a run never re-opens it), and τ = 0 (exact
  sign) from t_b on: with ``binarize_at = 153/512`` this is 0.9^(epoch) sampled per step.
  Eval mode and export are always exactly binary (``bnn_brevitas.quant.ProgressiveBinaryQuant``).
* **Gradient clipping** to global norm ``grad_clip`` (BNext: 5).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import torch
from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling
from torch import nn

#: τ below which BNext's weight binarizer switches to the exact sign
TAU_EXACT = 1e-7


def param_groups(model: nn.Module, weight_decay: float, conv_weight_decay: float
                 ) -> list[dict]:
    """BNext's two AdamW groups (see the module docstring); each parameter appears once."""
    low: dict[int, nn.Parameter] = {}
    for mname, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.weight.dim() == 4:
            low[id(m.weight)] = m.weight
        if mname.split(".")[-1] == "binary_conv" or isinstance(m, ParameterFromRuntimeStatsScaling):
            for p in m.parameters():
                low[id(p)] = p
    high = [p for p in model.parameters() if id(p) not in low and p.requires_grad]
    low_list = [p for p in model.parameters() if id(p) in low and p.requires_grad]
    return [{"params": low_list, "weight_decay": conv_weight_decay, "name": "conv_binary"},
            {"params": high, "weight_decay": weight_decay, "name": "other"}]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, conv_weight_decay: float
                    ) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, weight_decay, conv_weight_decay), lr=lr)


@dataclass
class WarmupCosine:
    """Learning-rate *factor* per step (for ``LambdaLR``; picklable, state = plain numbers).

    ``restarts``: the steps at which a new warm-up + cosine segment begins (none: one segment
    over ``total_steps``); every segment has ``warmup_steps`` of warm-up."""

    total_steps: int
    warmup_steps: int
    lr: float
    warmup_lr: float
    min_lr: float
    restarts: tuple[int, ...] = ()

    def lr_at(self, step: int) -> float:
        """The learning rate used by optimizer step ``step`` (0-based)."""
        starts = (0, *self.restarts)
        i = bisect.bisect_right(starts, step) - 1
        end = starts[i + 1] if i + 1 < len(starts) else self.total_steps
        step, total = step - starts[i], end - starts[i]
        if step < self.warmup_steps:
            return self.warmup_lr + (self.lr - self.warmup_lr) * step / self.warmup_steps
        span = max(total - self.warmup_steps, 1)
        u = min((step - self.warmup_steps) / span, 1.0)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * u))

    def __call__(self, step: int) -> float:
        return self.lr_at(step) / self.lr


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                    lr: float, warmup_lr: float, min_lr: float, restarts: tuple[int, ...] = ()
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration warm-up + cosine (segments); call ``.step()`` after every optimizer step."""
    fn = WarmupCosine(total_steps, warmup_steps, lr, warmup_lr, min_lr, tuple(restarts))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [fn] * len(optimizer.param_groups))


def load_scheduler_position(scheduler: torch.optim.lr_scheduler.LambdaLR,
                            state: dict) -> None:
    """Restore a scheduler's position (``last_epoch``) but keep the schedule it was built with,
    and set every group's learning rate from that schedule. ``LambdaLR.load_state_dict`` would
    also overwrite the schedule with the saved one, which is wrong for an extended run."""
    scheduler.load_state_dict({**state, "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
    groups = scheduler.optimizer.param_groups
    for group, base, fn in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * fn(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in groups]


def binarization_temperature(step: int, total_steps: int, binarize_at: float,
                             progressive: bool = True) -> float:
    """τ for optimizer step ``step``: 1 at step 0, 1e-7^(t/t_b) before t_b, exactly 0 after."""
    if not progressive:
        return 0.0
    t_b = binarize_at * total_steps
    if step >= t_b:
        return 0.0
    return TAU_EXACT ** (step / t_b)


def clip_gradients(model: nn.Module, max_norm: float) -> float:
    """Clip the global gradient norm to ``max_norm`` (0: only measure); return the norm."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return 0.0
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params])))
