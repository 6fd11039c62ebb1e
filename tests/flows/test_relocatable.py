# SPDX-License-Identifier: BSD-3-Clause
"""flows/build_dir.py: a copied or moved build is verified with its own files, never the
original's; a path outside the build is refused; the partition's three files are one model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from onnx import helper

from flows.build_dir import (
    BuildPathError,
    InconsistentBuildError,
    check_partition_files,
    partition_files,
    relocate_sources,
)
from flows.finn_env import load_model
from flows.names import BUILD_LOCATIONS, DATAFLOW_PARENT, FINN_TMP, INTERMEDIATE_DIR
from flows.verify import verify
from tests.flows.graphs import needs_verilator
from tests.flows.test_divergence_partition import GRAPH

CODEGEN = "11_hw_codegen.onnx"


def _path_attrs(model) -> list[str]:
    return [a.s.decode() for n in model.graph.node for a in n.attribute
            if a.name in ("model", "code_gen_dir_ipgen", "ipgen_path", "ip_path")]


def _names(root: Path, needle: str) -> list[str]:
    """Files of the build's models and generated sources whose bytes contain ``needle``."""
    files = [*root.rglob("*.onnx"), *(root / FINN_TMP).glob("code_gen_*/*")]
    return [str(f) for f in files if f.is_file() and needle.encode() in f.read_bytes()]


def made_at(src: Path, dst: Path) -> Path:
    """A copy of the build ``src`` as if it had been built at ``dst``: every model and source
    names ``dst`` only."""
    shutil.copytree(src, dst)
    for f in dst.rglob("*.onnx"):
        load_model(f).save(str(f))  # relocated on load, written back
    (dst / BUILD_LOCATIONS).write_text(json.dumps({"locations": [str(dst)],
                                                   "sources_at": str(dst)}))
    assert _names(dst, str(src)) == []
    return dst


@pytest.fixture
def moved(cnv_build, tmp_path) -> Path:
    """A build made at ``tmp/a``, then moved to ``tmp/b``: what it names no longer exists."""
    a = made_at(cnv_build.out_dir, tmp_path / "a")
    b = tmp_path / "b"
    shutil.move(a, b)
    assert not a.exists() and _names(b, str(a))  # the files still name where it was built
    return b


def test_a_moved_build_loads_its_own_files(moved):
    old = str(moved.parent / "a")
    for f in (moved / DATAFLOW_PARENT, moved / INTERMEDIATE_DIR / CODEGEN):
        paths = _path_attrs(load_model(f))
        assert paths and all(p.startswith(str(moved) + "/") for p in paths), paths
    # the generated HDL ($readmemh of the weight/threshold images) is rewritten on disk, once
    assert _names(moved, old) and not [f for f in _names(moved, old) if f.endswith(".v")]
    assert relocate_sources(moved) == 0
    record = json.loads((moved / BUILD_LOCATIONS).read_text())
    assert record["sources_at"] == str(moved) and old in record["locations"]


@needs_verilator
def test_a_moved_build_passes_verify_with_rtl(moved):
    # the original is gone: passing proves the copy's own models, HDL and memory images ran
    report = verify(moved, samples=2, stages=GRAPH + ["accel_rtlsim"])
    assert report.result == "PASS", [(s.stage, s.status, s.note) for s in report.stages]
    acc = next(s for s in report.stages if s.stage == "accel_rtlsim")
    assert acc.status == "pass" and acc.exact


def test_a_build_without_a_record_is_relocated_from_where_its_files_say(cnv_build, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cnv_build.out_dir, copy)
    (copy / BUILD_LOCATIONS).unlink()  # as written before the record existed
    (copy / "flow_config.yaml").write_text("name: x\n")  # no output_dir either
    paths = _path_attrs(load_model(copy / INTERMEDIATE_DIR / CODEGEN))
    assert paths and all(p.startswith(str(copy) + "/") for p in paths)
    assert str(cnv_build.out_dir.absolute()) in \
        json.loads((copy / BUILD_LOCATIONS).read_text())["locations"]


