# SPDX-License-Identifier: BSD-3-Clause
"""hw/package.py: the deploy bundle, its tarball, and no partial bundle on errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from hw.driver.errors import BundleError, MetadataError
from hw.package import build_bundle, main
from tests.hw.helpers import example_dict, write_build

DRIVER_FILES = {"hw/__init__.py", "hw/driver/__init__.py", "hw/driver/__main__.py",
                "hw/driver/accel.py", "hw/driver/packing.py", "hw/driver/sim/device.py"}


def test_bundle_without_bitstream_is_complete_and_self_contained(tmp_path):
    build = write_build(tmp_path / "build", n_golden=5)
    b = build_bundle(build, "zcu104", tmp_path / "deploy" / "nano_zcu104")
    files = set(b.files)
    assert {"accel_meta.json", "golden/input.npy", "golden/output.npy", "README.md",
            "MANIFEST.json"} | DRIVER_FILES <= files
    assert not b.has_bitstream and "accel.bit" not in files
    assert not any("__pycache__" in f for f in files)
    meta = json.loads((b.path / "accel_meta.json").read_text())
    assert meta["files"] == {"golden_input": "golden/input.npy",
                             "golden_output": "golden/output.npy"}
    man = json.loads((b.path / "MANIFEST.json").read_text())
    assert man["has_bitstream"] is False and len(man["files"]["golden/input.npy"]["sha256"]) == 64
    readme = (b.path / "README.md").read_text()
    assert "python3 -m hw.driver verify --bundle ." in readme and "no bitstream" in readme
    with tarfile.open(b.tarball) as tar:
        names = set(tar.getnames())
    assert {f"nano_zcu104/{f}" for f in files} <= names
    # the copy of the driver runs on its own: no repository on the path. Without the HW-layer
    # ONNX it can only profile (the golden replay checks nothing), after checking the manifest
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "hw.driver", "profile", "--bundle", ".", "--sim",
                        "--batch-sizes", "1", "--repeats", "1", "--latency-runs", "2",
                        "--no-plots", "-o", str(tmp_path / "prof")],
                       cwd=b.path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"bundle: {len(man['files'])} files match MANIFEST.json" in r.stdout
    assert "backend: sim" in r.stdout and "emulator model: ReplayModel" in r.stdout
    r = subprocess.run([sys.executable, "-m", "hw.driver", "verify", "--bundle", ".", "--sim"],
                       cwd=b.path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "verify --sim needs the HW-layer ONNX model" in r.stderr


def test_bundle_with_bitstream_and_onnx(tmp_path):
    build = write_build(tmp_path / "build", bitstream=True, onnx=True)
    (build / "dataflow_partition.onnx").write_bytes(b"onnx")
    b = build_bundle(build, "zcu104", tmp_path / "out")
    assert b.has_bitstream and {"accel.bit", "accel.hwh", "hw_model.onnx"} <= set(b.files)
    assert "no bitstream" not in (b.path / "README.md").read_text()
    assert (b.path / "accel.bit").read_bytes() == b"\x00fake bitstream"


@pytest.mark.parametrize("case, error, message", [
    ("no_golden", BundleError, r"required file files.golden_output .* is missing"),
    ("bit_only", BundleError, "has accel.bit but not accel.hwh; pynq.Overlay needs both"),
    ("board", BundleError, "is for board 'zcu104', not 'pynq-z2'"),
    ("schema", MetadataError, "schema_version 3"),
    ("no_meta", MetadataError, "accel_meta.json not found"),
])
def test_errors_leave_no_partial_bundle(tmp_path, case, error, message):
    build = write_build(tmp_path / "build", bitstream=case == "bit_only")
    board = "pynq-z2" if case == "board" else "zcu104"
    if case == "no_golden":
        (build / "golden/output.npy").unlink()
    elif case == "bit_only":
        (build / "accel.hwh").unlink()
    elif case == "schema":
        (build / "accel_meta.json").write_text(json.dumps(example_dict(schema_version=3)))
    elif case == "no_meta":
        (build / "accel_meta.json").unlink()
    out_parent = tmp_path / "deploy"
    with pytest.raises(error, match=message):
        build_bundle(build, board, out_parent / "b")
    assert not out_parent.exists() or list(out_parent.iterdir()) == []


def test_existing_bundle_needs_force_and_cli_exit_codes(tmp_path, capsys):
    build = write_build(tmp_path / "build")
    out = tmp_path / "b"
    assert main(["--build-dir", str(build), "--board", "zcu104", "-o", str(out)]) == 0
    assert main(["--build-dir", str(build), "--board", "zcu104", "-o", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    np.save(build / "golden/input.npy", np.zeros((6, 28, 28, 1), np.uint8))
    assert main(["--build-dir", str(build), "--board", "zcu104", "-o", str(out), "--force"]) == 0
    assert not np.load(out / "golden/input.npy").any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "b.tar.gz", "build"]


def test_board_in_finns_spelling_packages_and_can_be_left_out(tmp_path):
    """``make package BOARD=ZCU104`` must package the build ``BOARD=ZCU104`` built."""
    build = write_build(tmp_path / "build")
    assert build_bundle(build, "ZCU104", tmp_path / "a").path.is_dir()
    assert build_bundle(build, None, tmp_path / "b").path.is_dir()  # the build's own board
    assert main(["--build-dir", str(build), "--board", "zcu999", "-o", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()
