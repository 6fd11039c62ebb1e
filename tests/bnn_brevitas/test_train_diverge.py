# SPDX-License-Identifier: BSD-3-Clause
"""Non-finite values: rejected by config validation, and divergence stops training (exit 1)."""

from __future__ import annotations

import math

import pytest
import torch

from bnn_brevitas.errors import ConfigError
from bnn_brevitas.train import TrainConfig, cli, loop, validate
from bnn_brevitas.train.config import FIELDS, field_type, merge
from tests.bnn_brevitas.test_train_resume import RUN
from tests.bnn_brevitas.test_train_run import load

FLOATS = [n for n in FIELDS if field_type(n)[0] is float]


@pytest.fixture(autouse=True)
def _keep_caplog(monkeypatch):
    monkeypatch.setattr(cli, "setup_logging", lambda verbose=False: None)


def test_every_numeric_field_declares_its_range():
    numeric = [n for n in FIELDS if field_type(n)[0] in (int, float)]
    assert [n for n in numeric if FIELDS[n].metadata["bounds"] is None] == []
    assert FLOATS  # lr, weight decays, warm-up, clip, binarize_at, KD


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", FLOATS)
def test_every_float_field_rejects_non_finite_values(name, value):
    with pytest.raises(ConfigError, match=rf"^{name}: must be a finite number, got -?(nan|inf)$"):
        validate(merge(TrainConfig(), {name: value}, "test"))


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_lr_inf_or_nan_exits_2_before_anything_is_written(value, tmp_path, caplog):
    run = tmp_path / "run"
    assert cli.main([*RUN, f"--lr={value}", "-o", str(run)]) == 2
    assert "lr: must be a finite number" in caplog.text and not run.exists()


def _diverge_at(monkeypatch, attr: str, call: int) -> None:
    """Make ``loop.<attr>`` (the loss or the gradient norm) non-finite at its ``call``-th use."""
    real, calls = getattr(loop, attr), []

    def patched(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) != call:
            return out
        return out * math.nan if isinstance(out, float) else out * torch.tensor(math.nan)

    monkeypatch.setattr(loop, attr, patched)


@pytest.mark.parametrize("attr,what", [("training_loss", "loss nan"),
                                       ("clip_gradients", "gradient norm nan")])
def test_divergence_exits_1_and_keeps_the_last_finite_checkpoint(attr, what, tmp_path,
                                                                  monkeypatch, caplog):
    _diverge_at(monkeypatch, attr, call=11)  # epoch 2, step 3 of 8
    run = tmp_path / "run"
    assert cli.main([*RUN, "--epochs", "2", "-o", str(run)]) == 1
    assert "training diverged at epoch 2, step 3/8" in caplog.text and what in caplog.text
    assert f"the last finite checkpoint is kept: {run / 'checkpoint.pt'}" in caplog.text
    ckpt = load(run)
    assert ckpt["extra"]["train_state"]["epoch"] == 1  # the end of epoch 1, nothing later
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()
               if v.is_floating_point())
    assert (run / "best.pt").is_file() and not (run / "model_card.json").exists()
