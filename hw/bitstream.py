# SPDX-License-Identifier: BSD-3-Clause
"""``make build-bitstream BOARD=zcu104``: compile a model all the way to a bitfile.

1. Everything that needs no Xilinx tool, through ``flows.pipeline`` (conversion, streamlining,
   HW layers, folding, FIFOs, RTL/HLS code, estimates, driver metadata, golden vectors).
2. Vitis HLS and Vivado are located up front (``flows.tools``: PATH, ``XILINX_HLS``,
   ``XILINX_VIVADO``). When one is missing the build stops here, names the missing tool, lists
   what it produced and how to continue, and exits with status 3 — it never pretends.
3. With the tools: FINN's own builder steps on the folded partition — HLS synthesis of the HLS
   layers, the stitched IP, the Zynq shell and bitfile — then ``accel.bit`` / ``accel.hwh`` are
   copied next to ``accel_meta.json`` so that ``make package`` bundles them.

Step 3 cannot run on machines without Vivado; :func:`finn_build_config` (the exact
configuration it uses) is tested everywhere. ``--vivado-dry-run`` (:func:`vivado_dry_run`)
replaces step 3 by a checked hand-off: FINN's own code for it runs up to each
``vitis_hls``/``vivado`` launch, the scripts it would run land in ``<build>/vivado_dry_run/``
and are checked (``flows/vivado_dryrun.py``); the Xilinx tools do not run.

The source is checked (``flows.pipeline.check_source``) before the build in ``-o`` is looked
at, reused or replaced, so a typo in ``--onnx``/``--checkpoint``/``--model`` never costs a good
build; replacing one follows ``flows.pipeline``'s rules (only a build, only on success).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from bnn_brevitas.errors import CheckFailedError, InternalError, MissingToolError
from bnn_brevitas.utils import module_logger, run_cli, setup_logging
from flows.config import FlowConfig
from flows.finn_env import import_builder, load_model, prepare_finn
from flows.names import (
    ACCEL_META,
    DATAFLOW_PARTITION,
    FINN_TMP,
    FOLDING,
    GOLDEN_DIR,
    INTERMEDIATE_DIR,
    REPORT_DIR,
    VIVADO_DRY_RUN,
)
from flows.pipeline import (
    add_common_args,
    check_source,
    config_from_args,
    intermediate_path,
    is_current,
    run_flow,
)
from flows.tcl_check import require_tclsh
from flows.tools import require_xilinx_tools
from flows.vivado_dryrun import DryRunReport, dry_run, environment, tool_environment

log = module_logger(__spec__, __name__)

#: FINN builder steps run with the Xilinx tools, in order
VIVADO_STEPS = ("step_hw_ipgen", "step_create_stitched_ip", "step_synthesize_bitfile")


def finn_build_config(cfg: FlowConfig):
    """The ``DataflowBuildConfig`` for FINN's Vivado steps of this build."""
    from finn.builder.build_dataflow_config import (
        DataflowBuildConfig,
        DataflowOutputType,
        ShellFlowType,
    )

    from finn.util.basic import pynq_native_port_width, pynq_part_map

    board = cfg.board_info
    # FINN looks the board up in its own tables; they must describe the board of our registry
    theirs = (pynq_part_map.get(board.finn_name), pynq_native_port_width.get(board.finn_name))
    if theirs != (board.part, board.axi_port_width):
        raise InternalError(f"board {board.name}: the registry says part {board.part}, AXI port "
                            f"{board.axi_port_width} bits; the installed FINN says {theirs}")
    return DataflowBuildConfig(
        output_dir=str(cfg.out_dir / "vivado"),
        synth_clk_period_ns=cfg.clk_ns,
        board=board.finn_name,
        shell_flow_type=ShellFlowType(board.shell.flow),
        fpga_part=board.part,
        generate_outputs=[DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE],
        save_intermediate_models=True,
        enable_build_pdb_debug=False,
    )


