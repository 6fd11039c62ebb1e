# SPDX-License-Identifier: BSD-3-Clause
"""The BNext hw-mode members through the flow: every op lands in the dataflow partition and the
graph stays integer-exact until the HW layers."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

import bnn_brevitas as bb
from flows.config import FlowConfig
from flows.pipeline import intermediate_path, run_flow

from .test_pipeline import _execute

SMALL_HW = ["bnext_nano_hw"]
BIG_HW = [n for n in bb.list_models("bnext", hw=True) if n not in SMALL_HW + ["bnext_micro_hw"]]

#: what a BNext hw model becomes: every BNext component has its HW layer
EXPECTED_OPS = {"MVAU", "Thresholding", "ConvolutionInputGenerator", "FMPadding",
                "DuplicateStreams", "GlobalAccPool", "StreamingConcat", "ElementwiseMul",
                "ElementwiseAdd", "Pool"}


def _partition_ops(cfg):
    child = ModelWrapper(str(intermediate_path(cfg, "create_dataflow_partition")))
    return {n.op_type for n in child.graph.node}


def _check_partition(cfg):
    parent = ModelWrapper(str(cfg.out_dir / "dataflow_parent.onnx"))
    assert [n.op_type for n in parent.graph.node] == ["Transpose", "StreamingDataflowPartition",
                                                      "Mul"]
    child = ModelWrapper(str(intermediate_path(cfg, "create_dataflow_partition")))
    assert all(n.domain == "finn.custom_op.fpgadataflow" for n in child.graph.node)


def test_nano_partition_is_complete(nano_build):
    cfg = nano_build
    _check_partition(cfg)
    assert _partition_ops(cfg) == EXPECTED_OPS


def test_nano_stages_are_integer_exact(nano_build):
    cfg = nano_build
    x = np.random.default_rng(1).integers(0, 256, size=(2, 1, 28, 28)).astype(np.float32)
    ref = _execute(cfg.out_dir / "model.qonnx.onnx", x / 255)
    parent = ModelWrapper(str(cfg.out_dir / "dataflow_parent.onnx"))
    scale = float(parent.get_initializer(parent.graph.node[-1].input[1]))
    q_ref = np.round(ref / scale)
    # hw head: logits are integers × scale; float32 rounding of |q| ~ 2e5 stays far below ½
    assert np.abs(ref / scale - q_ref).max() < 0.25
    for name in ("qonnx_to_finn", "streamline", "lower", "convert_to_hw"):
        out = _execute(intermediate_path(cfg, name), x)
        assert np.array_equal(np.round(out / scale), q_ref), name
    # the partition itself, through the parent graph (input transpose, SDP, output scaling)
    out = _execute(cfg.out_dir / "dataflow_parent.onnx", x)
    assert np.array_equal(np.round(out / scale), q_ref)


def test_nano_estimate_reaches_the_report(nano_build):
    cfg = nano_build
    report = (cfg.out_dir / "report" / "estimate.md").read_text()
    assert "bnext_nano_hw on zcu104" in report and "FPS" in report


@pytest.mark.slow
def test_micro_partition_is_complete(tmp_path):
    cfg = FlowConfig(model="bnext_micro_hw", output_dir=tmp_path,
                     to_step="create_dataflow_partition")
    run_flow(cfg)
    _check_partition(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG_HW)
def test_imagenet_partition_is_complete(name, tmp_path):
    cfg = FlowConfig(model=name, output_dir=tmp_path, to_step="create_dataflow_partition")
    run_flow(cfg)
    _check_partition(cfg)
