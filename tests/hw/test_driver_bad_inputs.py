# SPDX-License-Identifier: BSD-3-Clause
"""``python -m hw.driver`` refuses what it cannot use: every bad input is one ``error:`` line
and a documented exit code (``hw/driver/errors.py``), never a traceback, never an output file.

One table per concern: arguments and data, bundle contents (paths, models, manifest), and
the golden check (a tampered golden output is a mismatch, never "bit-exact")."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from hw.driver.cli import main
from hw.package import build_bundle
from tests.hw.helpers import MVAU_DICT, write_build, write_mvau_build


pytestmark = pytest.mark.filterwarnings("ignore:No devices found")  # pynq, off-board


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, the error line or "", stdout) of ``python -m hw.driver ARGV``."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse: usage + exit 2
        code = e.code
    cap = capsys.readouterr()
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("error:")
              or ": error:" in ln]
    assert "Traceback" not in cap.err, cap.err
    assert len(errors) <= 1, cap.err
    return code, errors[0] if errors else "", cap.out


def _meta(build: Path, **changes) -> None:
    d = json.loads((build / "accel_meta.json").read_text())
    d.update(changes)
    (build / "accel_meta.json").write_text(json.dumps(d))


def _files(build: Path, **files) -> None:
    d = json.loads((build / "accel_meta.json").read_text())
    _meta(build, files=dict(d["files"], **files))


def _bad_onnx(build: Path) -> None:
    node = helper.make_node("NoSuchOp", ["global_in"], ["global_out"])
    graph = helper.make_graph(
        [node], "bad", [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, 4])])
    (build / "mvau.onnx").write_bytes(helper.make_model(graph).SerializeToString())


def _link_out(build: Path) -> None:
    outside = build.parent / "outside.onnx"
    outside.write_bytes((build / "mvau.onnx").read_bytes())
    (build / "mvau.onnx").unlink()
    os.symlink(outside, build / "mvau.onnx")


X = np.random.default_rng(0).integers(0, 256, size=(3, 16), dtype=np.uint8)
#: case: (prepare(build, tmp) -> argv, exit code, fragment of the error line)
Case = tuple[Callable[[Path, Path], list], int, str]


def _run(*extra, x=X):
    def prepare(b: Path, t: Path) -> list:
        np.save(t / "x.npy", x)
        return ["run", "--bundle", b, "--sim", "--input", t / "x.npy", *extra]
    return prepare


def _then(setup, argv_of):
    def prepare(b: Path, t: Path) -> list:
        setup(b, t)
        return argv_of(b, t)
    return prepare


RUN: dict[str, Case] = {
    "missing_bundle": (lambda b, t: _run()(t / "nope", t), 2, "bundle folder"),
    "output_is_a_folder": (_run("-o", "."), 2, "is a folder; give a file path"),
    "output_under_a_file": (_then(lambda b, t: (t / "f").write_text(""),
                                  lambda b, t: _run("-o", t / "f" / "p.npy")(b, t)), 2,
                            "is not a writable folder"),
    "input_missing": (lambda b, t: ["run", "--bundle", b, "--sim", "--input", t / "no.npy"], 2,
                      "input file"),
    "input_corrupt": (_then(lambda b, t: (t / "c.npy").write_bytes(b"\x93NUMPY garbage"),
                            lambda b, t: ["run", "--bundle", b, "--sim", "--input",
                                          t / "c.npy"]), 2, "cannot read input"),
    "input_pickled": (_then(lambda b, t: np.save(t / "o.npy", np.array([{}], object)),
                            lambda b, t: ["run", "--bundle", b, "--sim", "--input",
                                          t / "o.npy"]), 2, "cannot read input"),
    "input_empty": (_run(x=X[:0]), 2, "has shape (0, 16)"),
    "input_shape": (_run(x=X[:, :8]), 2, "has shape (3, 8); expected (N, 16)"),
    "input_range": (_run(x=X.astype(np.int32) - 300), 2, "outside UINT8 [0, 255]"),
    "input_nan": (_run(x=np.full((3, 16), np.nan)), 2, "NaN or infinity"),
    "input_fraction": (_run(x=np.full((3, 16), 1.5)), 2, "non-integer value 1.5"),
    "batch_zero": (_run("--batch", "0"), 2, "batch size must be an int in [1, 64]"),
    "batch_too_big": (_run("--batch", "65"), 2, "batch size must be an int in [1, 64]"),
    "batch_not_int": (_run("--batch", "two"), 2, "invalid int value"),
    "labels_float": (_then(lambda b, t: np.save(t / "y.npy", np.zeros(3)),
                           lambda b, t: _run("--labels", t / "y.npy")(b, t)), 2,
                     "labels must be an integer array"),
    "float_input_no_quant": (_run("--float-input"), 2, "no input_quant"),
    "sim_model_unknown": (_run("--sim-model", "magic"), 2, "invalid choice: 'magic'"),
    "sim_model_replay": (_run("--sim-model", "replay"), 2, "run --sim refuses the replay model"),
    "no_onnx_model": (lambda b, t: _run()(write_build(t / "ex"), t), 2,
                      "run --sim needs the HW-layer ONNX model"),
    "corrupt_onnx": (_then(lambda b, t: (b / "mvau.onnx").write_bytes(b"not onnx"), _run()), 2,
                     "mvau.onnx as an ONNX model"),
    "onnx_cannot_run": (_then(lambda b, t: _bad_onnx(b), _run()), 2,
                        "FINN cannot execute mvau.onnx"),
    "meta_not_json": (_then(lambda b, t: (b / "accel_meta.json").write_text("{"), _run()), 2,
                      "cannot read"),
    "path_parent": (_then(lambda b, t: _files(b, hw_onnx="../mvau.onnx"), _run()), 2,
                    "files.hw_onnx: '../mvau.onnx' is not a path inside the bundle"),
    "path_absolute": (_then(lambda b, t: _files(b, golden_input="/etc/hostname"), _run()), 2,
                      "files.golden_input: '/etc/hostname' is not a path inside the bundle"),
    "path_windows": (_then(lambda b, t: _files(b, bitfile="C:\\accel.bit"), _run()), 2,
                     "is not a path inside the bundle"),
    "path_backslash_up": (_then(lambda b, t: _files(b, hwh="golden\\..\\..\\x"), _run()), 2,
                          "is not a path inside the bundle"),
    "path_link_out": (_then(lambda b, t: _link_out(b), _run()), 2,
                      "leads outside the bundle"),
    "no_board": (_then(lambda b, t: [(b / f).write_text("x") for f in ("a.bit", "a.hwh")]
                       and _files(b, bitfile="a.bit", hwh="a.hwh"),
                       lambda b, t: [a for a in _run()(b, t) if a != "--sim"]), 3,
                 "cannot load the overlay"),
    "no_bitstream": (lambda b, t: [a for a in _run()(b, t) if a != "--sim"], 2,
                     "bitfile not in the bundle"),
}

VERIFY: dict[str, Case] = {
    "replay": (lambda b, t: ["verify", "--bundle", b, "--sim", "--sim-model", "replay"], 2,
               "verify --sim refuses the replay model: it would compare the golden file with "
               "itself"),
    "no_onnx_model": (lambda b, t: ["verify", "--bundle", write_build(t / "ex"), "--sim"], 2,
                      "verify --sim needs the HW-layer ONNX model (files.hw_onnx)"),
    "golden_missing": (_then(lambda b, t: (b / "golden/output.npy").unlink(),
                             lambda b, t: ["verify", "--bundle", b, "--sim"]), 2,
                       "golden_output"),
    "golden_corrupt": (_then(lambda b, t: (b / "golden/output.npy").write_bytes(b"x"),
                             lambda b, t: ["verify", "--bundle", b, "--sim"]), 2,
                       "cannot read golden output"),
}

PROFILE_ARGS = ["--batch-sizes", "1", "--repeats", "1", "--latency-runs", "2", "--no-plots"]
PROFILE: dict[str, Case] = {
    "batch_sizes_zero": (lambda b, t: ["profile", "--bundle", b, "--sim", "--batch-sizes", "0"],
                         2, "expected batch sizes >= 1"),
    "batch_sizes_text": (lambda b, t: ["profile", "--bundle", b, "--sim", "--batch-sizes", "a"],
                         2, "expected comma-separated ints"),
    "batch_over_max": (lambda b, t: ["profile", "--bundle", b, "--sim", "-o", t / "p",
                                     *PROFILE_ARGS, "--batch-sizes", "65"], 2,
                       "batch sizes must lie in [1, 64]"),
    "repeats_zero": (lambda b, t: ["profile", "--bundle", b, "--sim", "--repeats", "0",
                                   "-o", t / "p"], 2, "repeats and latency runs must be >= 1"),
    "latency_runs_zero": (lambda b, t: ["profile", "--bundle", b, "--sim", "--latency-runs",
                                        "0", "-o", t / "p"], 2, "must be >= 1"),
    "warmup_negative": (lambda b, t: ["profile", "--bundle", b, "--sim", "--warmup", "-1",
                                      "-o", t / "p"], 2, "warmup >= 0"),
    "power_window_zero": (lambda b, t: ["profile", "--bundle", b, "--sim", "--power-active-s",
                                        "0", "-o", t / "p", *PROFILE_ARGS], 2,
                          "power windows must be"),
    "output_is_a_file": (_then(lambda b, t: (t / "f").write_text(""),
                               lambda b, t: ["profile", "--bundle", b, "--sim", "-o", t / "f"]),
                         2, "is a file; give a folder path"),
    "nothing_to_emulate": (_then(lambda b, t: _meta(b, files={}),
                                 lambda b, t: ["profile", "--bundle", b, "--sim", "-o", t / "p",
                                               *PROFILE_ARGS]), 2, "neither is present"),
    "bench_no_meta": (lambda b, t: ["bench-packing", "--bundle", t], 2, "metadata file"),
    "bench_batch_text": (lambda b, t: ["bench-packing", "--bundle", b, "--batch-sizes", "x"], 2,
                         "expected comma-separated ints"),
}


def _table(*tables: dict) -> list:
    return [pytest.param(*case, id=f"{name}") for table in tables for name, case in table.items()]


@pytest.mark.parametrize("prepare, code, fragment", _table(RUN, VERIFY, PROFILE))
def test_bad_input_is_one_error_line_with_its_exit_code(tmp_path, capsys, prepare, code,
                                                        fragment):
    build = write_mvau_build(tmp_path / "build")
    argv = prepare(build, tmp_path)
    got, line, _ = _cli(argv, capsys)
    assert (got, fragment in line) == (code, True), line
    assert not list(tmp_path.glob("**/p/profile.json")) and not list(tmp_path.glob("**/*.npy.*"))


def test_a_tampered_golden_output_is_a_mismatch_never_bit_exact(tmp_path, capsys):
    build = write_mvau_build(tmp_path / "build")
    assert _cli(["verify", "--bundle", build, "--sim"], capsys)[0] == 0
    go = np.load(build / "golden/output.npy")
    go[2, 1] += 1
    np.save(build / "golden/output.npy", go)
    code, _, out = _cli(["verify", "--bundle", build, "--sim"], capsys)
    assert code == 1 and "golden check: MISMATCH (6 samples)" in out
    assert "first mismatching sample: 2 (1 differ)" in out
    # the replay model would have answered with the tampered file itself: it is refused
    code, line, _ = _cli(["verify", "--bundle", build, "--sim", "--sim-model", "replay"], capsys)
    assert code == 2 and "refuses the replay model" in line


# -- deploy bundles: MANIFEST.json -------------------------------------------------------------

@pytest.fixture
def bundle(tmp_path):
    build = write_mvau_build(tmp_path / "build")
    return build_bundle(build, None, tmp_path / "bundle").path


def _manifest(b: Path) -> dict:
    return json.loads((b / "MANIFEST.json").read_text())


def _relist(b: Path, **entries) -> None:
    from hw.driver.manifest import sha256_file

    man = _manifest(b)
    for rel in entries:
        man["files"][rel] = {"sha256": sha256_file(b / rel), "bytes": (b / rel).stat().st_size}
    (b / "MANIFEST.json").write_text(json.dumps(man))


def _named_unlisted(b: Path) -> None:
    (b / "extra.onnx").write_bytes((b / "hw_model.onnx").read_bytes())
    _files(b, hw_onnx="extra.onnx")
    _relist(b, **{"accel_meta.json": True})


def _edit_golden(b: Path) -> None:
    go = np.load(b / "golden/output.npy")
    np.save(b / "golden/output.npy", go + 1)


MANIFEST: dict[str, tuple[Callable[[Path], object], str]] = {
    "golden_edited": (_edit_golden, "golden/output.npy: its sha256 differs from MANIFEST.json"),
    "meta_edited": (lambda b: _meta(b, batch_max=8), "accel_meta.json: its sha256 differs"),
    "model_truncated": (lambda b: (b / "hw_model.onnx").write_bytes(b"x"),
                        "hw_model.onnx: its sha256 differs"),
    "driver_edited": (lambda b: (b / "hw/driver/packing.py").write_text("# no"),
                      "hw/driver/packing.py: its sha256 differs"),
    "file_missing": (lambda b: (b / "golden/input.npy").unlink(),
                     "golden/input.npy: listed in MANIFEST.json but missing"),
    "code_added": (lambda b: (b / "hw/driver/extra.py").write_text(""),
                   "hw/driver/extra.py: in the bundle but not in MANIFEST.json"),
    "named_unlisted": (_named_unlisted, "extra.onnx: in the bundle but not in MANIFEST.json"),
    "manifest_removed": (lambda b: (b / "MANIFEST.json").unlink(), "lost its manifest"),
    "manifest_corrupt": (lambda b: (b / "MANIFEST.json").write_text("{"), "cannot read"),
    "manifest_escapes": (lambda b: (b / "MANIFEST.json").write_text(json.dumps(
        {"files": {"../build/mvau.onnx": {"sha256": "0" * 64}}})),
                         "MANIFEST.json: '../build/mvau.onnx' is not a path inside the bundle"),
}


@pytest.mark.parametrize("tamper, fragment", MANIFEST.values(), ids=MANIFEST.keys())
def test_a_bundle_that_fails_its_manifest_is_refused_naming_the_file(bundle, capsys, tamper,
                                                                    fragment):
    tamper(bundle)
    for argv in (["verify", "--bundle", bundle, "--sim"], ["verify", "--bundle", bundle]):
        code, line, _ = _cli(argv, capsys)
        assert (code, fragment in line) == (2, True), line


def test_an_intact_bundle_says_it_was_checked_and_ignores_outputs_written_into_it(bundle,
                                                                                   capsys):
    (bundle / "preds.npy").write_bytes(b"output of an earlier run")
    (bundle / "profile").mkdir()
    (bundle / "hw/driver/__pycache__").mkdir()
    (bundle / "hw/driver/__pycache__/cli.pyc").write_bytes(b"")
    code, _, out = _cli(["verify", "--bundle", bundle, "--sim"], capsys)
    n = len(_manifest(bundle)["files"])
    assert code == 0 and f"bundle: {n} files match MANIFEST.json" in out
    assert "golden check: bit-exact (6 samples)" in out


def test_the_tables_are_the_ones_reported():
    assert (len(RUN), len(VERIFY), len(PROFILE), len(MANIFEST)) == (29, 4, 11, 10)


def test_mvau_dict_has_no_input_quant():  # the float_input case relies on it
    assert "input_quant" not in MVAU_DICT
