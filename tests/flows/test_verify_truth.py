# SPDX-License-Identifier: BSD-3-Clause
"""The verifier never says PASS for what it did not check; FINN's own networks (exported by
Brevitas, compiled with ``--onnx``) are verified against their QONNX model; a failing FINN
transformation is reported as its step and node, with exit code 2."""

from __future__ import annotations

import logging

import pytest
from onnx import helper

from bnn_brevitas import zoo
from bnn_brevitas.errors import EXIT_INCOMPLETE
from flows import pipeline
from flows.config import FlowConfig
from flows.pipeline import StepError, intermediate_path, run_flow, run_step
from flows.verify import EXIT_CODES, STAGES, main, verify

@pytest.fixture(autouse=True)
def _keep_caplog(monkeypatch):
    """The CLIs install their own log handler; keep pytest's."""
    import flows.verify

    for mod in (pipeline, flows.verify):
        monkeypatch.setattr(mod, "setup_logging", lambda verbose=False: None)


GRAPH = ["qonnx", "tidy", "qonnx_to_finn", "streamline", "lower", "convert_to_hw",
         "create_dataflow_partition"]


@pytest.fixture(scope="module")
def tfc_partial(tmp_path_factory):
    """FINN's TFC-W1A1 (Brevitas export), compiled only up to the partition (seconds)."""
    root = tmp_path_factory.mktemp("tfc")
    onnx = zoo.export("tfc_1w1a", root / "tfc_1w1a.onnx")
    spec = zoo.ZOO["tfc_1w1a"]
    cfg = FlowConfig(onnx=onnx, output_dir=root / "build", to_step="create_dataflow_partition",
                     input_datatype=spec.input_datatype, input_scale=spec.input_scale)
    run_flow(cfg)
    return cfg


def _stage(report, name):
    return next(s for s in report.stages if s.stage == name)


def test_onnx_build_is_verified_against_its_qonnx_model(tfc_partial):
    report = verify(tfc_partial.out_dir, samples=3, stages=GRAPH)
    assert report.result == "PASS", [(s.stage, s.status, s.note) for s in report.stages]
    assert report.reference.startswith("qonnx")
    assert _stage(report, "qonnx").note == "reference"
    assert all(_stage(report, s).exact is True for s in GRAPH[3:])
    # the Brevitas stage is not applicable, and says why; it does not count
    assert _stage(report, "brevitas").status == "not run"


def test_an_incomplete_build_is_incomplete_never_pass(tfc_partial, tmp_path, capsys):
    report = verify(tfc_partial.out_dir, samples=2)
    assert report.result == "INCOMPLETE"
    skipped = {s.stage for s in report.stages if s.status == "skipped"}
    assert skipped == {"rtlsim", "accel_rtlsim"}  # asked for by default, the build has no RTL
    assert {s.stage: s.status for s in report.stages}["cppsim"] == "not run"
    code = main(["--build", str(tfc_partial.out_dir), "--samples", "2",
                 "--report", str(tmp_path / "v")])
    assert code == EXIT_CODES["INCOMPLETE"] == EXIT_INCOMPLETE == 4
    assert "Result: **INCOMPLETE**" in capsys.readouterr().out


def test_a_tool_stage_asked_for_by_name_makes_it_incomplete(tfc_partial):
    report = verify(tfc_partial.out_dir, samples=2, stages=["qonnx", "cppsim"])
    assert _stage(report, "cppsim").status == "skipped" and report.result == "INCOMPLETE"
    report = verify(tfc_partial.out_dir, samples=2, stages=["qonnx", "brevitas"])
    assert _stage(report, "brevitas").status == "skipped" and report.result == "INCOMPLETE"


def test_unknown_stage_is_exit_2_with_the_valid_names(tfc_partial, caplog):
    assert main(["--build", str(tfc_partial.out_dir), "--stages", "qonnx,rtl"]) == 2
    assert f"unknown stage 'rtl'; valid: {', '.join(sorted(STAGES))}" in caplog.text


def test_mlp_input_is_the_flat_pixel_vector(tfc_partial):
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(str(intermediate_path(tfc_partial, "create_dataflow_partition")))
    name = m.graph.input[0].name
    assert m.get_tensor_shape(name) == [1, 784] and m.get_tensor_datatype(name).name == "UINT8"
    # the binarising input quantizer runs on chip, then the four FCs; no Reshape left to map
    assert [n.op_type for n in m.graph.node] == ["Thresholding"] + ["MVAU"] * 4


def test_flat_export_compiles_the_same(tmp_path):
    onnx = zoo.export("tfc_1w1a", tmp_path / "flat.onnx", flat_input=True)
    cfg = FlowConfig(onnx=onnx, output_dir=tmp_path / "b", to_step="create_dataflow_partition",
                     input_datatype="UINT8", input_scale=1 / 255)
    run_flow(cfg)
    assert verify(cfg.out_dir, samples=2, stages=GRAPH).result == "PASS"


def test_foreign_model_without_input_quantizer_needs_the_options(tmp_path, caplog):
    onnx = zoo.export("tfc_1w1a", tmp_path / "tfc.onnx")
    code = pipeline.main(["--onnx", str(onnx), "-o", str(tmp_path / "b"), "--to-step",
                          "qonnx_to_finn"])
    assert code == 2
    assert "--input-datatype" in caplog.text and "Traceback" not in caplog.text


def test_failing_transformation_names_step_and_node():
    def step(model, cfg):
        node = helper.make_node("Foo", ["a"], ["b"], name="Foo_7")  # noqa: F841 (as FINN's
        # passes do: the node being converted is a local named `node`)
        raise KeyError("Op 'Foo' not found in domain 'finn.custom_op.fpgadataflow'")

    with pytest.raises(StepError, match=r"^step convert_to_hw failed at node Foo_7 \(Foo\): "
                                        r"KeyError: .Op 'Foo' not found"):
        run_step("convert_to_hw", step, None, None)


def test_cli_reports_a_failing_step_in_one_line_and_exit_2(tfc_partial, tmp_path, monkeypatch,
                                                           caplog):
    def broken(model, cfg):
        node = model.graph.node[0]  # noqa: F841
        raise ValueError("axes don't match array\nsecond line")

    monkeypatch.setitem(pipeline.STEPS, "streamline", broken)
    caplog.set_level(logging.INFO)
    argv = ["--onnx", str(tfc_partial.onnx), "-o", str(tmp_path / "b"), "--to-step",
            "streamline", "--set", "input_datatype=UINT8", "--set",
            "input_scale=0.00392156862745098"]
    assert pipeline.main(argv) == 2
    err = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(err) == 1 and err[0].startswith("step streamline failed at node ")
    assert err[0].endswith("ValueError: axes don't match array (run with -v for the traceback)")
