# SPDX-License-Identifier: BSD-3-Clause
"""Knowledge distillation: the teacher and the loss.

**Loss.** With student logits s, teacher logits t and temperature T,

    L_KD = T² · mean_batch KL( softmax(t/T) ‖ softmax(s/T) )
    L    = α · L_KD + (1 − α) · CE(s, labels)

BNext's ``DistributionLoss`` is the soft cross-entropy −Σ softmax(t)·log softmax(s) at T = 1
with α = 1 (no labels). It differs from the KL form only by the teacher's entropy, a constant
for the student, so both have the same gradient; the KL form is 0 when the student matches.
The T² factor keeps the gradient scale independent of T (Hinton et al. 2015).

**Teacher.** Any checkpoint written by ``python -m bnn_brevitas.train`` (a file, or a run
directory: its selected model ``best.pt``, else its last ``checkpoint.pt``), of any registry model with the same input shape and
number of classes — e.g. ``bnext_nano`` trained with ``--no-quantize`` (float) first. It runs
frozen, in eval mode, on the same augmented batch as the student.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import build_model, read_checkpoint
from ..errors import ConfigError, UserError
from .state import load_weights

log = logging.getLogger(__name__)

#: a run's training checkpoint (last position, resumable) and its selected model
CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"


def kd_loss(student: Tensor, teacher: Tensor, temperature: float = 1.0) -> Tensor:
    """T² · batch-mean KL(softmax(teacher/T) ‖ softmax(student/T))."""
    t = temperature
    log_p_s = F.log_softmax(student.float() / t, dim=-1)
    log_p_t = F.log_softmax(teacher.float() / t, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    return kl * (t * t)


def training_loss(logits: Tensor, labels: Tensor, teacher_logits: Tensor | None,
                  temperature: float, alpha: float) -> Tensor:
    """Label cross-entropy, or α·KD + (1 − α)·CE when there is a teacher."""
    if teacher_logits is None:
        return F.cross_entropy(logits.float(), labels)
    loss = alpha * kd_loss(logits, teacher_logits, temperature)
    if alpha < 1.0:
        loss = loss + (1.0 - alpha) * F.cross_entropy(logits.float(), labels)
    return loss


def checkpoint_path(path: str | Path, names: tuple[str, ...] = (CHECKPOINT_NAME,)) -> Path:
    """A checkpoint file, or the first of ``names`` that a run directory holds."""
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in names if (path / n).is_file()), path / names[-1])
    if not path.is_file():
        raise UserError(f"no checkpoint at {str(path)!r}")
    return path


def disable_quantization(model: nn.Module) -> int:
    """Bypass every Brevitas quantizer (weights, activations) of ``model``; return how many.

    Quantized activations keep their fused activation function (e.g. the ReLU of a QuantReLU);
    binary sign quantizers become the identity, so a BNext network stays non-linear only through
    its PReLUs. Used for ``--no-quantize`` runs and to rebuild their checkpoints as teachers.
    """
    from brevitas.proxy.quant_proxy import QuantProxyFromInjector

    n = 0
    for m in model.modules():
        if isinstance(m, QuantProxyFromInjector):
            m.disable_quant = True
            n += 1
    return n


def load_teacher(path: str | Path, input_shape: tuple[int, ...], num_classes: int,
                 device: torch.device) -> nn.Module:
    """Rebuild a checkpoint's model as a frozen eval-mode teacher; check it fits the data."""
    file = checkpoint_path(path, (BEST_NAME, CHECKPOINT_NAME))
    ckpt = read_checkpoint(file)
    model = build_model(ckpt, file)
    quantize = ckpt.get("extra", {}).get("quantize", True)
    load_weights(model, ckpt["state_dict"], quantize)
    if not quantize:
        disable_quantization(model)
    shape, classes = tuple(model.cfg.input_shape), model.cfg.num_classes
    if shape != tuple(input_shape) or classes != num_classes:
        raise ConfigError(f"teacher: {ckpt['model']} takes {shape} and predicts {classes} "
                          f"classes; the student needs {tuple(input_shape)} and {num_classes}")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    acc = ckpt.get("extra", {}).get("test_top1")
    log.info("teacher %s from %s (test top-1 %s)", ckpt["model"], path,
             f"{acc:.2%}" if isinstance(acc, float) else "unknown")
    return model


@torch.no_grad()
def teacher_logits(teacher: nn.Module | None, x: Tensor) -> Tensor | None:
    return None if teacher is None else teacher(x)
