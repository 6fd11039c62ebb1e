# SPDX-License-Identifier: BSD-3-Clause
"""Folding: how many PEs/SIMD lanes each layer gets.

* :func:`fold_for_cycles` — FINN's ``SetFolding`` for a target cycles-per-frame, plus the layers
  it does not fold (finn-plus' elementwise operations stay at PE = 1 otherwise and become the
  bottleneck);
* :func:`fold_for_budget` — the fastest such folding whose estimated LUT/BRAM/URAM/DSP fit a
  fraction of the board: a bisection on the cycle target;
* ``folding.json`` holds every folding attribute per layer; users edit it and feed it back as
  ``FlowConfig.folding_file`` (FINN's ``ApplyConfig`` format).

Weight memories: layers whose weights exceed ``URAM_THRESHOLD_BITS`` are placed in URAM where
the board has it (``ram_style = ultra``), everything else is left to Vivado.
"""

from __future__ import annotations

import logging
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bnn_brevitas.errors import ConfigError

from .config import FlowConfig

log = logging.getLogger(__name__)

FOLDING_ATTRS = ("PE", "SIMD", "parallel_window", "mem_mode", "ram_style",
                 "ram_style_thresholds", "runtime_writeable_weights", "resType")
#: weight memories larger than this go to URAM on boards that have it (1 URAM = 288 Kib)
URAM_THRESHOLD_BITS = 2 * 288 * 1024
#: layer types FINN's SetFolding leaves alone but that have a PE over their channels
EXTRA_PE_OPS = ("ElementwiseAdd", "ElementwiseMul", "ElementwiseSub")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def fold_extra(model: ModelWrapper, cycles: int) -> ModelWrapper:
    """Smallest PE (a divisor of the channels) meeting ``cycles`` for :data:`EXTRA_PE_OPS`."""
    for node in model.graph.node:
        if not node.op_type.startswith(EXTRA_PE_OPS):
            continue
        inst = getCustomOp(node)
        channels = int(inst.get_normal_output_shape()[-1])
        for pe in _divisors(channels):
            inst.set_nodeattr("PE", pe)
            if inst.get_exp_cycles() <= cycles:
                break
    return model


def _weight_bits(inst) -> int:
    return inst.calc_wmem() * inst.get_nodeattr("PE") * inst.get_nodeattr("SIMD") \
        * inst.get_input_datatype(1).bitwidth()


def _use_uram(inst) -> None:
    inst.set_nodeattr("ram_style", "ultra")
    inst.set_nodeattr("runtime_writeable_weights", 1)  # FINN requires it for URAM weights


def set_memory_styles(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Where each MVAU keeps its weights.

    A fixed ``cfg.mem_mode`` applies to every MVAU (weights above ``URAM_THRESHOLD_BITS`` go to
    URAM where the board has it). ``auto`` keeps all weights on chip while the estimated BRAM
    and URAM fit the budget, and otherwise moves the largest weight memories first into URAM
    (while URAM lasts), then to DRAM (``external``: streamed by a DMA at run time)."""
    has_uram = cfg.board_info.resources.uram > 0
    mvaus = sorted((getCustomOp(n) for n in model.graph.node if n.op_type.startswith("MVAU")),
                   key=_weight_bits, reverse=True)
    for inst in mvaus:
        inst.set_nodeattr("mem_mode", "internal_decoupled" if cfg.mem_mode == "auto"
                          else cfg.mem_mode)
        if has_uram and inst.get_nodeattr("mem_mode") == "internal_decoupled" \
                and _weight_bits(inst) > URAM_THRESHOLD_BITS:
            _use_uram(inst)
    if cfg.mem_mode != "auto":
        return model
    part = cfg.board_info.part
    avail = cfg.board_info.resources.as_finn()
    limit = {k: cfg.resource_budget * avail[k] for k in ("BRAM_18K", "URAM")}
    totals = total_resources(model, part)
    mem = lambda i: {"BRAM_18K": i.bram_estimation(part), "URAM": i.uram_estimation(part)}  # noqa
    for inst in mvaus:
        if all(totals[k] <= limit[k] for k in limit):
            break
        before = mem(inst)
        if inst.get_nodeattr("ram_style") != "ultra" and has_uram:
            _use_uram(inst)
            after = mem(inst)
            if totals["URAM"] - before["URAM"] + after["URAM"] <= limit["URAM"]:
                totals = {k: totals[k] - before.get(k, 0) + after.get(k, 0) for k in totals}
                continue
        inst.set_nodeattr("mem_mode", "external")
        inst.set_nodeattr("ram_style", "auto")
        inst.set_nodeattr("runtime_writeable_weights", 0)
        after = mem(inst)
        totals = {k: totals[k] - before.get(k, 0) + after.get(k, 0) for k in totals}
    return model


def fold_for_cycles(model: ModelWrapper, cycles: int, cfg: FlowConfig) -> ModelWrapper:
    """Fold every layer for at most ``cycles`` clock cycles per frame (where possible)."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    cycles = max(int(cycles), 1)
    model = model.transform(SetFolding(cycles, mvau_wwidth_max=1024, two_pass_relaxation=True))
    return set_memory_styles(fold_extra(model, cycles), cfg)


def max_cycles(model: ModelWrapper) -> tuple[int, str]:
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer

    cycles = model.analysis(exp_cycles_per_layer)
    name = max(cycles, key=cycles.get)
    return int(cycles[name]), name


def total_resources(model: ModelWrapper, part: str) -> dict[str, float]:
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    per_layer = model.analysis(lambda m: res_estimation(m, part))
    keys = ("LUT", "BRAM_18K", "URAM", "DSP")
    return {k: float(sum(r.get(k, 0) for r in per_layer.values())) for k in keys}


def fits(totals: dict[str, float], cfg: FlowConfig) -> bool:
    avail = cfg.board_info.resources.as_finn()
    return all(totals[k] <= cfg.resource_budget * avail[k] for k in totals)


def fold_for_budget(model: ModelWrapper, cfg: FlowConfig, iterations: int = 12) -> ModelWrapper:
    """Bisect the cycle target for the fastest folding within the resource budget."""
    part = cfg.board_info.part
    slowest = fold_for_cycles(model, 10**12, cfg)
    hi, _ = max_cycles(slowest)  # every layer at its minimum folding
    if not fits(total_resources(slowest, part), cfg):
        log.warning("even the most folded design exceeds %.0f %% of %s; keeping it",
                    100 * cfg.resource_budget, cfg.board)
        return slowest
    lo, best = 1, slowest
    for _ in range(iterations):
        if hi - lo <= max(1, hi // 50):
            break
        mid = (lo + hi) // 2
        candidate = fold_for_cycles(model, mid, cfg)
        if fits(total_resources(candidate, part), cfg):
            best, hi = candidate, max(max_cycles(candidate)[0], lo + 1)
        else:
            lo = mid
    return best


def save_folding(model: ModelWrapper, path: Path) -> None:
    from finn.util.config import extract_model_config_to_json

    extract_model_config_to_json(model, path, list(FOLDING_ATTRS))


def apply_folding_file(model: ModelWrapper, path: Path) -> ModelWrapper:
    from finn.transformation.general import ApplyConfig

    if not Path(path).is_file():
        raise ConfigError(f"folding file {str(path)!r} does not exist")
    return model.transform(ApplyConfig(str(path)))
