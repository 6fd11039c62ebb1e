# SPDX-License-Identifier: BSD-3-Clause
"""hw/bitstream.py up to the point where Vivado is needed: the tool-free flow runs, the missing
tool is named, the artefacts are listed, the exit code is 3, and a second run reuses the build."""

from __future__ import annotations

import logging
import shutil

import pytest

from bnn_brevitas.errors import MissingToolError
from flows.config import FlowConfig
from flows.pipeline import is_current
from hw import bitstream

pytestmark = pytest.mark.skipif(
    shutil.which("vivado") is not None, reason="Vivado is installed: the real build would run")


@pytest.fixture
def build(cnv_build, tmp_path, monkeypatch):
    for var in ("XILINX_VIVADO", "XILINX_HLS"):
        monkeypatch.delenv(var, raising=False)
    shutil.copytree(cnv_build.out_dir, tmp_path / "b")
    return FlowConfig(**{**cnv_build.to_dict(), "output_dir": tmp_path / "b"})


def test_missing_vivado_stops_after_the_tool_free_part(build, monkeypatch):
    calls = []
    monkeypatch.setattr(bitstream, "run_flow", lambda cfg: calls.append(cfg))
    assert is_current(build)  # the copied build matches its config and source
    with pytest.raises(MissingToolError) as err:
        bitstream.build_bitstream(build)
    assert calls == []  # reused, not rebuilt
    msg = str(err.value)
    assert msg.startswith("missing Xilinx tool(s): vitis_hls (PATH or $XILINX_HLS), "
                          "vivado (PATH or $XILINX_VIVADO)")
    for artefact in ("report/estimate.md", "accel_meta.json", "golden", "finn_tmp"):
        assert f"{build.out_dir / artefact}  — " in msg
    assert not (build.out_dir / "accel.bit").exists()


def test_a_changed_config_is_rebuilt(build, monkeypatch):
    calls = []
    monkeypatch.setattr(bitstream, "run_flow", lambda cfg: calls.append(cfg))
    changed = FlowConfig(**{**build.to_dict(), "resource_budget": 0.5})
    assert not is_current(changed)
    with pytest.raises(MissingToolError):
        bitstream.build_bitstream(changed)
    assert calls == [changed]


def test_cli_exit_code_3_names_the_tool(build, caplog, monkeypatch):
    monkeypatch.setattr(bitstream, "setup_logging", lambda verbose=False: None)  # keep caplog's
    caplog.set_level(logging.INFO)
    rc = bitstream.main(["--config", str(build.out_dir / "flow_config.yaml"),
                         "-o", str(build.out_dir)])
    assert rc == bitstream.EXIT_MISSING_TOOL
    assert "reusing it" in caplog.text and "missing Xilinx tool(s): vitis_hls" in caplog.text


def test_finn_build_config_targets_the_board():
    cfg = FlowConfig(model="cnv_w1a1", board="pynq-z2")
    b = bitstream.finn_build_config(cfg)
    assert (b.board, b.fpga_part, b.synth_clk_period_ns) == ("Pynq-Z2", "xc7z020clg400-1", 10.0)
    assert b.output_dir == str(cfg.out_dir / "vivado")
