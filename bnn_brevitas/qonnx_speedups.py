# SPDX-License-Identifier: BSD-3-Clause
"""Linear-time versions of qonnx's graph queries that are quadratic in the node count.

qonnx answers every tensor query by scanning the graph: ``get_tensor_shape`` builds a list
of every ValueInfo, ``find_producer`` walks every node, ``get_initializer`` converts and
compares every initializer name. Three places call them once per node, which makes them
O(nodes²) and, for initialisers, O(nodes × weights):

* ``ModelWrapper.check_all_tensor_shapes_specified`` — run by every ``ModelWrapper(...)``, so
  by every ``InferShapes``, and ``FoldQuantWeights`` runs ``InferShapes`` once per weight;
* ``SortGraph.apply`` and ``GiveUniqueParameterTensors.apply`` — part of
  ``ModelWrapper.cleanup`` after every transformation; the second converts every initializer
  to numpy (the whole model's weights) only to test whether a node input is one;
* ``get_tensor_shape`` of an initializer without ValueInfo — it converts the whole tensor to
  numpy to read its shape;
* ``InferShapes.apply`` — every custom op asks for its input's ValueInfo (a scan) while it is
  swapped for a standard op; ``FoldQuantWeights`` and ``RemoveIdentityOps`` run it per node;
* ``InferDataTypes.apply`` — two datatype queries per node, each a scan of every quantization
  annotation; ``MinimizeAccumulatorWidth`` and ``RoundAndClipThresholds`` run it once per node;
* ``PartitionFromLambda.apply`` (FINN's ``CreateDataflowPartition``) — its cycle check walks
  every path back from the partition's inputs, exponential in the forks and joins of a
  residual graph (:func:`partition_from_lambda_apply` visits each node once).

:func:`install` replaces the first three and the last three with versions that index the graph once per call and
give the same answer (the same result, the same ValueInfos added, the same node order, the
same assertion on duplicate ValueInfos); a test compares them with qonnx's own on real graphs.
``InferShapes`` indexes the ValueInfos while the custom ops are swapped (which adds none), and
``InferDataTypes`` keeps an index of the annotations by tensor name for the duration of one
``apply``, updated by every datatype it sets. Nothing is cached across calls, so in-place graph edits between calls stay visible. The
installed packages are not edited; :func:`uninstall` restores qonnx's methods.
"""

from __future__ import annotations

import logging
from collections import Counter
from itertools import chain
from typing import Any

log = logging.getLogger(__name__)

_ORIGINALS: dict[str, Any] = {}
_DISABLED = False


def check_all_tensor_shapes_specified(self, fix_missing_init_shape: bool = False) -> bool:
    """``ModelWrapper.check_all_tensor_shapes_specified`` in one pass over the graph."""
    graph = self._model_proto.graph
    vi_count = Counter(x.name for x in chain(graph.input, graph.output, graph.value_info))
    inits: dict[str, Any] = {}
    for t in graph.initializer:
        inits.setdefault(t.name, t)  # qonnx's get_initializer returns the first match
    ret = True
    for n in graph.node:
        for name in chain((i for i in n.input if i != ""), n.output):
            count = vi_count.get(name, 0)
            assert count <= 1, "Multiple ValueInfoProto found for " + name
            if count == 1:
                continue
            init = inits.get(name)
            if init is None:
                ret = False
            elif fix_missing_init_shape:
                self.set_tensor_shape(name, list(init.dims), dtype=init.data_type)
                vi_count[name] = 1
    return ret


