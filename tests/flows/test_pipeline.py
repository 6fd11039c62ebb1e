# SPDX-License-Identifier: BSD-3-Clause
"""flows/pipeline.py on real models: every step runs, the partition is complete, the graph
stays exact up to the HW layers, the estimate report is consistent."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from bnn_brevitas.errors import ConfigError, UnknownNameError
from bnn_brevitas.outputs import MARKER, OutputError
from flows.config import FlowConfig
from flows.pipeline import STEPS, intermediate_path, run_flow

CNV28 = dict(model="cnv_w1a1", model_overrides={"in_channels": 1, "img_size": 28})


def _execute(path, x):
    import finn.core.onnx_exec as oxe

    model = ModelWrapper(str(path))
    return np.concatenate([oxe.execute_onnx(model, {model.graph.input[0].name: x[i:i + 1]})
                           [model.graph.output[0].name] for i in range(len(x))])


def test_every_step_runs_and_is_saved(cnv_build):
    cfg = cnv_build
    for name in STEPS:
        assert intermediate_path(cfg, name).is_file()
    times = json.loads((cfg.out_dir / "flow_report.json").read_text())
    assert set(times) == set(STEPS)
    assert (cfg.out_dir / "flow_config.yaml").is_file()


def test_graph_stages_are_exact_against_qonnx(cnv_build):
    cfg = cnv_build
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(2, 1, 28, 28)).astype(np.float32)
    ref = _execute(cfg.out_dir / "model.qonnx.onnx", x / 255)
    for name in ("tidy", "qonnx_to_finn", "streamline", "lower", "convert_to_hw"):
        inp = x / 255 if name == "tidy" else x
        out = _execute(intermediate_path(cfg, name), inp)
        # float scaling only at the very end (TensorNorm): logits within 1e-5, same top-1
        assert np.abs(out - ref).max() < 1e-5 * (1 + np.abs(ref).max()), name
        assert np.array_equal(out.argmax(-1), ref.argmax(-1)), name


def test_partition_holds_every_compute_node(cnv_build):
    cfg = cnv_build
    parent = ModelWrapper(str(cfg.out_dir / "dataflow_parent.onnx"))
    ops = [n.op_type for n in parent.graph.node]
    assert ops[0] == "Transpose" and ops.count("StreamingDataflowPartition") == 1
    assert set(ops) <= {"Transpose", "StreamingDataflowPartition", "Mul", "Add"}
    final = ModelWrapper(str(intermediate_path(cfg, list(STEPS)[-1])))
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow") for n in final.graph.node)


def test_estimate_report_is_consistent(cnv_build):
    cfg = cnv_build
    rep = json.loads((cfg.out_dir / "report" / "estimate.json").read_text())
    assert rep["kind"].startswith("FINN analytical estimate")
    assert rep["fps"] == pytest.approx(cfg.clock_mhz * 1e6 / rep["max_cycles"])
    assert rep["max_cycles"] == max(la["cycles"] for la in rep["layers"])
    assert rep["bottleneck"]["cycles"] == rep["max_cycles"]
    for k in ("LUT", "BRAM_18K", "URAM", "DSP"):
        assert rep["totals"][k] == pytest.approx(sum(la[k] for la in rep["layers"]))
    avail = cfg.board_info.resources.as_finn()
    assert rep["totals"]["LUT"] <= cfg.resource_budget * avail["LUT"]
    assert rep["fits_board"] is True
    assert (cfg.out_dir / "report" / "layers.png").stat().st_size > 10_000
    assert "FINN analytical estimate" in (cfg.out_dir / "report" / "estimate.md").read_text()


def test_folding_file_round_trip(cnv_build, tmp_path):
    cfg = cnv_build
    folding = json.loads((cfg.out_dir / "folding.json").read_text())
    assert any(v.get("PE", 1) > 1 or v.get("SIMD", 1) > 1 for v in folding.values())
    cfg2 = FlowConfig(**CNV28, output_dir=tmp_path, folding_file=cfg.out_dir / "folding.json",
                      to_step="set_folding")
    run_flow(cfg2)
    assert json.loads((tmp_path / "folding.json").read_text()) == folding


def test_resume_from_a_step(cnv_build, tmp_path):
    import shutil

    shutil.copytree(cnv_build.out_dir, tmp_path / "b")
    again = FlowConfig(**CNV28, output_dir=tmp_path / "b", from_step="estimate",
                       to_step="estimate")
    assert run_flow(again).steps_run == ["estimate"]
    assert (tmp_path / "b" / "report" / "estimate.json").is_file()


@pytest.mark.parametrize("kwargs,msg", [
    (dict(board="zcu999"), "unknown board 'zcu999'; valid: aup-zu3, kv260, pynq-z1"),
    (dict(resource_budget=1.5), "resource_budget: must be in"),
    (dict(mem_mode="ddr"), "mem_mode: invalid value 'ddr'; valid: auto, internal_embedded"),
    (dict(onnx="x.onnx"), "give one of model, checkpoint or onnx"),
    (dict(binary_mvau="vhdl"), "binary_mvau: invalid value 'vhdl'; valid: rtl, hls"),
    (dict(min_fifo_depth=1), "min_fifo_depth: must be at least 2, got 1"),
    (dict(fifo_sizing="xsim"), "fifo_sizing: invalid value 'xsim'; valid: analytic, rtlsim"),
    (dict(board="ZCU104", resource_budget="0.5"), "resource_budget: expected a number"),
])
def test_bad_config_is_rejected(kwargs, msg):
    with pytest.raises((ConfigError, UnknownNameError), match=msg):
        FlowConfig(**CNV28, **kwargs)


def test_unknown_step_and_missing_resume_point(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown step 'synth'; valid: "):
        run_flow(FlowConfig(**CNV28, output_dir=tmp_path, to_step="synth"))
    with pytest.raises(ConfigError, match="cannot start at step 'lower'"):
        run_flow(FlowConfig(**CNV28, output_dir=tmp_path, from_step="lower"))


def test_a_new_build_clears_the_previous_one_and_refuses_foreign_dirs(tmp_path):
    """A build from before the ownership marker (its flow_config.yaml) is replaced too."""
    out = tmp_path / "b"
    (out / "report").mkdir(parents=True)
    (out / "flow_config.yaml").write_text("model: cnv_w1a1\n")
    (out / "report" / "estimate.json").write_text("{}")  # a stale later-step artefact
    run_flow(FlowConfig(**CNV28, output_dir=out, to_step="tidy"))
    assert not (out / "report").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER, "flow_config.yaml", "flow_report.json", "intermediate", "model.pt",
        "model.qonnx.json", "model.qonnx.onnx", "source.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # the old build: deleted
    assert (out / "source.txt").read_text() == "registry:cnv_w1a1"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="is not empty and is not an output of this toolkit"):
        run_flow(FlowConfig(**CNV28, output_dir=foreign, to_step="tidy"))
    assert (foreign / "notes.txt").read_text() == "keep"
