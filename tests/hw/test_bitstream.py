# SPDX-License-Identifier: BSD-3-Clause
"""hw/bitstream.py up to the point where Vivado is needed: the tool-free flow runs, the missing
tool is named, the artefacts are listed, the exit code is 3, and a second run reuses the build."""

from __future__ import annotations

import logging
import shutil

import pytest

from bnn_brevitas.errors import EXIT_MISSING_TOOL, InternalError, MissingToolError
from flows.boards import get_board, list_boards
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
    assert rc == EXIT_MISSING_TOOL
    assert "reusing it" in caplog.text and "missing Xilinx tool(s): vitis_hls" in caplog.text


def test_finn_build_config_targets_the_board():
    cfg = FlowConfig(model="cnv_w1a1", board="pynq-z2")
    b = bitstream.finn_build_config(cfg)
    assert (b.board, b.fpga_part, b.synth_clk_period_ns) == ("Pynq-Z2", "xc7z020clg400-1", 10.0)
    assert b.output_dir == str(cfg.out_dir / "vivado")


@pytest.mark.parametrize("name", list_boards())
def test_board_registry_agrees_with_finns_tables(name):
    """FINN looks the board up in its own tables at build time; they must say what ours say."""
    from finn.util.basic import pynq_native_port_width, pynq_part_map

    board = get_board(name)
    assert pynq_part_map[board.finn_name] == board.part
    assert pynq_native_port_width[board.finn_name] == board.axi_port_width
    b = bitstream.finn_build_config(FlowConfig(model="cnv_w1a1", board=board.finn_name))
    assert b.shell_flow_type.value == board.shell.flow == "vivado_zynq"
    assert b.synth_clk_period_ns == pytest.approx(board.clk_ns)


def test_a_registry_that_disagrees_with_finn_is_refused(monkeypatch):
    from finn.util import basic

    monkeypatch.setitem(basic.pynq_native_port_width, "ZCU104", 64)
    with pytest.raises(InternalError, match="AXI port 128 bits; the installed FINN says"):
        bitstream.finn_build_config(FlowConfig(model="cnv_w1a1", board="zcu104"))