def sort_graph_apply(self, model) -> tuple[Any, bool]:
    """``SortGraph.apply`` (topological node order, qonnx's tie-breaking) with the producer of
    every tensor indexed once instead of searched once per input."""
    from qonnx.util import basic as util  # lazy: qonnx is imported only by install()
    from toposort import toposort_flatten

    nodes = list(model.graph.node)
    if len(nodes) == 1:
        return model, False
    producer: dict[str, int] = {}
    for idx, n in enumerate(nodes):
        for o in n.output:
            producer.setdefault(o, idx)  # find_producer returns the first producing node
    deps: dict[int, set[int]] = {}
    for idx, n in enumerate(nodes):
        preds = [producer[i] for i in n.input if i in producer]
        if preds:
            deps[idx] = set(preds)
            continue
        # no producer: kept only when an input is an initializer or a graph input
        # (qonnx's rule; other floating nodes are dropped)
        for name in n.input:
            if (util.get_by_name(model.graph.initializer, name)
                    or util.get_by_name(model.graph.input, name)):
                deps[idx] = set()
                break
    order = toposort_flatten(deps)
    for n in nodes:
        model.graph.node.remove(n)
    for new_idx, idx in enumerate(order):
        model.graph.node.insert(new_idx, nodes[idx])
    return model, False


def give_unique_parameter_tensors_apply(self, model) -> tuple[Any, bool]:
    """``GiveUniqueParameterTensors.apply``: a second use of an initializer gets its own copy
    (same new names, same order); initializers are looked up by name, and only the ones that
    are copied are converted to numpy."""
    from onnx import numpy_helper  # lazy: onnx is imported only by install()

    inits: dict[str, Any] = {}
    for t in model.graph.initializer:
        inits.setdefault(t.name, t)  # qonnx's get_initializer returns the first match
    seen: set[str] = set()
    for n in model.graph.node:
        for idx, name in enumerate(list(n.input)):
            if name not in inits:
                continue  # a dynamic input
            if name not in seen:
                seen.add(name)
                continue
            new_name = model.make_new_valueinfo_name()
            model.set_initializer(new_name, numpy_helper.to_array(inits[name]))
            model.set_tensor_datatype(new_name, model.get_tensor_datatype(name))
            n.input[idx] = new_name
    return model, False


def infer_shapes_apply(self, model) -> tuple[Any, bool]:
    """``InferShapes.apply`` with the input model's ValueInfo queries answered from an index
    while qonnx swaps each custom op for a shape-compatible standard one. A name the index does
    not hold, or holds twice, goes to qonnx's own query (same answer, same assertion)."""
    graph = model._model_proto.graph
    index: dict[str, Any] = {}
    dups: set[str] = set()
    for vi in chain(graph.input, graph.output, graph.value_info):
        (dups.add if vi.name in index else lambda _n: None)(vi.name)
        index.setdefault(vi.name, vi)
    cls = type(model)

    def get_tensor_valueinfo(name: str):
        vi = index.get(name)
        return vi if vi is not None and name not in dups else cls.get_tensor_valueinfo(model, name)

    def get_tensor_shape(name: str, fix_missing_init_shape: bool = False):
        vi = index.get(name)
        if vi is None or name in dups:
            return cls.get_tensor_shape(model, name, fix_missing_init_shape)
        return [d.dim_value for d in vi.type.tensor_type.shape.dim]

    model.get_tensor_valueinfo, model.get_tensor_shape = get_tensor_valueinfo, get_tensor_shape
    try:
        return original("InferShapes.apply")(self, model)
    finally:
        del model.get_tensor_valueinfo, model.get_tensor_shape


