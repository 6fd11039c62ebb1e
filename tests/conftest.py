# SPDX-License-Identifier: BSD-3-Clause
"""Shared fixtures: a fixed seed, calibrated small models, and the dataset marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from bnn_brevitas.train.data import FASHION_MNIST_DIR

#: the test data: Debian's package unless BNN_FMNIST_DIR points elsewhere (tests only)
FMNIST_DIR = Path(os.environ.get("BNN_FMNIST_DIR", FASHION_MNIST_DIR))


def pytest_collection_modifyitems(config, items):
    has_data = (FMNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file()
    skip = pytest.mark.skip(reason=f"Fashion-MNIST not found in {FMNIST_DIR} "
                                   "(apt-get install dataset-fashion-mnist)")
    for item in items:
        if "dataset" in item.keywords and not has_data:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def calibrate(model: torch.nn.Module, steps: int = 3, batch: int = 8) -> torch.nn.Module:
    """A few train-mode passes so stats-initialised quantizer scales and BN stats are realistic,
    then random BN statistics so thresholds are non-trivial; returns the model in eval mode."""
    from bnn_brevitas.models.blocks import LearnableBias

    model.train()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LearnableBias):
                m.bias.uniform_(-0.2, 0.2)
        for _ in range(steps):
            model(torch.rand(batch, *model.cfg.input_shape))
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model.eval()


# -- compiled builds shared by the flow, verify and driver tests (each is built once) ---------

@pytest.fixture(scope="session")
def cnv_build(tmp_path_factory):
    """cnv_w1a1 adapted to 28×28×1, compiled through every tool-free step (about 40 s)."""
    from flows.config import FlowConfig
    from flows.pipeline import run_flow

    cfg = FlowConfig(model="cnv_w1a1", model_overrides={"in_channels": 1, "img_size": 28},
                     output_dir=tmp_path_factory.mktemp("cnv") / "build")
    run_flow(cfg)
    return cfg


@pytest.fixture(scope="session")
def nano_build(tmp_path_factory):
    """bnext_nano_hw (fresh, calibrated), compiled through every tool-free step (minutes)."""
    from flows.config import FlowConfig
    from flows.pipeline import run_flow

    cfg = FlowConfig(model="bnext_nano_hw", output_dir=tmp_path_factory.mktemp("nano") / "build")
    run_flow(cfg)
    return cfg
