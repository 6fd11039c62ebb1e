# SPDX-License-Identifier: BSD-3-Clause
"""flows/verify.py: a clean build passes; planted faults fail and are pinned to their node."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from flows.config import FlowConfig
from flows.pipeline import intermediate_path
from flows.verify import verify

GRAPH = ["brevitas", "qonnx", "tidy", "qonnx_to_finn", "streamline", "lower", "convert_to_hw",
         "create_dataflow_partition"]


@pytest.fixture
def build(cnv_build):
    return cnv_build


def _copy(cfg, tmp_path):
    dst = tmp_path / "build"
    shutil.copytree(cfg.out_dir, dst)
    return FlowConfig.load(dst / "flow_config.yaml", output_dir=dst)


def _stage(report, name):
    return next(s for s in report.stages if s.stage == name)


def test_clean_build_passes_every_graph_stage_exactly(build):
    report = verify(build.out_dir, samples=3, stages=GRAPH)
    assert report.ok
    assert [s.stage for s in report.stages] == GRAPH
    assert all(s.exact is True for s in report.stages[1:])  # integers identical to Brevitas'
    assert all(s.top1_agree == 1.0 for s in report.stages[1:])


def _plant(cfg, stage, mutate):
    path = intermediate_path(cfg, stage)
    model = ModelWrapper(str(path))
    name = mutate(model)
    model.save(str(path))
    return name


def test_threshold_off_by_one_is_found(build, tmp_path):
    cfg = _copy(build, tmp_path)

    def mutate(model):
        node = model.get_nodes_by_op_type("Thresholding")[0]  # the 8-bit input thresholds
        t = model.get_initializer(node.input[1]).copy()
        t[:, 0] -= 1  # "x ≥ 1" becomes "x ≥ 0": every black pixel moves up one level
        model.set_initializer(node.input[1], t)
        return node.name

    name = _plant(cfg, "convert_to_hw", mutate)
    report = verify(cfg.out_dir, samples=2, stages=GRAPH)
    bad = _stage(report, "convert_to_hw")
    assert not report.ok and bad.status == "fail" and bad.exact is False
    assert bad.divergence["node"] == name and bad.divergence["op_type"] == "Thresholding"
    assert _stage(report, "lower").status == "pass"


def test_flipped_binary_weight_is_found(build, tmp_path):
    cfg = _copy(build, tmp_path)

    def mutate(model):
        node = [n for n in model.get_nodes_by_op_type("MVAU")
                if getCustomOp(n).get_nodeattr("noActivation") == 1][-1]  # the last FC
        w = model.get_initializer(node.input[1]).copy()
        w[0, 0] = 1 - w[0, 0]  # binary (XNOR) weights are stored as {0, 1}
        model.set_initializer(node.input[1], w)
        return node.name

    name = _plant(cfg, "convert_to_hw", mutate)
    report = verify(cfg.out_dir, samples=2, stages=GRAPH)
    bad = _stage(report, "convert_to_hw")
    assert bad.status == "fail" and bad.divergence["node"] == name
    assert bad.divergence["max_abs_diff"] == pytest.approx(1.0)  # one popcount term changed


def test_wrong_datatype_annotation_is_found(build, tmp_path):
    cfg = _copy(build, tmp_path)

    def mutate(model):
        node = next(n for n in model.get_nodes_by_op_type("MultiThreshold")
                    if model.get_tensor_datatype(n.output[0]) == DataType["BIPOLAR"])
        model.set_tensor_datatype(node.output[0], DataType["BINARY"])  # −1 is not binary
        return node.name

    name = _plant(cfg, "streamline", mutate)
    report = verify(cfg.out_dir, samples=2, stages=GRAPH)
    bad = _stage(report, "streamline")
    assert bad.status == "fail" and "annotation" in bad.note
    assert bad.divergence == {"node": name, "op_type": "MultiThreshold",
                              "tensor": bad.divergence["tensor"], "reason": "annotation"}


def test_cli_writes_reports_and_exits_nonzero_on_failure(build, tmp_path):
    cfg = _copy(build, tmp_path)
    _plant(cfg, "convert_to_hw", lambda m: _flip_first_threshold(m))
    proc = subprocess.run([sys.executable, "flows/verify.py", "--build", str(cfg.out_dir),
                           "--samples", "2", "--stages", ",".join(GRAPH)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    data = json.loads((cfg.out_dir / "report" / "verify.json").read_text())
    assert data["ok"] is False
    md = (cfg.out_dir / "report" / "verify.md").read_text()
    assert "## First divergence in stage `convert_to_hw`" in md


def _flip_first_threshold(model):
    node = model.get_nodes_by_op_type("Thresholding")[0]
    t = model.get_initializer(node.input[1]).copy()
    t[:, 0] -= 1
    model.set_initializer(node.input[1], t)
    return node.name


def test_bad_build_dir_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "flows/verify.py", "--build", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "is not a build directory (no flow_config.yaml)" in proc.stderr


@pytest.mark.rtl
def test_rtl_layers_simulate_bit_exactly(build):
    report = verify(build.out_dir, samples=1, stages=["rtlsim"])
    rtl = _stage(report, "rtlsim")
    assert rtl.status == "pass", rtl.note
    data = json.loads((build.out_dir / "report" / "rtlsim.json").read_text())
    assert data["coverage"]["ConvolutionInputGenerator_rtl"]["exact"] == 8
    cov = data["coverage"]
    assert all(v["exact"] == v["total"] for k, v in cov.items() if k.endswith("_rtl")), cov
    # every layer is RTL: the binary MVAUs and pools are the project's units (flows/rtl)
    assert not [k for k in cov if k.endswith("_hls")], cov
    assert (cov["XnorMVAU_rtl"]["exact"], cov["WindowMaxPool_rtl"]["exact"]) == (8, 2)
    assert np.all([r["cycles"] > 0 for r in data["layers"]])


@pytest.mark.rtl
def test_whole_accelerator_simulates_bit_exactly(build):
    report = verify(build.out_dir, samples=2, stages=["accel_rtlsim"])
    acc = _stage(report, "accel_rtlsim")
    assert acc.status == "pass" and acc.exact, acc.note
    data = json.loads((build.out_dir / "report" / "accel_rtlsim.json").read_text())
    assert data["result"] == "exact" and len(data["frame_done_cycles"]) == 4
    # the slowest layer bounds the interval from below; FIFO stalls only add cycles
    assert data["interval_cycles"] >= data["estimate_interval_cycles"]


def test_accelerator_stage_names_the_layers_without_rtl(build, tmp_path):
    from flows.finn_env import load_model
    from flows.stitch import non_rtl_layers

    cfg = _copy(build, tmp_path)
    path = intermediate_path(cfg, "hw_codegen")
    model = load_model(path)
    model.graph.node[3].op_type = "Pool_hls"  # pretend one layer were HLS
    model.save(str(path))
    acc = _stage(verify(cfg.out_dir, samples=1, stages=["accel_rtlsim"]), "accel_rtlsim")
    assert acc.status == "skipped" and acc.note == "1 layer(s) have no RTL (Pool_hls)"
    assert non_rtl_layers(model) == [f"{model.graph.node[3].name} (Pool_hls)"]


@pytest.mark.parametrize("tail,a,b", [
    (["Mul", "Add"], 0.5, -0.25),         # y = 0.5·t − 0.25
    (["Add", "Mul"], 0.5, -0.125),        # y = (t − 0.25)·0.5
    (["Mul", "Add", "Mul"], 1.0, -0.5),   # y = (0.5·t − 0.25)·2
])
def test_output_tail_recovers_the_integer_logits(tail, a, b):
    from onnx import helper

    from flows.verify_stages import canonical_integers, output_tail
    from tests.flows.graphs import make_model

    consts = {"Mul": [0.5, 2.0], "Add": [-0.25]}
    nodes, inits, prev = [], {}, "t"
    for i, op in enumerate(tail):
        c = consts[op].pop(0)
        inits[f"c{i}"] = np.array(c, dtype=np.float32)
        out = "y" if i == len(tail) - 1 else f"h{i}"
        nodes.append(helper.make_node(op, [prev, f"c{i}"], [out]))
        prev = out
    model = make_model(nodes, [("t", (1, 3))], [("y", (1, 3))], inits=inits)
    name, ga, gb = output_tail(model)
    assert (name, ga, gb) == ("t", a, b)
    t = np.array([[-7, 0, 12]])
    assert np.array_equal(canonical_integers(a * t + b, ga, gb), t)
