# SPDX-License-Identifier: BSD-3-Clause
"""``python -m flows.verify`` refuses what it cannot check, before it builds or runs anything:
an unknown stage name (a misspelling, an empty name) lists the valid ones, sample counts are
at least 1, and a folder that is not a readable build is bad input. Exit 2, one error line."""

from __future__ import annotations

import logging

import pytest

import flows.verify
from bnn_brevitas.errors import ConfigError, UnknownNameError
from flows.config import FlowConfig
from flows.names import FLOW_CONFIG
from flows.transforms.graph_input import InputSpec
from flows.verify import STAGES, main, verify
from flows.verify_stages import load_samples

VALID = ", ".join(sorted(STAGES))


@pytest.fixture(autouse=True)
def _nothing_is_built(monkeypatch):
    """Keep pytest's log handler, and fail any case that would compile or find a build."""
    def no_build(*a, **k):
        raise AssertionError("verify compiled a model for a bad input")

    monkeypatch.setattr(flows.verify, "setup_logging", lambda verbose=False: None)
    monkeypatch.setattr(flows.verify, "run_flow", no_build)
    monkeypatch.setattr(flows.verify, "latest_build", lambda root=None: None)


def _config_only(tmp_path):
    """A folder with a valid flow config and nothing else (the flow never ran)."""
    FlowConfig(model="bnext_nano_hw", output_dir=tmp_path).save(tmp_path / FLOW_CONFIG)
    return tmp_path


CASES = {
    "misspelled_stage": (["--stages", "qonx,streamline"], f"unknown stage 'qonx'; valid: {VALID}"),
    "unknown_stage": (["--stages", "nosuch"], f"unknown stage 'nosuch'; valid: {VALID}"),
    "wrong_case": (["--stages", "QONNX"], "unknown stage 'QONNX'"),
    "empty_stages": (["--stages", ""], f"unknown stage ''; valid: {VALID}"),
    "empty_name": (["--stages", "qonnx,,tidy"], "unknown stage ''"),
    "only_commas": (["--stages", ","], "unknown stage ''"),
    "samples_zero": (["--samples", "0"], "samples must be an integer of at least 1, got 0"),
    "samples_negative": (["--samples", "-1"], "samples must be an integer of at least 1, got -1"),
    "samples_not_int": (["--samples", "many"], None),  # argparse: usage, exit 2
    "seed_negative": (["--seed", "-3"], "seed must be an integer of at least 0, got -3"),
    "stage_checked_before_samples": (["--stages", "x", "--samples", "0"], "unknown stage 'x'"),
    "not_a_build": (["--build", "{tmp}"], "is not a build directory (no flow_config.yaml)"),
    "build_is_a_file": (["--build", "{tmp}/f"], "is not a build directory"),
    "bad_flow_config": (["--build", "{bad}"], "must hold a mapping of FlowConfig fields"),
    "flow_never_ran": (["--build", "{empty}", "--stages", "qonnx"],
                       "has no model.qonnx.onnx: the flow did not get past loading"),
}


@pytest.mark.parametrize("argv, message", CASES.values(), ids=CASES.keys())
def test_bad_input_exits_2_with_one_error_line(tmp_path, caplog, argv, message):
    (tmp_path / "f").write_text("")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / FLOW_CONFIG).write_text("- not a mapping\n")
    empty = _config_only(tmp_path / "empty")
    argv = [a.format(tmp=tmp_path, bad=tmp_path / "bad", empty=empty) for a in argv]
    caplog.set_level(logging.INFO)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors: usage, exit 2
        code = e.code
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    if message is not None:
        assert len(errors) == 1 and message in errors[0], errors
        assert "Traceback" not in caplog.text


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(stages=["nosuch"]), UnknownNameError, "unknown stage 'nosuch'"),
    (dict(stages=[]), ConfigError, "no stage named"),
    (dict(samples=0), ConfigError, "samples must be an integer of at least 1"),
    (dict(samples=2.5), ConfigError, "samples must be an integer"),
    (dict(samples=True), ConfigError, "samples must be an integer"),
    (dict(seed=-1), ConfigError, "seed must be an integer of at least 0"),
], ids=["unknown_stage", "no_stage", "zero_samples", "float_samples", "bool_samples", "seed"])
def test_the_library_call_refuses_the_same(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        verify(tmp_path, **kwargs)


@pytest.mark.dataset
def test_more_samples_than_the_test_set_is_an_error():
    spec = InputSpec("UINT8", 1 / 255)
    with pytest.raises(ConfigError, match="test set has 10000 images, 10001 were asked for"):
        load_samples(spec, (1, 28, 28), 10_001)
