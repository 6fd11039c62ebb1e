# SPDX-License-Identifier: BSD-3-Clause
"""Analytic FIFO sizing for the dataflow graph (FINN's own sizing needs RTL simulation in Vivado).

A join (elementwise add or multiply) stalls until both operands arrive; the FIFO in front of the
operand that arrives early must hold everything produced before its partner's first word:

* if the *other* branch contains a global pool (the squeeze-and-excitation gate, which exists only
  after the whole frame has been pooled), that is a **full frame** of this operand — otherwise the
  pipeline deadlocks (``../shared/notes/finn-bnext-probe.md``, "SE gate buffering");
* otherwise the skew is a few rows of the sliding windows on the other branch: ``SKEW_ROWS`` rows.

Every other stream gets FINN's shallow default. Depths are written into ``inFIFODepths`` and FINN's
``InsertDWC`` / ``InsertFIFO`` build the FIFOs and width converters.
"""

from __future__ import annotations

import logging

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.general import GiveUniqueNodeNames

from .config import FlowConfig

log = logging.getLogger(__name__)

SKEW_ROWS = 4
MIN_DEPTH = 32
JOIN_OPS = ("ElementwiseAdd", "ElementwiseMul", "ElementwiseSub", "StreamingConcat")


def _ancestors(model: ModelWrapper, tensor: str) -> set[str]:
    seen, todo = set(), [tensor]
    while todo:
        producer = model.find_producer(todo.pop())
        if producer is not None and producer.name not in seen:
            seen.add(producer.name)
            todo.extend(i for i in producer.input if i and model.get_initializer(i) is None)
    return seen


def join_depths(model: ModelWrapper) -> dict[str, list[int]]:
    """``{join node: [FIFO depth per input]}`` following the module docstring's rules."""
    by_name = {n.name: n for n in model.graph.node}
    depths = {}
    for node in model.graph.node:
        if not node.op_type.startswith(JOIN_OPS):
            continue
        inst = getCustomOp(node)
        anc = [_ancestors(model, i) for i in node.input]
        result = []
        for k, _ in enumerate(node.input):
            words = int(np.prod(inst.get_folded_input_shape(k)[:-1]))
            others = set().union(*(a for j, a in enumerate(anc) if j != k)) - anc[k]
            if any(by_name[n].op_type.startswith("GlobalAccPool") for n in others):
                depth = words
            else:
                shape = inst.get_normal_input_shape(k)
                rows = words // max(int(shape[1]), 1) if len(shape) == 4 else words
                depth = min(words, SKEW_ROWS * rows)
            result.append(int(max(depth + MIN_DEPTH, MIN_DEPTH)))
        depths[node.name] = result
    return depths


def set_fifo_depths(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    for name, d in join_depths(model).items():
        node = next(n for n in model.graph.node if n.name == name)
        getCustomOp(node).set_nodeattr("inFIFODepths", d)
        log.debug("FIFO depths in front of %s: %s", name, d)
    if cfg.min_fifo_depth > 2:  # FINN's shallow default is 2
        for node in model.graph.node:
            inst = getCustomOp(node)
            for attr in ("inFIFODepths", "outFIFODepths"):
                if attr in inst.get_nodeattr_types():
                    inst.set_nodeattr(attr, [max(d, cfg.min_fifo_depth)
                                             for d in inst.get_nodeattr(attr)])
    model = model.transform(InsertDWC())
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(cfg.board_info.part))
    return model.transform(GiveUniqueNodeNames())
