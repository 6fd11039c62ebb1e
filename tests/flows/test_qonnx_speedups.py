# SPDX-License-Identifier: BSD-3-Clause
"""The linear-time qonnx queries (bnn_brevitas/qonnx_speedups.py) give exactly qonnx's own results."""

from __future__ import annotations

import copy
import random

import numpy as np
import onnx
import pytest
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import GiveUniqueParameterTensors, SortGraph
from qonnx.transformation.infer_datatypes import InferDataTypes

from bnn_brevitas import qonnx_speedups
from tests.flows.graphs import make_model, mt


@pytest.fixture
def qonnx_original():
    """qonnx's own methods for the test's duration, then the speed-ups again."""
    qonnx_speedups.uninstall()
    yield
    qonnx_speedups.install()


def both(fn, model: ModelWrapper):
    """``fn`` applied to two copies of ``model``: with qonnx's methods, then with the fast ones
    (same seed for the random tensor names); returns both models' bytes and results."""
    out = []
    for fast in (False, True):
        (qonnx_speedups.install if fast else qonnx_speedups.uninstall)()
        m = copy.deepcopy(model)
        random.seed(0)
        res = fn(m)
        out.append((m.model.SerializeToString(), res))
    qonnx_speedups.install()
    return out


def shared_init_graph() -> ModelWrapper:
    """Two MultiThresholds sharing one threshold initializer, a Mul whose constant has no
    ValueInfo, and nodes listed out of order."""
    nodes = [mt("a", "thr", "b", "UINT2"), mt("b", "thr", "c", "UINT2"),
             helper.make_node("Mul", ["c", "k"], ["y"])]
    model = make_model(nodes, [("a", (1, 4, 2, 2))], [("y", (1, 4, 2, 2))],
                       inits={"thr": np.sort(np.arange(12).reshape(4, 3), 1), "k": [2.0]},
                       dtypes={"a": "UINT4"})
    g = model.graph
    g.node.insert(0, g.node.pop(2))  # Mul first: not topologically sorted
    for name in ("k", "thr"):
        vi = [v for v in g.value_info if v.name == name]
        for v in vi:
            g.value_info.remove(v)
    return model


def test_give_unique_and_sort_graph_match_qonnx():
    model = shared_init_graph()
    for t in (GiveUniqueParameterTensors(), SortGraph()):
        (ref, _), (fast, _) = both(lambda m, t=t: t.apply(m), model)
        assert ref == fast, type(t).__name__
    # the cases were exercised: the shared threshold was copied, and the order changed
    m = copy.deepcopy(model)
    GiveUniqueParameterTensors().apply(m)
    assert len({n.input[1] for n in m.graph.node if n.op_type == "MultiThreshold"}) == 2
    SortGraph().apply(m)
    assert [n.op_type for n in m.graph.node] == ["MultiThreshold", "MultiThreshold", "Mul"]


@pytest.mark.parametrize("fix", [False, True])
def test_check_all_tensor_shapes_matches_qonnx(fix):
    model = shared_init_graph()
    del model.graph.value_info[0]  # a dynamic tensor without shape → False
    (ref, r1), (fast, r2) = both(lambda m: m.check_all_tensor_shapes_specified(fix), model)
    assert (r1, ref) == (r2, fast) and r1 is False
    if fix:  # the initializers got their ValueInfo, as qonnx adds them
        assert ModelWrapper(copy.deepcopy(model).model).get_tensor_shape("k") == [1]


def test_infer_shapes_matches_qonnx():
    from qonnx.transformation.infer_shapes import InferShapes

    model = shared_init_graph()
    del model.graph.value_info[:]  # every intermediate shape to be inferred again
    (_, r1), (_, r2) = both(lambda m: InferShapes().apply(m)[0].model.SerializeToString(), model)
    assert r1 == r2  # InferShapes returns a new model: compare what it returned
    inferred = ModelWrapper(onnx.load_from_string(r1))
    assert inferred.get_tensor_shape("c") == [1, 4, 2, 2]


