# SPDX-License-Identifier: BSD-3-Clause
"""Folding: how many PEs/SIMD lanes each layer gets.

* :func:`fold_for_cycles` — FINN's ``SetFolding`` for a target cycles-per-frame, plus the layers
  it does not fold (finn-plus' elementwise operations stay at PE = 1 otherwise and become the
  bottleneck);
* :func:`fold_for_budget` — the fastest such folding whose estimated LUT/BRAM/URAM/DSP fit a
  fraction of the board: a bisection on the cycle target;
* ``folding.json`` holds every folding attribute per layer; users edit it and feed it back as
  ``FlowConfig.folding_file`` (FINN's ``ApplyConfig`` format).

Estimates are those of the design ``hw_codegen`` builds (:func:`as_built`): the layers it moves
to the project's RTL units (``flows/rtl``) are estimated with the units' own models, not with
those of the FINN layers they replace.

Weight memories: layers whose weights exceed ``URAM_THRESHOLD_BITS`` are placed in URAM where
the board has it (``ram_style = ultra``), except in the RTL units, which embed their weights
(LUTs or BRAM); everything else is left to Vivado.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bnn_brevitas.errors import ConfigError

from .config import FlowConfig
from .estimate import RES_KEYS
from .rtl.registry import RTL_OP_CLASSES
from .transforms.rtl_swap import rtl_swaps

log = logging.getLogger(__name__)

FOLDING_ATTRS = ("PE", "SIMD", "parallel_window", "mem_mode", "ram_style",
                 "ram_style_thresholds", "runtime_writeable_weights", "resType")
#: weight memories larger than this go to URAM on boards that have it (1 URAM = 288 Kib)
URAM_THRESHOLD_BITS = 2 * 288 * 1024
#: layer types FINN's SetFolding leaves alone but that have a PE over their channels
EXTRA_PE_OPS = ("ElementwiseAdd", "ElementwiseMul", "ElementwiseSub")
#: the op types of the project's RTL units
UNIT_OPS = frozenset(op.__name__ for op in RTL_OP_CLASSES)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


#: FINN's HLS MVAU needs SIMD ≥ MW / this (``MVAU_hls`` code generation asserts it)
HLS_MVAU_MAX_SIMD_FOLD = 1024


def hls_simd_floor(model: ModelWrapper) -> ModelWrapper:
    """Raise an ``MVAU_hls``'s SIMD to the smallest divisor of MW that is ≥ MW / 1024, the HLS
    template's limit (FINN's SetFolding leaves SIMD 1 for a layer it cannot fold further)."""
    for node in model.graph.node:
        if not node.op_type.startswith("MVAU_hls"):
            continue
        inst = getCustomOp(node)
        mw = int(inst.get_nodeattr("MW"))
        if inst.get_nodeattr("SIMD") * HLS_MVAU_MAX_SIMD_FOLD < mw:
            simd = next(d for d in _divisors(mw) if d * HLS_MVAU_MAX_SIMD_FOLD >= mw)
            log.info("%s: SIMD %d → %d (HLS MVAU needs SIMD ≥ MW/%d, MW %d)", node.name,
                     inst.get_nodeattr("SIMD"), simd, HLS_MVAU_MAX_SIMD_FOLD, mw)
            inst.set_nodeattr("SIMD", simd)
    return model


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


def rtl_swaps_for(cfg: FlowConfig) -> list:
    """The swaps to the project's RTL units that ``hw_codegen`` applies for ``cfg``: binary
    MVAUs with ``binary_mvau: rtl``, the other layers with ``project_rtl``."""
    return rtl_swaps(cfg.binary_mvau == "rtl", cfg.project_rtl)


def as_built(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """A copy of ``model`` with :func:`rtl_swaps_for` applied: the layers as ``hw_codegen``
    will instantiate them, for estimates. The swaps keep every layer's tensors, so a layer is
    found in both graphs by its output tensor (node names change with the op type)."""
    built = ModelWrapper(copy.deepcopy(model.model))
    swap_log = logging.getLogger("flows.transforms")
    level = swap_log.level
    swap_log.setLevel(logging.WARNING)  # what the swaps move is logged when hw_codegen runs them
    try:
        for swap in rtl_swaps_for(cfg):
            built = built.transform(swap, make_deepcopy=False, cleanup=False)
    finally:
        swap_log.setLevel(level)
    return built


def unit_outputs(built: ModelWrapper) -> set[str]:
    """The output tensors of the layers of ``built`` that are project RTL units."""
    return {n.output[0] for n in built.graph.node if n.op_type in UNIT_OPS}


def layer_resources(built: ModelWrapper, part: str) -> dict[str, dict[str, float]]:
    """Each layer's estimated LUT/BRAM18/URAM/DSP (its op's own estimate), keyed by the layer's
    output tensor."""
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    per_node = built.analysis(lambda m: res_estimation(m, part))
    return {n.output[0]: {k: float(per_node[n.name].get(k, 0)) for k in RES_KEYS}
            for n in built.graph.node if n.name in per_node}


def total_resources(built: ModelWrapper, part: str) -> dict[str, float]:
    """The sum of :func:`layer_resources`."""
    per_layer = layer_resources(built, part).values()
    return {k: sum(r[k] for r in per_layer) for k in RES_KEYS}


def _weight_bits(inst) -> int:
    return inst.calc_wmem() * inst.get_nodeattr("PE") * inst.get_nodeattr("SIMD") \
        * inst.get_input_datatype(1).bitwidth()


def _use_uram(inst) -> None:
    inst.set_nodeattr("ram_style", "ultra")
    inst.set_nodeattr("runtime_writeable_weights", 1)  # FINN requires it for URAM weights


def _stream(inst) -> None:
    inst.set_nodeattr("mem_mode", "external")
    inst.set_nodeattr("ram_style", "auto")
    inst.set_nodeattr("runtime_writeable_weights", 0)


def set_memory_styles(model: ModelWrapper, cfg: FlowConfig,
                      stream_units: bool = True) -> ModelWrapper:
    """Where each MVAU keeps its weights.

    A fixed ``cfg.mem_mode`` applies to every MVAU (weights above ``URAM_THRESHOLD_BITS`` go to
    URAM where the board has it, except in MVAUs that become project RTL units: those embed
    their weights). ``auto`` keeps all weights on chip while the BRAM and URAM estimated for
    the design as built (:func:`as_built`) fit the budget, and otherwise moves the largest
    weight memories of FINN's MVAUs first into URAM (while URAM lasts), then to DRAM
    (``external``: streamed by a DMA at run time). MVAUs that become RTL units move to DRAM
    last, and only with ``stream_units``; streamed, they stay FINN's ``MVAU_hls`` (the units
    have no weight stream)."""
    has_uram = cfg.board_info.resources.uram > 0
    mvaus = sorted((getCustomOp(n) for n in model.graph.node if n.op_type.startswith("MVAU")),
                   key=_weight_bits, reverse=True)
    for inst in mvaus:
        inst.set_nodeattr("mem_mode", "internal_decoupled" if cfg.mem_mode == "auto"
                          else cfg.mem_mode)
    built = as_built(model, cfg)
    units = unit_outputs(built)
    own = [i for i in mvaus if i.onnx_node.output[0] not in units]
    for inst in own:
        if has_uram and inst.get_nodeattr("mem_mode") == "internal_decoupled" \
                and _weight_bits(inst) > URAM_THRESHOLD_BITS:
            _use_uram(inst)
    if cfg.mem_mode != "auto":
        return model
    part = cfg.board_info.part
    avail = cfg.board_info.resources.as_finn()
    limit = {k: cfg.resource_budget * avail[k] for k in ("BRAM_18K", "URAM")}
    mem = lambda i: {"BRAM_18K": i.bram_estimation(part), "URAM": i.uram_estimation(part)}  # noqa
    per_layer = layer_resources(built, part)
    for inst in own:  # the same ops in both graphs, but their URAM placement came after the copy
        per_layer[inst.onnx_node.output[0]].update(mem(inst))
    totals = {k: sum(r[k] for r in per_layer.values()) for k in limit}

    def fit() -> bool:
        return all(totals[k] <= limit[k] for k in limit)

    def move(inst, to) -> None:  # apply ``to`` and update the totals by the layer's change
        out = inst.onnx_node.output[0]
        before = per_layer[out]
        to(inst)
        per_layer[out] = mem(inst)
        for k in totals:
            totals[k] += per_layer[out][k] - before[k]

    for inst in own:
        if fit():
            break
        if inst.get_nodeattr("ram_style") != "ultra" and has_uram:
            move(inst, _use_uram)
            if totals["URAM"] <= limit["URAM"]:
                continue
        move(inst, _stream)
    streamed = []
    last = [i for i in mvaus if i.onnx_node.output[0] in units] if stream_units else []
    for inst in last:
        if fit():
            break
        move(inst, _stream)
        streamed.append(inst.onnx_node.name)
    if streamed:
        log.warning("weights of %s streamed from DRAM: they stay FINN's MVAU_hls (the RTL "
                    "units embed their weights, which do not fit the budget)",
                    ", ".join(streamed))
    return model


def fold_for_cycles(model: ModelWrapper, cycles: int, cfg: FlowConfig,
                    stream_units: bool = True) -> ModelWrapper:
    """Fold every layer for at most ``cycles`` clock cycles per frame (where possible);
    weight memories by :func:`set_memory_styles`."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    cycles = max(int(cycles), 1)
    model = model.transform(SetFolding(cycles, mvau_wwidth_max=1024, two_pass_relaxation=True))
    return set_memory_styles(hls_simd_floor(fold_extra(model, cycles)), cfg, stream_units)


