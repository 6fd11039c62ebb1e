# SPDX-License-Identifier: BSD-3-Clause
"""The Vivado dry run (``flows/vivado_dryrun.py``): its HDL and Tcl checkers on small made-up
inputs (each must fail on the fault it is for), FINN's CreateStitchedIP on a one-layer model,
and the whole hand-off of the CNV build (``hw.bitstream --vivado-dry-run``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.hdl_scan import scan_text
from flows.tcl_check import check_tcl, find_tclsh

PART = "xczu7ev-ffvc1156-2-e"
needs_tclsh = pytest.mark.skipif(find_tclsh() is None,
                                 reason="tclsh not installed (apt-get install -y tcl)")

WRAPPER_OK = """
module top_a (
  (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 ap_clk CLK" *)
  (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF in0_V:out0_V, ASSOCIATED_RESET ap_rst_n" *)
  input ap_clk,
  (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)
  input ap_rst_n,
  input [W-1:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,
  output [7:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY
);
  parameter W = 2 * 4;
  core_a #(.X(1)) u_core (.clk(ap_clk));
endmodule
"""
CORE = """
package pkg_a; localparam int N = 3; endpackage
module core_a #(parameter int X = 0) (input logic clk);
  import pkg_a::*;
  function automatic my_t f(input int a); return a; endfunction  // not an instance
  always_ff @(posedge clk) begin : blk
    if (X > 0) cnt <= f(cnt);
  end
  DSP48E2 #(.A(1)) dsp (.CLK(clk));  // a Xilinx primitive
endmodule
"""


# -- the HDL scanner --------------------------------------------------------------------------

def test_scan_modules_instances_ports_and_widths():
    (top,) = scan_text(WRAPPER_OK, Path("top.v"))
    assert top.instances == [("core_a", "u_core")]
    assert top.width("in0_V_TDATA") == 8 and top.width("out0_V_TDATA") == 8
    assert top.ports["in0_V_TREADY"].direction == "output"
    assert "ASSOCIATED_BUSIF in0_V:out0_V" in top.ports["ap_clk"].attrs
    pkg, core = scan_text(CORE, Path("core.sv"))
    assert (pkg.kind, pkg.name) == ("package", "pkg_a")
    assert core.instances == [("DSP48E2", "dsp")] and core.packages_used == {"pkg_a"}


# -- the Tcl checker --------------------------------------------------------------------------

@needs_tclsh
def test_tcl_syntax_error_is_named_by_line(tmp_path):
    script = tmp_path / "bad.tcl"
    script.write_text("create_project p ./ -part x\nset_property name {a [get_bd_ports b]\n")
    res = check_tcl(script, {}, tmp_path / "work")
    assert not res.ok and (2, "the command starting here never completes") in res.syntax


@needs_tclsh
def test_tcl_unset_env_variable_and_bad_proc_call_fail(tmp_path):
    script = tmp_path / "s.tcl"
    script.write_text("proc p {a b} {return $a}\n"
                      "add_files -norecurse $::env(FINN_RTLLIB)/memstream/hdl/x.sv\np 1\n")
    res = check_tcl(script, {}, tmp_path / "work")
    assert res.error[0] == 'can\'t read "::env(FINN_RTLLIB)": no such variable'
    assert res.error[1] == 2
    res = check_tcl(script, {"FINN_RTLLIB": "/rtl"}, tmp_path / "work")
    assert res.error[:2] == ('wrong # args: should be "p a b"', 3)
    assert [c.args for c in res.calls if c.name == "add_files"] == [
        ["-norecurse", "/rtl/memstream/hdl/x.sv"]]


# -- the checks on a made-up stitched-IP script -----------------------------------------------

def _launch(tmp_path, tcl_text, intf):
    from flows.vivado_dryrun import Launch

    tcl = tmp_path / "make_project.tcl"
    tcl.write_text(tcl_text)
    return Launch("stitched_ip", "proj", "vivado", "vivado -mode batch -source make_project.tcl",
                  tmp_path / "make_project.sh", tcl, tmp_path, tmp_path, outputs=[], intf=intf)


def _check(tmp_path, tcl_text, wrapper=WRAPPER_OK, intf=None):
    from flows.vivado_dryrun import DryRunReport, ToolBoundary, check_launches

    (tmp_path / "top.v").write_text(wrapper)
    (tmp_path / "core.sv").write_text(CORE)
    intf = intf or {"a0": {"clk": ["ap_clk"], "rst": ["ap_rst_n"], "s_axis": [("in0_V", 8)],
                           "m_axis": [("out0_V", 8)], "aximm": [], "axilite": [],
                           "ap_none": []}}
    boundary = ToolBoundary(tmp_path / "scripts")
    boundary.launches.append(_launch(tmp_path, tcl_text, intf))
    report = DryRunReport(tmp_path, launches=boundary.launches)
    check_launches(report, boundary, {}, find_tclsh(), tmp_path / "checks", tmp_path / "deps")
    return report


GOOD_TCL = """add_files -norecurse {d}/top.v
add_files -norecurse {d}/core.sv
create_bd_cell -type module -reference top_a a0
make_bd_intf_pins_external [get_bd_intf_pins a0/in0_V]
connect_bd_net [get_bd_ports ap_clk] [get_bd_pins a0/ap_clk]
"""


@needs_tclsh
def test_consistent_script_passes(tmp_path):
    report = _check(tmp_path, GOOD_TCL.format(d=tmp_path))
    assert report.passed, report.text()
    assert report.counts["module_defs"] == 2 and report.counts["library_cells"] == 1
    assert "the Xilinx tools did NOT run" in report.text()


@needs_tclsh
def test_missing_file_is_named(tmp_path):
    report = _check(tmp_path, GOOD_TCL.format(d=tmp_path)
                    + f"add_files -norecurse {tmp_path}/gone.sv\n")
    assert [str(p) for p in report.failures] == [
        f"[file] {tmp_path.name}: add_files names {tmp_path}/gone.sv, which does not exist"]


@needs_tclsh
def test_undefined_modules_are_named(tmp_path):
    tcl = GOOD_TCL.format(d=tmp_path).replace(f"add_files -norecurse {tmp_path}/core.sv\n", "")
    tcl += "create_bd_cell -type module -reference top_b b0\n"
    msgs = [p.message for p in _check(tmp_path, tcl).failures]
    assert "cell b0 references module top_b, which no file the script adds defines" in msgs
    assert any(m.startswith("module core_a, instantiated by top_a") for m in msgs)


@needs_tclsh
def test_missing_port_wrong_width_and_no_clock_association_are_named(tmp_path):
    old_style = WRAPPER_OK.replace(
        '(* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF in0_V:out0_V, ASSOCIATED_RESET ap_rst_n" *)',
        "").replace("output [7:0] out0_V_TDATA", "output [6:0] out0_V_TDATA")
    intf = {"a0": {"clk": ["ap_clk"], "rst": ["ap_rst_n"], "s_axis": [("in0_V", 8)],
                   "m_axis": [("out0_V", 8), ("out1_V", 8)]}}
    msgs = [p.message for p in _check(tmp_path, GOOD_TCL.format(d=tmp_path), old_style,
                                      intf).failures]
    assert any("has no port out1_V_TDATA" in m for m in msgs)
    assert any("port top_a.out0_V_TDATA is 7 bits, FINN connects a 8-bit stream" in m
               for m in msgs)
    assert any("does not associate the interface(s) in0_V, out0_V, out1_V" in m for m in msgs)


# -- FINN's CreateStitchedIP on a one-layer model, under the tool boundary ---------------------

@needs_tclsh
def test_finn_stitching_of_one_project_unit(tmp_path, monkeypatch):
    """FINN's real CreateStitchedIP on an XnorMVAU_rtl (renamed afterwards, as ZynqBuild's
    kernel partitions are): one recorded launch, nothing run, every check passes; with the
    unit's clock attributes removed, the port check names them."""
    from finn.transformation.fpgadataflow.create_stitched_ip import CreateStitchedIP
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.util import basic
    from qonnx.custom_op.registry import getCustomOp

    from flows.finn_env import prepare_finn
    from flows.rtl import unit
    from flows.vivado_dryrun import (
        DryRunReport,
        ToolBoundary,
        check_launches,
        environment,
        tool_environment,
    )
    from tests.flows.test_xnor_mvau_op import _binary_mvau, _swap

    def stitch(model, where):
        with environment(tool_environment()), ToolBoundary(where / "scripts") as boundary:
            model.transform(CreateStitchedIP(PART, 5.0))
        report = DryRunReport(where, launches=boundary.launches)
        check_launches(report, boundary, tool_environment(), find_tclsh(), where / "checks",
                       where / "deps")
        return report

    launcher = basic.launch_process_helper
    prepare_finn(tmp_path / "finn")
    model = _swap(_binary_mvau()[0]).transform(PrepareIP(PART, 5.0))
    inst = getCustomOp(model.graph.node[0])
    assert inst.get_nodeattr("ip_path") == inst.get_nodeattr("code_gen_dir_ipgen")
    model.graph.node[0].name = "Partition_1_XnorMVAU_rtl_0"
    report = stitch(model, tmp_path / "a")
    assert basic.launch_process_helper is launcher  # restored
    assert [la.kind for la in report.launches] == ["stitched_ip"]
    assert report.passed, report.text()
    assert report.counts["module_cells"] == 2 and report.counts["port_ok"] >= 9  # + sim_ctrl

    monkeypatch.setattr(unit, "clock_reset_ports", lambda streams: "  input ap_clk, input ap_rst_n")
    model = _swap(_binary_mvau()[0]).transform(PrepareIP(PART, 5.0))
    msgs = [p.message for p in stitch(model, tmp_path / "b").failures]
    assert any("clock port XnorMVAU_rtl_0.ap_clk" in m and "in0_V, out0_V" in m for m in msgs)


# -- the CNV build: the whole hand-off ----------------------------------------------------------

@pytest.fixture(scope="module")
def cnv_dry(cnv_build):
    """The dry run of the CNV build (a few seconds); its folder is removed afterwards, as the
    build is shared with other tests."""
    from flows.names import VIVADO_DRY_RUN

    if find_tclsh() is None:
        pytest.skip("tclsh not installed (apt-get install -y tcl)")
    from hw.bitstream import vivado_dry_run

    yield cnv_build, vivado_dry_run(cnv_build)
    shutil.rmtree(cnv_build.out_dir / VIVADO_DRY_RUN, ignore_errors=True)


def test_cnv_hand_off_passes(cnv_dry):
    import json

    from flows.names import FINN_TMP, VIVADO_DRY_RUN

    cfg, report = cnv_dry
    assert report.passed, report.text()
    kinds = [la.kind for la in report.launches]
    assert kinds.count("stitched_ip") == 4 and kinds.count("hls_ipgen") == 2  # the IODMAs
    assert kinds[-1] == "zynq_shell" and "as planned" in report.stopped
    assert report.counts["tcl_ok"] == len(kinds) and report.counts["module_cells"] > 100
    assert report.counts["shell_pins"] > 0
    dry = cfg.out_dir / VIVADO_DRY_RUN
    saved = json.loads((dry / "report.json").read_text())
    assert saved["xilinx_tools_ran"] is False and saved["result"] == "PASS (dry run)"
    assert all((Path(la["saved"]) / Path(la["tcl"]).name).is_file() for la in saved["launches"])
    assert not list((cfg.out_dir / FINN_TMP).glob("code_gen_*/ipgen.sh"))  # build untouched


def test_cnv_hand_off_names_a_module_missing_from_the_file_list(cnv_dry, monkeypatch):
    """A unit whose IPI commands forget its wrapper: exit 1, naming the cell and module."""
    from bnn_brevitas.errors import CheckFailedError
    from flows.rtl import unit
    from hw.bitstream import vivado_dry_run

    cfg, _ = cnv_dry
    original = unit.RTLUnit.code_generation_ipi
    monkeypatch.setattr(unit.RTLUnit, "code_generation_ipi",
                        lambda self: [c for c in original(self) if not c.endswith(".v")])
    with pytest.raises(CheckFailedError, match=r"cell XnorMVAU_rtl_\d+ references module "
                       r"XnorMVAU_rtl_\d+, which no file the script adds defines"):
        vivado_dry_run(cfg)


def test_cli_exit_codes(cnv_dry, monkeypatch, capsys):
    from hw.bitstream import main

    cfg, _ = cnv_dry
    args = ["--config", str(cfg.out_dir / "flow_config.yaml"), "-o", str(cfg.out_dir),
            "--vivado-dry-run"]
    assert main(args) == 0
    assert "Result: PASS (dry run" in capsys.readouterr().out
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(args) == 3  # no tclsh: the check needs a tool that is missing