def infer_datatypes_apply(self, model) -> tuple[Any, bool]:
    """``InferDataTypes.apply`` with the model's datatype queries answered from an index of its
    quantization annotations, built once and kept up to date by ``set_tensor_datatype``."""
    from qonnx.core.datatype import DataType  # lazy: qonnx is imported only by install()
    from qonnx.util.basic import get_by_name

    run = original("InferDataTypes.apply")
    graph = model._model_proto.graph
    index: dict[str, Any] = {}
    for qa in graph.quantization_annotation:
        if qa.tensor_name in index:
            return run(self, model)  # qonnx's own error for duplicate annotations
        index[qa.tensor_name] = qa
    cls = type(model)

    def get_tensor_datatype(name: str):
        qa = index.get(name)
        if qa is not None:
            entry = get_by_name(qa.quant_parameter_tensor_names, "finn_datatype", "key")
            if entry is not None:
                return DataType[entry.value]
        return cls.get_tensor_datatype(model, name)  # not annotated: qonnx's fallback

    def set_tensor_datatype(name: str, datatype) -> None:
        qa = index.get(name)
        if qa is None:
            cls.set_tensor_datatype(model, name, datatype)  # appends a new annotation
            if datatype is not None:
                index[name] = graph.quantization_annotation[-1]
            return
        entry = get_by_name(qa.quant_parameter_tensor_names, "finn_datatype", "key")
        if entry is not None:
            if datatype is None:
                entry.Clear()
            else:
                entry.value = datatype.name
        elif datatype is not None:
            new = qa.quant_parameter_tensor_names.add()
            new.key, new.value = "finn_datatype", datatype.name

    model.get_tensor_datatype, model.set_tensor_datatype = get_tensor_datatype, set_tensor_datatype
    try:
        return run(self, model)
    finally:
        del model.get_tensor_datatype, model.set_tensor_datatype


def partition_from_lambda_apply(self, model) -> tuple[Any, bool]:
    """``PartitionFromLambda.apply`` (qonnx 1.0.0, same partitions, same files, same node
    order) with its cycle check visiting each node once. qonnx's check walks back from the
    partition's inputs without remembering what it visited, so every *path* is walked: on a
    graph with many stream forks and joins (the 44 residual fork/joins of bnext_nano_hw) that is
    4·10⁸ visits, each a scan of the graph, when FINN's ``ZynqBuild`` separates the IODMAs from
    the accelerator — the Vivado build would never get to Vivado. The partition's entry and
    exit tensors are also looked up in indexes instead of by scans."""
    import copy
    import pathlib
    import tempfile

    from onnx import helper  # lazy: onnx is imported only by install()

    original_nodes = list(model.graph.node)
    partition_ids = set(map(self.partitioning, original_nodes))
    partition_ids.discard(-1)
    if self.partition_dir is None:
        self.partition_dir = tempfile.mkdtemp(prefix="partitioning_")
    else:
        pathlib.Path(self.partition_dir).mkdir(parents=True, exist_ok=True)
    for partition_id in partition_ids:
        all_nodes = list(model.graph.node)
        in_part = [self.partitioning(x) == partition_id for x in all_nodes]
        partition_nodes = [n for n, inside in zip(all_nodes, in_part) if inside]
        non_partition_nodes = [n for n, inside in zip(all_nodes, in_part) if not inside]
        producer: dict[str, int] = {}
        consumers: dict[str, list[int]] = {}
        for idx, n in enumerate(all_nodes):
            for o in n.output:
                producer.setdefault(o, idx)  # find_producer: the first producing node
            for i in n.input:
                consumers.setdefault(i, []).append(idx)
        p_model = copy.deepcopy(model)
        non_p_model = model
        for node_to_remove in non_partition_nodes:
            p_model.graph.node.remove(node_to_remove)
        inits = {x.name for x in p_model.graph.initializer}
        graph_outputs = {x.name for x in model.graph.output}
        p_produced = {o for n in partition_nodes for o in n.output}
        p_in: list[str] = []
        p_out: list[str] = []
        p_start_ind = 0
        for node, orig in zip(p_model.graph.node, partition_nodes):
            for in_tensor in node.input:
                if in_tensor not in inits and in_tensor not in p_produced:
                    if in_tensor not in p_in:
                        p_in.append(in_tensor)
                    if p_start_ind == 0:
                        p_start_ind = all_nodes.index(orig)
            for out_tensor in node.output:
                # a top-level output, or one with a consumer outside the partition
                leaves = out_tensor in graph_outputs or any(
                    not in_part[c] for c in consumers.get(out_tensor, []))
                if leaves and out_tensor not in p_out:
                    p_out.append(out_tensor)
        p_in_vi = [p_model.get_tensor_valueinfo(x) for x in p_in]
        p_out_vi = [p_model.get_tensor_valueinfo(x) for x in p_out]
        # legal (no cycle): nothing the partition's inputs depend on lies inside it
        to_check = [producer[x] for x in p_in if x in producer]
        seen = set(to_check)
        while to_check:
            idx = to_check.pop()
            assert not in_part[idx], "cycle-free graph violated: partition depends on itself"
            for i in all_nodes[idx].input:
                pred = producer.get(i)
                if pred is not None and pred not in seen:
                    seen.add(pred)
                    to_check.append(pred)
        while len(p_model.graph.input) > 0:
            p_model.graph.input.pop()
        for i in p_in_vi:
            p_model.graph.input.append(i)
        while len(p_model.graph.output) > 0:
            p_model.graph.output.pop()
        for o in p_out_vi:
            p_model.graph.output.append(o)
        for i in p_in_vi:
            if i in p_model.graph.value_info:
                p_model.graph.value_info.remove(i)
        for o in p_out_vi:
            if o in p_model.graph.value_info:
                p_model.graph.value_info.remove(o)
        p_model_filename = self.partition_dir + "/partition_" + str(partition_id) + ".onnx"
        p_model.cleanup()
        p_model.save(p_model_filename)
        p_node = helper.make_node("GenericPartition", p_in, p_out,
                                  name="GenericPartition_" + str(partition_id),
                                  model=p_model_filename, domain="qonnx.custom_op.general")
        non_p_model.graph.node.insert(p_start_ind, p_node)
        for node_to_remove in partition_nodes:
            non_p_model.graph.node.remove(node_to_remove)
        model = non_p_model
    return (model, False)