def max_cycles(model: ModelWrapper) -> tuple[int, str]:
    """The most cycles per frame of any layer, and that layer."""
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer

    cycles = model.analysis(exp_cycles_per_layer)
    name = max(cycles, key=cycles.get)
    return int(cycles[name]), name


def fits(totals: dict[str, float], cfg: FlowConfig) -> bool:
    """Whether ``totals`` fit ``cfg.resource_budget`` of the board."""
    avail = cfg.board_info.resources.as_finn()
    return all(totals[k] <= cfg.resource_budget * avail[k] for k in totals)


def fold_for_budget(model: ModelWrapper, cfg: FlowConfig, iterations: int = 12) -> ModelWrapper:
    """Bisect the cycle target for the fastest folding within the resource budget, estimated
    for the design as built (:func:`as_built`). Weights of MVAUs that become RTL units stay on
    chip (folding makes them fit) unless even the most folded design does not fit with them
    there; only then are they streamed from DRAM as FINN's ``MVAU_hls``."""
    part = cfg.board_info.part

    def estimate(folded: ModelWrapper) -> tuple[bool, int]:
        built = as_built(folded, cfg)
        return fits(total_resources(built, part), cfg), max_cycles(built)[0]

    stream_units = False
    slowest = fold_for_cycles(model, 10**12, cfg, stream_units)
    ok, hi = estimate(slowest)  # hi: every layer at its minimum folding
    if not ok:
        stream_units = True
        slowest = fold_for_cycles(model, 10**12, cfg, stream_units)
        ok, hi = estimate(slowest)
    if not ok:
        log.warning("even the most folded design exceeds %.0f %% of %s; keeping it",
                    100 * cfg.resource_budget, cfg.board)
        return slowest
    lo, best = 1, slowest
    for _ in range(iterations):
        if hi - lo <= max(1, hi // 50):
            break
        mid = (lo + hi) // 2
        candidate = fold_for_cycles(model, mid, cfg, stream_units)
        ok, cycles = estimate(candidate)
        if ok:
            best, hi = candidate, max(cycles, lo + 1)
        else:
            lo = mid
    log.info("folding: at most %d cycles per frame, resources estimated as built", hi)
    return best


def save_folding(model: ModelWrapper, path: Path) -> None:
    from finn.util.config import extract_model_config_to_json

    extract_model_config_to_json(model, path, list(FOLDING_ATTRS))


def apply_folding_file(model: ModelWrapper, path: Path) -> ModelWrapper:
    from finn.transformation.general import ApplyConfig

    if not Path(path).is_file():
        raise ConfigError(f"folding file {str(path)!r} does not exist")
    return model.transform(ApplyConfig(str(path)))