def produced_artifacts(cfg: FlowConfig) -> list[str]:
    out = cfg.out_dir
    items = [
        (f"{INTERMEDIATE_DIR}/", "the model after every step (ONNX)"),
        (f"{REPORT_DIR}/estimate.md", "FINN estimates: cycles, resources, FPS, latency"),
        (f"{REPORT_DIR}/layers.png", "per-layer cycles and resources"),
        (FOLDING, "the folding, editable (FlowConfig.folding_file)"),
        (f"{FINN_TMP}/", "generated RTL (SystemVerilog) and HLS C++ of every layer"),
        (ACCEL_META, "driver metadata (shapes, datatypes, clock)"),
        (f"{GOLDEN_DIR}/", "golden input/output vectors of the partition"),
        (DATAFLOW_PARTITION, "the HW-layer graph (the driver's --sim model)"),
    ]
    return [f"  {out / rel}  — {what}" for rel, what in items if (out / rel).exists()]


def _tool_free_build(cfg: FlowConfig) -> None:
    """The tool-free part: reuse the build in ``cfg.out_dir`` when current, else run it."""
    check_source(cfg)  # a bad source fails here, before the build in -o is looked at
    if is_current(cfg):
        log.info("%s already holds this build (same config and source): reusing it", cfg.out_dir)
    else:
        run_flow(cfg)


def build_bitstream(cfg: FlowConfig) -> Path:
    """Run the whole build; return the bitfile path. Raises ``MissingToolError`` (after the
    tool-free part) when Vitis HLS or Vivado is not installed."""
    _tool_free_build(cfg)
    try:
        require_xilinx_tools("vitis_hls", "vivado")
    except MissingToolError as e:
        listing = "\n".join(produced_artifacts(cfg))
        raise MissingToolError(
            f"{e}.\nEverything that needs no Xilinx tool is done:\n{listing}\n"
            f"To continue: install Vivado + Vitis HLS, source settings64.sh, and run "
            f"the same `make build-bitstream` again: it reuses this build (same config and source) "
            f"and continues from {intermediate_path(cfg, 'make_driver_meta').name}."
        ) from None
    return _run_vivado_steps(cfg)


def vivado_dry_run(cfg: FlowConfig) -> DryRunReport:
    """The tool-free build, then FINN's Vivado-side steps up to each tool launch, checked
    (``flows/vivado_dryrun.py``); the Xilinx tools never run. Raises ``CheckFailedError``
    (exit 1) naming the failed checks; ``MissingToolError`` (exit 3) without ``tclsh``."""
    require_tclsh()  # before the build: the checks cannot run without it
    _tool_free_build(cfg)
    report = dry_run(cfg, finn_build_config(cfg), VIVADO_STEPS,
                     intermediate_path(cfg, "hw_codegen"))
    print(report.text())
    if not report.passed:
        first = "; ".join(str(p) for p in report.failures[:3])
        raise CheckFailedError(f"Vivado dry run: {len(report.failures)} check(s) failed "
                               f"(the Xilinx tools did not run): {first}"
                               f"{' …' if len(report.failures) > 3 else ''}; full report: "
                               f"{cfg.out_dir / VIVADO_DRY_RUN / 'report.md'}")
    return report


def _run_vivado_steps(cfg: FlowConfig) -> Path:  # pragma: no cover (needs Vivado)
    prepare_finn(cfg.out_dir / FINN_TMP)
    steps = import_builder()
    bcfg = finn_build_config(cfg)
    Path(bcfg.output_dir).mkdir(parents=True, exist_ok=True)
    model = load_model(intermediate_path(cfg, "hw_codegen"))
    with environment(tool_environment()):  # the $::env(FINN_RTLLIB) … FINN's Tcl reads
        for name in VIVADO_STEPS:
            log.info("FINN %s", name)
            model = getattr(steps, name)(model, bcfg)
    bitdir = Path(bcfg.output_dir) / "bitfile"
    for src, dst in (("finn-accel.bit", "accel.bit"), ("finn-accel.hwh", "accel.hwh")):
        shutil.copy2(bitdir / src, cfg.out_dir / dst)
    return cfg.out_dir / "accel.bit"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw.bitstream", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    ap.add_argument("--vivado-dry-run", action="store_true",
                    help="instead of the Vivado steps: run FINN's code for them up to each "
                    "vitis_hls/vivado launch, write the scripts it would run into "
                    f"<build>/{VIVADO_DRY_RUN}/ and check them (files, modules, ports, Tcl); "
                    "the Xilinx tools do not run. Exit 0: checks pass, 1: a check failed")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> None:
        cfg = config_from_args(args)
        if args.vivado_dry_run:
            vivado_dry_run(cfg)
            return
        log.info("bitfile: %s", build_bitstream(cfg))

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    sys.exit(main())