def test_a_path_outside_the_build_is_refused(cnv_build, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cnv_build.out_dir, copy)
    path = copy / INTERMEDIATE_DIR / CODEGEN
    model = load_model(path)
    node = model.graph.node[2]
    attr = next(a for a in node.attribute if a.name == "code_gen_dir_ipgen")
    attr.s = b"/elsewhere/code_gen_x"
    model.save(str(path))
    with pytest.raises(BuildPathError, match=f"node {node.name} .*code_gen_dir_ipgen = "
                       "'/elsewhere/code_gen_x' points outside the build"):
        load_model(path)


def test_generated_sources_are_rewritten_once_and_outside_paths_refused(tmp_path):
    root = tmp_path / "build"
    gen = root / FINN_TMP / "code_gen_ipgen_X_0"
    gen.mkdir(parents=True)
    (root / "flow_config.yaml").write_text("name: x\n")
    (root / BUILD_LOCATIONS).write_text(json.dumps({"locations": ["/built/here"],
                                                    "sources_at": "/built/here"}))
    hdl, tcl = gen / "X_0.v", gen / "ip.tcl"
    hdl.write_text('  .WEIGHT_FILE("/built/here/finn_tmp/w.hex"),\n')
    tcl.write_text("add_files /built/here/a.v /built/here2/b.v\n")
    (gen / "w.dat").write_text("/built/here/data files are not rewritten\n")
    assert relocate_sources(root) == 2
    assert hdl.read_text() == f'  .WEIGHT_FILE("{root}/{FINN_TMP}/w.hex"),\n'
    assert tcl.read_text() == f"add_files {root}/a.v /built/here2/b.v\n"  # no prefix match
    assert (gen / "w.dat").read_text().startswith("/built/here/data")
    assert relocate_sources(root) == 0 and \
        json.loads((root / BUILD_LOCATIONS).read_text())["sources_at"] == str(root)
    root2 = tmp_path / "build2"
    shutil.copytree(root, root2)
    (root2 / FINN_TMP / "code_gen_ipgen_X_0" / "X_0.v").write_text('"/tmp/other/w.hex"\n')
    with pytest.raises(BuildPathError, match="X_0.v: names '/tmp/other/w.hex', outside the "
                       "build"):
        relocate_sources(root2)


def test_a_model_outside_any_build_is_loaded_as_it_is(tmp_path):
    node = helper.make_node("Identity", ["x"], ["y"], name="n")
    node.attribute.append(helper.make_attribute("model", "/anywhere/p.onnx"))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    assert _path_attrs(load_model(path)) == ["/anywhere/p.onnx"]


# -- the partition's three files ------------------------------------------------------------

def test_the_partition_files_of_a_build_agree(cnv_build):
    files = partition_files(cnv_build.out_dir)
    assert [f.is_file() for f in files] == [True] * 3
    check_partition_files(cnv_build.out_dir)


def test_disagreeing_partition_files_are_a_clear_error(cnv_build, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cnv_build.out_dir, copy)
    step, child, hw = partition_files(copy)
    model = load_model(hw)
    node = model.get_nodes_by_op_type("Thresholding")[0]
    t = model.get_initializer(node.input[1]).copy()
    model.set_initializer(node.input[1], t + 1)
    model.save(str(hw))
    with pytest.raises(InconsistentBuildError, match=f"{step} and {hw} are not the same model "
                       rf"\(initializer {node.input[1]} differs\)"):
        verify(copy, samples=1, stages=GRAPH)
    proc = subprocess.run([sys.executable, "-m", "flows.verify", "--build", str(copy),
                           "--stages", "qonnx"], capture_output=True, text=True)
    assert proc.returncode == 2 and f"{hw} are not the same model" in proc.stderr
    hw.unlink()
    with pytest.raises(InconsistentBuildError, match=f"{hw} does not"):
        check_partition_files(copy)
    child.unlink()
    step.unlink()
    check_partition_files(copy)  # a build that stopped before the partition: nothing to check
