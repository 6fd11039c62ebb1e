# SPDX-License-Identifier: BSD-3-Clause
"""Compiler → deploy bundle → driver: the real driver code, through the strict emulator running
the HW-layer ONNX, reproduces the partition's outputs bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw.driver.cli import main as driver_main
from hw.package import build_bundle


@pytest.fixture(params=["cnv_build", "nano_build"])
def bundle(request, tmp_path):
    cfg = request.getfixturevalue(request.param)
    return cfg, build_bundle(cfg.out_dir, "zcu104", tmp_path / "bundle")


def test_emulated_accelerator_matches_the_hw_layer_graph(bundle, capsys):
    cfg, b = bundle
    assert not b.has_bitstream  # no Vivado here: only the driver, metadata and vectors
    meta = json.loads((b.path / "accel_meta.json").read_text())
    assert meta["model"] == cfg.name and meta["board"] == "zcu104"
    assert driver_main(["verify", "--bundle", str(b.path), "--sim", "--sim-model", "onnx"]) == 0
    assert "bit-exact" in capsys.readouterr().out


def test_run_writes_predictions_of_the_golden_inputs(bundle, tmp_path):
    cfg, b = bundle
    x = np.load(b.path / "golden" / "input.npy")[:3]
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "pred.npy"
    rc = driver_main(["run", "--bundle", str(b.path), "--sim", "--sim-model", "onnx",
                      "--input", str(tmp_path / "x.npy"), "-o", str(out)])
    golden = np.load(b.path / "golden" / "output.npy")[:3]
    assert rc == 0 and np.array_equal(np.load(out), golden.reshape(3, -1).argmax(-1))