def _targets() -> dict[str, tuple[Any, str, Any]]:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.create_generic_partitions import PartitionFromLambda
    from qonnx.transformation.general import GiveUniqueParameterTensors, SortGraph
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    return {
        "check_all_tensor_shapes_specified":
            (ModelWrapper, "check_all_tensor_shapes_specified", check_all_tensor_shapes_specified),
        "SortGraph.apply": (SortGraph, "apply", sort_graph_apply),
        "GiveUniqueParameterTensors.apply":
            (GiveUniqueParameterTensors, "apply", give_unique_parameter_tensors_apply),
        "InferDataTypes.apply": (InferDataTypes, "apply", infer_datatypes_apply),
        "InferShapes.apply": (InferShapes, "apply", infer_shapes_apply),
        "PartitionFromLambda.apply": (PartitionFromLambda, "apply", partition_from_lambda_apply),
    }


def install() -> None:
    """Use the linear-time queries in this process (idempotent; not after :func:`disable`)."""
    if _DISABLED:
        return
    for key, (owner, attr, fast) in _targets().items():
        if key not in _ORIGINALS:
            _ORIGINALS[key] = getattr(owner, attr)
            setattr(owner, attr, fast)
            log.debug("qonnx %s: linear-time version installed", key)


def uninstall() -> None:
    """Restore qonnx's own methods."""
    for key, (owner, attr, _fast) in _targets().items():
        if key in _ORIGINALS:
            setattr(owner, attr, _ORIGINALS.pop(key))


def disable() -> None:
    """Restore qonnx's methods and keep them for the rest of the process (a baseline for
    ``scripts/bench_flow.py``)."""
    global _DISABLED
    _DISABLED = True
    uninstall()


def original(key: str) -> Any:
    """qonnx's own implementation of ``key`` (for comparisons), installed or not."""
    if key in _ORIGINALS:
        return _ORIGINALS[key]
    owner, attr, _fast = _targets()[key]
    return getattr(owner, attr)
