# SPDX-License-Identifier: BSD-3-Clause
"""The committed trained checkpoints: intact (sha256), loadable, and as accurate as recorded;
and ``bnn_brevitas.checkpoint.publish`` which writes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bnn_brevitas.checkpoint import load_model, publish, read_checkpoint, save_checkpoint
from bnn_brevitas.models import create_model
from tests.conftest import FMNIST_DIR

CKPTS = Path(__file__).resolve().parents[2] / "checkpoints"
SUMS = dict(reversed(line.split("  ")) for line in (CKPTS / "SHA256SUMS").read_text().splitlines())
FMNIST = FMNIST_DIR


@pytest.mark.parametrize("name", sorted(SUMS))
def test_committed_checkpoint_is_intact_and_loads(name):
    path = CKPTS / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SUMS[name]
    assert path.stat().st_size < 20 * 2**20
    model = load_model(path)
    extra = read_checkpoint(path)["extra"]
    assert extra["dataset"]["name"] == "fashion_mnist"
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.dataset
@pytest.mark.parametrize("name", sorted(SUMS))
def test_committed_checkpoint_reaches_its_recorded_accuracy(name):
    from bnn_brevitas.train.data import read_idx

    model = load_model(CKPTS / name)
    x = read_idx(FMNIST / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(FMNIST / "t10k-labels-idx1-ubyte.gz")
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i:i + 500, None])).argmax(-1)
                          for i in range(0, len(x), 500)]).numpy()
    recorded = read_checkpoint(CKPTS / name)["extra"]["results"]["test_top1"]
    assert float(np.mean(pred == y)) == pytest.approx(recorded, abs=1e-4)


def test_publish_writes_weights_and_sums(tmp_path):
    from tests.conftest import calibrate

    model = calibrate(create_model("bnext_nano_hw", widths=[8, 16, 16]))
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.pt", model, optimizer={"lr": 1.0})
    (run / "model_card.json").write_text(json.dumps(
        {"dataset": {"name": "synthetic"}, "results": {"test_top1": 0.5}, "other": 1}))
    digest = publish(run, tmp_path / "pub" / "m.pt")
    assert (tmp_path / "pub" / "SHA256SUMS").read_text() == f"{digest}  m.pt\n"
    extra = read_checkpoint(tmp_path / "pub" / "m.pt")["extra"]
    assert extra["results"] == {"test_top1": 0.5} and "optimizer" not in extra
    assert extra["source"] == str(run / "checkpoint.pt")
    digest2 = publish(run / "checkpoint.pt", tmp_path / "pub" / "m.pt")  # replaces its line
    assert (tmp_path / "pub" / "SHA256SUMS").read_text() == f"{digest2}  m.pt\n"
