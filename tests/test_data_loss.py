# SPDX-License-Identifier: BSD-3-Clause
"""Nothing lost: every command that writes a build, bundle or file, run into an existing good
output with a bad source or a bad target, exits with the documented code and one message and
leaves every byte under the test folder as it was (no new folder, no leftover, no rename).

The CLIs run in-process (``main(argv)``) on tiny fixtures; no compile runs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, save

from bnn_brevitas import export, metrics, zoo
from bnn_brevitas.errors import EXIT_BAD_INPUT, EXIT_OK
from bnn_brevitas.outputs import MARKER, owner, write_marker
from flows import pipeline
from flows.names import FLOW_CONFIG
from flows.pipeline import OUTPUT_TOOL, run_flow
from hw import bitstream, package
from tests.hw.helpers import write_build
from tests.test_outputs import tree

CLIS = {"pipeline": pipeline, "bitstream": bitstream, "package": package, "export": export,
        "zoo": zoo, "metrics": metrics}


def tiny_onnx(path: Path) -> Path:
    """A one-node ONNX model (Relu), enough for the flow to accept the source."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    save(helper.make_model(graph), str(path))
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Good outputs of every kind and bad sources, under ``tmp_path`` (the working directory)."""
    monkeypatch.chdir(tmp_path)
    for mod in CLIS.values():  # keep caplog's handler (setup_logging replaces the root's)
        monkeypatch.setattr(mod, "setup_logging", lambda verbose=False: None)
    good = tmp_path / "good_build"
    (good / "intermediate").mkdir(parents=True)
    (good / FLOW_CONFIG).write_text("model: cnv_w1a1\n")
    (good / "intermediate" / "01_tidy.onnx").write_bytes(b"\x08\x07 a good build")
    write_marker(good, OUTPUT_TOOL)
    legacy = tmp_path / "legacy_build"  # a build from before the marker
    legacy.mkdir()
    (legacy / FLOW_CONFIG).write_text("model: cnv_w1a1\n")
    (legacy / "report.json").write_text("{}")
    hwbuild = write_build(tmp_path / "hw_build")
    package.build_bundle(hwbuild, None, tmp_path / "bundle")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    (tmp_path / "notes.txt").write_text("a file")
    (tmp_path / "good.onnx").write_bytes(b"\x08\x07 a good export")
    (tmp_path / "good.json").write_text('{"good": true}')
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "dir.onnx").mkdir()
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).bytes(256))
    (tmp_path / "empty.onnx").write_bytes(b"")
    tiny_onnx(tmp_path / "tiny.onnx")
    tiny_onnx(good / "model.qonnx.onnx")
    return tmp_path


# (cli, argv, exit code, message fragment); paths are relative to the test folder
BAD = [
    # the pipeline: bad sources into a good build
    ("pipeline", "--onnx missing.onnx -o good_build", 2, "ONNX file 'missing.onnx' does not exist"),
    ("pipeline", "--onnx a_dir -o good_build", 2, "ONNX file 'a_dir' is a directory, not a file"),
    ("pipeline", "--onnx random.onnx -o good_build", 2, "'random.onnx' is not a readable ONNX"),
    ("pipeline", "--onnx empty.onnx -o good_build", 2, "ONNX file 'empty.onnx' is empty"),
    ("pipeline", "--model nosuch -o good_build", 2, "unknown model 'nosuch'"),
    ("pipeline", "--model nosuch -o legacy_build", 2, "unknown model 'nosuch'"),
    ("pipeline", "--checkpoint missing.pt -o good_build", 2, "'missing.pt' does not exist"),
    ("pipeline", "--onnx missing.onnx -o new_build", 2, "does not exist"),
    # the pipeline: a good source into a bad target
    ("pipeline", "--onnx tiny.onnx -o notes.txt", 2, "'notes.txt' is a file, not a directory"),
    ("pipeline", "--onnx tiny.onnx -o notes.txt/b", 2, "is a file, not a directory"),
    ("pipeline", "--onnx tiny.onnx -o mine", 2, "is not an output of this toolkit"),
    ("pipeline", "--onnx tiny.onnx -o bundle", 2, "holds the output of hw.package"),
    ("pipeline", "--onnx good_build/model.qonnx.onnx -o good_build", 2, "holds the source"),
    ("pipeline", "--onnx tiny.onnx -o notes.txt --from-step lower", 2, "is a file"),
    ("pipeline", "--onnx tiny.onnx -o mine --from-step lower", 2, "cannot start at step"),
    ("pipeline", "--onnx tiny.onnx -o nothing --from-step lower", 2, "does not exist"),
    # the bitstream flow checks the source before it looks at the build
    ("bitstream", "--onnx missing.onnx -o good_build", 2, "'missing.onnx' does not exist"),
    ("bitstream", "--checkpoint missing.pt -o good_build", 2, "'missing.pt' does not exist"),
    ("bitstream", "--model nosuch -o good_build", 2, "unknown model 'nosuch'"),
    ("bitstream", "--onnx random.onnx -o good_build", 2, "is not a readable ONNX model"),
    # the deploy bundle: --force replaces only a bundle
    ("package", "--build-dir nosuch -o bundle --force", 2, "build folder"),
    ("package", "--build-dir mine -o bundle --force", 2, "accel_meta.json not found"),
    ("package", "--build-dir hw_build -o bundle", 2, "exists; pass --force"),
    ("package", "--build-dir hw_build -o mine --force", 2, "is not an output of this toolkit"),
    ("package", "--build-dir hw_build -o hw_build --force", 2, "holds the source"),
    ("package", "--build-dir hw_build -o . --force", 2, "holds the source"),
    ("package", "--build-dir hw_build -o good_build --force", 2, "holds the output of flows"),
    ("package", "--build-dir hw_build -o legacy_build --force", 2, "not an output of this"),
    ("package", "--build-dir hw_build -o notes.txt --force", 2, "is a file, not a directory"),
    ("package", "--build-dir hw_build -o bundle --force --board zcu999", 2, "unknown board"),
    # file outputs: a bad source or a directory as the file
    ("export", "--model nosuch -o good.onnx", 2, "unknown model 'nosuch'"),
    ("export", "--checkpoint missing.pt -o good.onnx", 2, "'missing.pt' does not exist"),
    ("export", "--checkpoint random.onnx -o good.onnx", 2, "cannot read checkpoint"),
    ("export", "--model cnv_w1a1 --set nosuch=1 -o good.onnx", 2, "unknown override(s)"),
    ("export", "--model cnv_w1a1 -o dir.onnx", 2, "'dir.onnx' is a directory; name a file"),
    ("export", "--model cnv_w1a1 -o a_dir", 2, "must end in .onnx"),
    ("export", "--model cnv_w1a1 -o notes.txt/m.onnx", 2, "is a file, not a directory"),
    ("zoo", "nosuch -o good.onnx", 2, "unknown zoo model 'nosuch'"),
    ("zoo", "cnv_1w1a --flat-input -o good.onnx", 2, "flat_input applies to the MLPs"),
    ("zoo", "tfc_1w1a -o dir.onnx", 2, "'dir.onnx' is a directory; name a file"),
    ("metrics", "--model nosuch --json good.json", 2, "unknown model 'nosuch'"),
    ("metrics", "--model cnv_w1a1 --set nosuch=1 --json good.json", 2, "unknown override(s)"),
    ("metrics", "--model cnv_w1a1 --set in_channels --json good.json", 2, "FIELD=VALUE"),
    ("metrics", "--model cnv_w1a1 --json a_dir", 2, "'a_dir' is a directory; name a file"),
]


@pytest.mark.parametrize("cli, argv, code, message", BAD,
                         ids=[f"{c}: {a}" for c, a, _, _ in BAD])
def test_bad_input_exits_with_one_message_and_changes_nothing(env, caplog, cli, argv, code,
                                                              message):
    before = tree(env)
    caplog.set_level(logging.INFO)
    assert CLIS[cli].main(argv.split()) == code
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0], errors
    assert "Traceback" not in caplog.text
    assert tree(env) == before


def test_a_bad_override_value_never_tracebacks(env, caplog):
    """Validating override values is models' job; whatever it answers, it is one line."""
    before = tree(env)
    rc = metrics.main(["--model", "cnv_w1a1", "--set", "in_channels=x", "--json", "good.json"])
    assert rc in (1, 2) and "Traceback" not in caplog.text
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert tree(env) == before


