# SPDX-License-Identifier: BSD-3-Clause
"""Model selection on the validation split, and the single test evaluation at the end.

After every epoch the model is evaluated on the validation split (``val_samples`` images held
out of the training set, ``data.split_train_val``). The selected epoch is the one with the
highest validation top-1 (ties: the lower validation loss, then the earlier epoch); its weights
and quantizer statistics are written to ``best.pt`` when it is reached. Without a validation
split (``val_samples`` 0) every epoch replaces the previous one: the final epoch is selected.
There is no early stopping: every configured epoch runs.

When training is done, ``evaluate_selected`` loads ``best.pt`` back and evaluates the test
split once, for it; the result is added to ``best.pt``. The QONNX export, the model card,
``bnn_brevitas.checkpoint.publish`` and a KD teacher given as a run directory all use
``best.pt``; ``checkpoint.pt`` stays the last training position (for ``--resume``).
"""

from __future__ import annotations

import logging
from typing import Any

from ..checkpoint import read_checkpoint, save_checkpoint
from .data import DataBundle
from .distill import BEST_NAME
from .loop import TrainSession, evaluate
from .state import load_quant_stats_state, load_weights, quant_stats_state

log = logging.getLogger(__name__)

BY_VALIDATION = "validation top-1"
BY_LAST_EPOCH = "final epoch (no validation split)"


def selected_by(s: TrainSession) -> str:
    """Which split selected the checkpoint, in words (the model card and summary say it)."""
    return BY_VALIDATION if s.val_loader is not None else BY_LAST_EPOCH


def improves(best: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """Whether the epoch of ``record`` is selected over ``best`` (see the module docstring)."""
    if best is None or record.get("val_acc") is None:
        return True
    return (record["val_acc"], -record["val_loss"]) > (best["val_acc"], -best["val_loss"])


def save_best(s: TrainSession, data: DataBundle, test: dict[str, float] | None = None) -> None:
    """Write ``best.pt``: the model now, with what the card, a teacher and publish read."""
    if not s.ctx.is_main:
        return
    test = test or {}
    save_checkpoint(s.run_dir / BEST_NAME, s.model, selected={**(s.best or {}),
                                                              "by": selected_by(s)},
                    quant_stats=quant_stats_state(s.model), train_config=s.cfg.to_dict(),
                    dataset=data.name, quantize=s.cfg.quantize,
                    test_top1=test.get("test_acc"), test_loss=test.get("test_loss"))


def update_selection(s: TrainSession, data: DataBundle, record: dict[str, Any]) -> bool:
    """Select the epoch of ``record`` if it improves on the selection; True if it did."""
    if not improves(s.best, record):
        return False
    s.best = {k: record[k] for k in ("epoch", "val_acc", "val_loss")}
    save_best(s, data)
    return True


def evaluate_selected(s: TrainSession, data: DataBundle) -> dict[str, float]:
    """Load ``best.pt`` into ``s.model`` (every rank), evaluate the test split once and record
    the result in ``best.pt``; returns ``{"test_loss", "test_acc"}``."""
    s.ctx.barrier()  # rank 0 wrote best.pt
    ckpt = read_checkpoint(s.run_dir / BEST_NAME)
    load_weights(s.model, ckpt["state_dict"], s.cfg.quantize)
    load_quant_stats_state(s.model, ckpt["extra"]["quant_stats"])
    test_loss, test_acc = evaluate(s, s.test_loader)
    test = {"test_loss": test_loss, "test_acc": test_acc}
    save_best(s, data, test)
    log.info("selected epoch %d of %d by %s; test top-1 %.2f %% (evaluated once)",
             (s.best or {}).get("epoch", s.epoch), s.cfg.epochs, selected_by(s), 100 * test_acc)
    return test
