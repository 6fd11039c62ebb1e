# SPDX-License-Identifier: BSD-3-Clause
"""flows/divergence.py inside the dataflow partition: a fault in a layer of the partition is
located at that layer, not at the partition's wrapper node."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.build_dir import partition_files
from flows.divergence import PARTITION_OP, first_divergence
from flows.finn_env import load_model
from flows.verify import verify
from tests.flows.graphs import make_model

GRAPH = ["brevitas", "qonnx", "tidy", "qonnx_to_finn", "streamline", "lower", "convert_to_hw",
         "create_dataflow_partition"]


def plant_partition_threshold(build: Path) -> str:
    """Every threshold of the first MVAU with thresholds + 1, in the partition's model (all
    three files that hold it, so that they stay one model); returns the node's name."""
    name = None
    for f in partition_files(build):
        model = load_model(f)
        node = next(n for n in model.get_nodes_by_op_type("MVAU") if len(n.input) == 3)
        model.set_initializer(node.input[2], model.get_initializer(node.input[2]) + 1)
        model.save(str(f))
        assert name in (None, node.name)
        name = node.name
    return name


def test_a_fault_inside_the_partition_is_located_at_its_layer(cnv_build, tmp_path):
    # planted in a copy only: the original's partition (which the copy's parent graph names
    # on disk) is intact, so the failure proves the copy runs its own partition
    copy = tmp_path / "copy"
    shutil.copytree(cnv_build.out_dir, copy)
    name = plant_partition_threshold(copy)
    report = verify(copy, samples=2, stages=GRAPH)
    bad = report.stages[-1]
    assert report.result == "FAIL" and bad.stage == "create_dataflow_partition"
    assert [s.status for s in report.stages[:-1]] == ["pass"] * (len(GRAPH) - 1)
    d = bad.divergence
    assert (d["node"], d["op_type"]) == (name, "MVAU")
    assert d["partition"].endswith(f"({PARTITION_OP}, dataflow_partition/partition_0.onnx)")
    assert any("inside the dataflow partition" in n for n in d["notes"])
    assert d["max_abs_diff"] == 1.0 and d["how_matched"] == "name"


def _partitioned(tmp_path: Path, bias: float) -> tuple:
    """(reference y = relu(x + 1), the same as a parent graph whose partition adds ``bias``)."""
    add = helper.make_node("Add", ["x", "one"], ["h"], name="Add_0")
    relu = helper.make_node("Relu", ["h"], ["y"], name="Relu_0")
    one = {"one": np.array([1.0], dtype=np.float32)}
    ref = make_model([add, relu], [("x", (1, 4))], [("y", (1, 4))], inits=one)
    child = make_model([add, relu], [("x", (1, 4))], [("y", (1, 4))],
                       inits={"one": one["one"] + bias})
    child.save(str(tmp_path / "partition.onnx"))
    sdp = helper.make_node(PARTITION_OP, ["x"], ["y"], name="Partition_0",
                           domain="finn.custom_op.fpgadataflow",
                           model=str(tmp_path / "partition.onnx"))
    vi = [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 4]) for t in ("x", "y")]
    parent = ModelWrapper(qonnx_make_model(helper.make_graph([sdp], "p", vi[:1], vi[1:])))
    return ref, parent


def test_divergence_descends_into_the_partition_node(tmp_path):
    x = np.array([[-3.0, -0.5, 0.5, 2.0]], dtype=np.float32)
    ref, parent = _partitioned(tmp_path, 0.25)
    d = first_divergence(ref, parent, x, x)
    assert (d.node, d.op_type, d.tensor) == ("Add_0", "Add", "h")
    assert d.partition.startswith(f"Partition_0 ({PARTITION_OP}, ")
    ref, parent = _partitioned(tmp_path, 0.0)
    assert first_divergence(ref, parent, x, x) is None
