# SPDX-License-Identifier: BSD-3-Clause
"""The end of a finished run (rank 0): curves, checked QONNX export, model card, summary."""

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
from .distill import CHECKPOINT_NAME
from .loop import TrainSession

log = logging.getLogger(__name__)


def _export(s: TrainSession, test_acc: float | None) -> dict[str, Any] | None:

    if not s.cfg.export:
        return None
    if not s.cfg.quantize:
        log.info("not exporting: a --no-quantize (float) model has no QONNX form for FINN")
        return None
    path = s.run_dir / f"{s.model.model_name}.onnx"
    rep = export_checked(s.model, path, extra={"checkpoint": str(s.run_dir / CHECKPOINT_NAME),
                                               "test_top1": test_acc})
    return {"path": path.name, "sha256": rep.sha256, "max_abs_diff": rep.max_abs_diff,
            "integer_exact": rep.integer_exact, "top1_agree": rep.top1_agree}


def build_card(s: TrainSession, data: DataBundle, onnx: dict[str, Any] | None
               ) -> dict[str, Any]:
    """The model card dict (see ``report.py`` for the files it becomes)."""
    model = s.model
    cost = count_costs(model, tuple(model.cfg.input_shape), name=model.model_name)
    last = s.history[-1] if s.history else {}
    total_seconds = sum(h["train_seconds"] for h in s.history)
    images = sum(h["img_per_s"] * h["train_seconds"] for h in s.history)
    return {
        "model": model.model_name,
        "description": get_spec(model.model_name).description,
        "model_config": config_dict(model),
        "quantize": s.cfg.quantize,
        "dataset": {"name": data.name, "source": data.source, "train_samples": len(data.train),
                    "test_samples": len(data.test), "input_shape": list(model.cfg.input_shape),
                    "num_classes": model.cfg.num_classes},
        "results": {"test_top1": last.get("test_acc"), "test_loss": last.get("test_loss"),
                    "best_test_top1": s.best_acc, "epochs": s.epoch,
                    "train_seconds": total_seconds,
                    "img_per_s": images / total_seconds if total_seconds else 0.0},
        "precision": report.precision_summary(model, cost.layers),
        "costs": cost.summary(),
        "checkpoint": {"path": CHECKPOINT_NAME,
                       "sha256": sha256_file(s.run_dir / CHECKPOINT_NAME)},
        "onnx": onnx,
        "teacher": s.cfg.teacher,
        "augmentation": resolve_augment(s.cfg.augment, s.cfg.dataset),
        "training": s.cfg.to_dict(),
        "training_yaml": s.cfg.to_yaml(),
        "world_size": s.ctx.world_size,
        "environment": {**report.environment(), "device": str(s.device)},
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def finish_run(s: TrainSession, data: DataBundle) -> tuple[str, dict[str, Any]]:
    """Plot, export and write the model card; return (summary table, card)."""
    s.model.to("cpu").eval()
    title = f"{s.model.model_name} on {data.name}"
    if s.history:
        report.plot_curves(s.history, s.run_dir / "curves.png", title)
    test_acc = s.history[-1]["test_acc"] if s.history else None
    card = build_card(s, data, _export(s, test_acc))
    report.write_model_card(s.run_dir, card)
    log.info("model card → %s", s.run_dir / "model_card.md")
    return report.summary_table(s.history, title), card