# -- the pipeline's runner: fake steps on the tiny model, no FINN -----------------------------

def _step(tag: str, fail: bool = False):
    def step(model, cfg):
        if fail:
            raise ValueError(f"{tag} failed")
        model.set_metadata_prop("tag", tag)
        return model
    return step


def _cfg(env: Path, out: str, **kw):
    from flows.config import FlowConfig

    return FlowConfig(onnx=env / "tiny.onnx", output_dir=env / out, **kw)


@pytest.mark.parametrize("out", ["good_build", "legacy_build", "new_build"])
def test_a_failing_step_puts_the_old_build_back(env, out):
    before = tree(env)
    steps = {"a": _step("a"), "b": _step("b", fail=True)}
    with pytest.raises(pipeline.StepError, match="step b failed"):
        run_flow(_cfg(env, out), steps)
    assert tree(env) == before  # the old build byte-identical; a new one not left half-made


def test_a_new_build_replaces_the_old_one_and_resumes_in_place(env):
    steps = {"a": _step("a"), "b": _step("b")}
    assert run_flow(_cfg(env, "legacy_build"), steps).steps_run == ["a", "b"]
    build = env / "legacy_build"
    assert owner(build) == OUTPUT_TOOL and not (build / "report.json").exists()
    assert not [p for p in env.iterdir() if p.name.startswith(".")]  # nothing left aside
    first = (build / "intermediate" / "01_a.onnx").read_bytes()
    assert run_flow(_cfg(env, "legacy_build", from_step="b"), steps).steps_run == ["b"]
    assert (build / "intermediate" / "01_a.onnx").read_bytes() == first
    legacy = env / "old_style"  # a build from before the marker resumes, and is marked
    legacy.mkdir()
    for f in (FLOW_CONFIG, "intermediate/01_a.onnx"):
        (legacy / f).parent.mkdir(exist_ok=True)
        (legacy / f).write_bytes((build / f).read_bytes())
    run_flow(_cfg(env, "old_style", from_step="b"), steps)
    assert owner(legacy) == OUTPUT_TOOL


# -- hw.package: what make package (always --force) may replace -------------------------------

def test_force_replaces_a_bundle_and_only_a_bundle(env, caplog):
    argv = ["--build-dir", "hw_build", "-o", "bundle", "--force"]
    (env / "bundle" / "stale.txt").write_text("from an old bundle")
    assert package.main(argv) == EXIT_OK
    assert not (env / "bundle" / "stale.txt").exists()
    assert owner(env / "bundle") == package.OUTPUT_TOOL
    assert MARKER not in package.build_bundle(env / "hw_build", None, env / "bundle",
                                              force=True).files
    os.remove(env / "bundle" / MARKER)  # a bundle from before the marker is still a bundle
    assert package.main(argv) == EXIT_OK
    (env / "bundle.tar.gz").write_bytes(b"my own tarball")  # not a bundle's: kept
    before = tree(env)
    assert package.main(argv) == EXIT_BAD_INPUT
    assert tree(env) == before
    assert "bundle.tar.gz is not a bundle tarball" in caplog.text
