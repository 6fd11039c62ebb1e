# SPDX-License-Identifier: BSD-3-Clause
"""python -m hw.driver: run / verify / profile with --sim, and one-line errors (exit 2).

``run`` and ``verify`` emulate with the HW-layer ONNX (the one-MVAU build); ``profile`` may use
the golden replay (the example build has no ONNX)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hw.driver.cli import main
from tests.hw.helpers import (MVAU_DICT, W_MVAU, make_mvau_onnx, write_build,
                              write_mvau_build)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def build(tmp_path):
    return write_build(tmp_path / "build", n_golden=8)


@pytest.fixture
def mvau_build(tmp_path):
    return write_mvau_build(tmp_path / "mvau", n_golden=8)


def test_run_writes_predictions_and_top1(mvau_build, tmp_path, capsys):
    x = np.load(mvau_build / "golden/input.npy")
    labels = np.argmax(x.astype(np.int64) @ W_MVAU, axis=1)
    labels[:2] = (labels[:2] + 1) % 4  # two wrong labels -> 6/8
    np.save(tmp_path / "y.npy", labels)
    out = tmp_path / "preds.npy"
    rc = main(["run", "--bundle", str(mvau_build), "--sim", "--input",
               str(mvau_build / "golden/input.npy"), "--labels", str(tmp_path / "y.npy"),
               "--batch", "3", "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "backend: sim" in text and "emulator, not hardware" in text
    assert "emulator model: OnnxModel" in text and "files not checked" in text
    assert "top-1: 0.7500 (6/8)" in text
    np.testing.assert_array_equal(np.load(out), np.argmax(x.astype(np.int64) @ W_MVAU, axis=1))


def test_verify_with_the_onnx_model_is_bit_exact_and_detects_a_wrong_golden(tmp_path, capsys):
    w = np.random.default_rng(5).integers(-2, 2, size=(16, 4))
    make_mvau_onnx(tmp_path / "mvau.onnx", w)
    d = dict(MVAU_DICT, files={"hw_onnx": "mvau.onnx", "golden_input": "gi.npy",
                               "golden_output": "go.npy"})
    (tmp_path / "accel_meta.json").write_text(json.dumps(d))
    x = np.random.default_rng(1).integers(0, 256, size=(6, 16), dtype=np.uint8)
    np.save(tmp_path / "gi.npy", x)
    np.save(tmp_path / "go.npy", x.astype(np.int64) @ w)
    args = ["verify", "--bundle", str(tmp_path), "--sim", "--sim-model", "onnx"]
    assert main(args) == 0
    assert "golden check: bit-exact (6 samples)" in capsys.readouterr().out
    go = np.load(tmp_path / "go.npy")
    go[3, 0] += 1
    np.save(tmp_path / "go.npy", go)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "golden check: MISMATCH (6 samples)" in out and "first mismatching sample: 3" in out


def test_profile_writes_labelled_json_markdown_and_plots(build, tmp_path, capsys):
    out = tmp_path / "prof"
    rc = main(["profile", "--bundle", str(build), "--sim", "--batch-sizes", "1,4,16",
               "--repeats", "3", "--latency-runs", "20", "-o", str(out)])
    assert rc == 0
    rep = json.loads((out / "profile.json").read_text())
    assert rep["backend"] == "sim" and "NOT hardware" in rep["backend_note"]
    assert [t["batch"] for t in rep["throughput"]] == [1, 4, 16]
    assert all(t["backend"] == "sim" and t["fps"] > 0 and t["dram_in_mb_s"] > 0
               for t in rep["throughput"])
    assert set(rep["throughput"][0]["breakdown_ms"]) == {
        "pack", "copy_in_flush", "accelerator", "invalidate_copy_out", "unpack"}
    lat = rep["latency"]
    assert lat["backend"] == "sim" and lat["accelerator_us"]["runs"] == 20
    assert lat["accelerator_us"]["p50"] <= lat["accelerator_us"]["p99"] <= \
        lat["accelerator_us"]["max"]
    assert rep["power"] == {"available": False,
                            "reason": "backend sim: the emulator has no power rails"}
    assert rep["clock"]["requested_mhz"] == 200.0 and rep["clock"]["read_back_mhz"] == 187.498125
    est = rep["estimated_hardware"]
    assert "not measured" in est["source"] and est["fps"] == pytest.approx(200e6 / 12345)
    assert rep["sim"]["model"] == "ReplayModel" and "checks nothing" in rep["sim"]["model_note"]
    assert "emulator model: ReplayModel (golden replay" in capsys.readouterr().out
    md = (out / "profile.md").read_text()
    assert "**Backend: sim**" in md and "FINN analytical estimate, not measured" in md
    pytest.importorskip("matplotlib")
    assert rep["plots"] == ["latency.png", "throughput.png"]
    assert (out / "latency.png").read_bytes()[:4] == b"\x89PNG"


def _run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "hw.driver", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case, message", [
    ("missing_bundle", "error: bundle folder"),
    ("schema", "error: accel_meta.json has schema_version 2; this driver reads version 1"),
    ("shape", r"error: input global_in has shape (3, 8); expected (N, 16)"),
    ("range", "error: input global_in contains 300, outside UINT8 [0, 255]"),
    ("labels", "error: labels must be an integer array of shape (3,)"),
    ("no_bitstream", "error: bitfile"),
    ("replay", "error: run --sim refuses the replay model"),
    ("no_onnx", "error: run --sim needs the HW-layer ONNX model (files.hw_onnx)"),
])
def test_bad_input_exits_2_with_one_line_and_no_output_file(mvau_build, tmp_path, case, message):
    x = np.random.default_rng(0).integers(0, 256, size=(3, 16), dtype=np.uint8)
    args = ["run", "--bundle", str(mvau_build), "--sim", "--input", str(tmp_path / "x.npy"),
            "-o", str(tmp_path / "preds.npy")]
    if case == "missing_bundle":
        args[2] = str(tmp_path / "nope")
    elif case == "schema":
        (mvau_build / "accel_meta.json").write_text(json.dumps(dict(MVAU_DICT, schema_version=2)))
    elif case == "shape":
        x = x[:, :8]
    elif case == "range":
        x = x.astype(np.int32) + 300 - x.max()
    elif case == "labels":
        np.save(tmp_path / "y.npy", np.zeros(4, np.int64))
        args += ["--labels", str(tmp_path / "y.npy")]
    elif case == "no_bitstream":
        args.remove("--sim")
    elif case == "replay":
        args += ["--sim-model", "replay"]
    elif case == "no_onnx":
        args[2] = str(write_build(tmp_path / "example"))
    np.save(tmp_path / "x.npy", x)
    r = _run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "preds.npy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".preds")]


def test_help_lists_the_subcommands():
    r = _run_cli("--help")
    assert r.returncode == 0 and "{run,verify,profile,bench-packing}" in r.stdout


def test_bench_packing_needs_only_the_metadata(capsys):
    from tests.hw.helpers import FIXTURES

    assert main(["bench-packing", "--bundle", str(FIXTURES), "--batch-sizes", "2",
                 "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "global_in UINT8 [28, 28, 1], global_out INT24 [10]" in out
    assert "| 2 | native |" in out and "| 2 | float32 |" in out
