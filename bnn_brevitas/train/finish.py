# SPDX-License-Identifier: BSD-3-Clause
"""The end of a finished run (rank 0): curves, checked QONNX export, model card, summary.

They describe the selected model (``selection.py``: ``best.pt``, already loaded into the
session's model), with its validation and test results side by side and the split that
selected it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ..checkpoint import config_dict
from ..export import export_checked
from ..metrics import count_costs
from ..models import get_spec
from ..utils import sha256_file
from . import report
from .augment import resolve_augment
from .data import DataBundle
from .distill import BEST_NAME, CHECKPOINT_NAME
from .loop import TrainSession
from .selection import selected_by

log = logging.getLogger(__name__)


def _export(s: TrainSession, test_acc: float | None) -> dict[str, Any] | None:

    if not s.cfg.export:
        return None
    if not s.cfg.quantize:
        log.info("not exporting: a --no-quantize (float) model has no QONNX form for FINN")
        return None
    path = s.run_dir / f"{s.model.model_name}.onnx"
    rep = export_checked(s.model, path, extra={"checkpoint": str(s.run_dir / BEST_NAME),
                                               "test_top1": test_acc})
    return {"path": path.name, "sha256": rep.sha256, "max_abs_diff": rep.max_abs_diff,
            "integer_exact": rep.integer_exact, "top1_agree": rep.top1_agree}


def _results(s: TrainSession, test: dict[str, float]) -> dict[str, Any]:
    best = s.best or {}
    total_seconds = sum(h["train_seconds"] for h in s.history)
    images = sum(h["img_per_s"] * h["train_seconds"] for h in s.history)
    return {"selected_by": selected_by(s), "selected_epoch": best.get("epoch"),
            "val_top1": best.get("val_acc"), "val_loss": best.get("val_loss"),
            "test_top1": test["test_acc"], "test_loss": test["test_loss"], "epochs": s.epoch,
            "train_seconds": total_seconds,
            "img_per_s": images / total_seconds if total_seconds else 0.0}


def build_card(s: TrainSession, data: DataBundle, test: dict[str, float],
               onnx: dict[str, Any] | None) -> dict[str, Any]:
    """The model card dict (see ``report.py`` for the files it becomes)."""
    model = s.model
    cost = count_costs(model, tuple(model.cfg.input_shape), name=model.model_name)
    return {
        "model": model.model_name,
        "description": get_spec(model.model_name).description,
        "model_config": config_dict(model),
        "quantize": s.cfg.quantize,
        "dataset": {"name": data.name, "source": data.source, "train_samples": len(data.train),
                    "val_samples": len(data.val) if data.val is not None else 0,
                    "test_samples": len(data.test), "input_shape": list(model.cfg.input_shape),
                    "num_classes": model.cfg.num_classes},
        "results": _results(s, test),
        "precision": report.precision_summary(model, cost.layers),
        "costs": cost.summary(),
        "checkpoint": {"path": BEST_NAME, "sha256": sha256_file(s.run_dir / BEST_NAME),
                       "training_state": CHECKPOINT_NAME},
        "onnx": onnx,
        "teacher": s.cfg.teacher,
        "augmentation": resolve_augment(s.cfg.augment, s.cfg.dataset),
        "training": s.cfg.to_dict(),
        "training_yaml": s.cfg.to_yaml(),
        "world_size": s.ctx.world_size,
        "environment": {**report.environment(), "device": str(s.device)},
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def finish_run(s: TrainSession, data: DataBundle, test: dict[str, float]
               ) -> tuple[str, dict[str, Any]]:
    """Plot, export and write the model card of the selected model (``test``: its one test
    evaluation); return (summary table, card)."""
    s.model.to("cpu").eval()
    title = f"{s.model.model_name} on {data.name}"
    if s.history:
        report.plot_curves(s.history, s.run_dir / "curves.png", title)
    card = build_card(s, data, test, _export(s, test["test_acc"]))
    report.write_model_card(s.run_dir, card)
    log.info("model card → %s", s.run_dir / "model_card.md")
    return report.summary_table(s.history, title, card["results"]), card