def test_infer_datatypes_matches_qonnx():
    model = shared_init_graph()
    for q in list(model.graph.quantization_annotation):
        if q.tensor_name != "a":
            model.graph.quantization_annotation.remove(q)  # only the input is annotated
    (ref, _), (fast, _) = both(lambda m: InferDataTypes().apply(m), model)
    assert ref == fast
    m = copy.deepcopy(model)
    InferDataTypes().apply(m)
    assert m.get_tensor_datatype("c").name == "UINT2"
    assert not hasattr(m, "__dict__") or "get_tensor_datatype" not in m.__dict__


def test_convert_qonnx_to_finn_byte_identical(cnv_build):
    """FINN's whole QONNX → FINN conversion on a real export: same bytes either way."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    src = ModelWrapper(str(cnv_build.out_dir / "intermediate" / "01_tidy.onnx"))
    out = []
    for fast_on in (False, True):
        (qonnx_speedups.install if fast_on else qonnx_speedups.uninstall)()
        random.seed(0)
        out.append(src.transform(ConvertQONNXtoFINN()).model.SerializeToString())
    qonnx_speedups.install()
    assert out[0] == out[1]


def test_install_is_idempotent_and_reversible(qonnx_original):
    orig = SortGraph.apply
    qonnx_speedups.install()
    qonnx_speedups.install()
    assert SortGraph.apply is qonnx_speedups.sort_graph_apply
    assert qonnx_speedups.original("SortGraph.apply") is orig
    qonnx_speedups.uninstall()
    assert SortGraph.apply is orig


def diamond_chain(n: int) -> ModelWrapper:
    """``n`` residual blocks (fork → Relu → Add with the skip), then a Neg: 2ⁿ paths back."""
    nodes, x = [], "x"
    for i in range(n):
        nodes += [helper.make_node("Relu", [x], [f"r{i}"], name=f"Relu_{i}"),
                  helper.make_node("Add", [x, f"r{i}"], [f"a{i}"], name=f"Add_{i}")]
        x = f"a{i}"
    nodes.append(helper.make_node("Neg", [x], ["y"], name="Neg_0"))
    return make_model(nodes, [("x", (1, 4))], [("y", (1, 4))])


def test_partition_from_lambda_matches_qonnx_and_is_linear(tmp_path):
    """Same parent graph and partition files as qonnx's; 40 fork/joins (2⁴⁰ paths for qonnx's
    cycle check) partition at once; a partition that depends on itself is still refused."""
    import time

    from qonnx.transformation.create_generic_partitions import PartitionFromLambda

    def split(m, where):
        def part(node):  # first and last node alone, the rest together
            if node.op_type == "GenericPartition":
                return -1  # qonnx's contract
            return 0 if node.name == "Relu_0" else 2 if node.name == "Neg_0" else 1
        res = PartitionFromLambda(part, str(tmp_path / where)).apply(m)[0]
        return [onnx.load(tmp_path / where / f"partition_{i}.onnx").SerializeToString()
                for i in range(3)] + [res.model.graph.SerializeToString()]

    outs = []
    for fast_on, where in ((False, "qonx"), (True, "fast")):  # same length: same bytes
        (qonnx_speedups.install if fast_on else qonnx_speedups.uninstall)()
        m = diamond_chain(4)
        random.seed(0)
        outs.append(split(m, where))
    qonnx_speedups.install()
    norm = [[b.replace(str(tmp_path / w).encode(), b"DIR") for b in o]
            for o, w in zip(outs, ("qonx", "fast"))]
    assert norm[0] == norm[1]
    t = time.monotonic()
    split(diamond_chain(40), "big")
    assert time.monotonic() - t < 30
    with pytest.raises(AssertionError, match="partition depends on itself"):
        PartitionFromLambda(lambda n: 0 if n.name in ("Relu_0", "Neg_0") else -1,
                            str(tmp_path / "cyc")).apply(diamond_chain(2))
