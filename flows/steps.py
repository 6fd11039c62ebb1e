# SPDX-License-Identifier: BSD-3-Clause
"""The graph steps of the compiler, ``step_<verb>(model, cfg) -> model``.

All steps (these and ``hw_steps.py``'s) are listed once, in order: :data:`GRAPH_STEPS` here,
``hw_steps.HW_STEPS``, joined in ``flows.pipeline.STEPS``.
Everything here runs without Xilinx tools. The order:

===========================  =================================================================
step                         what it does
===========================  =================================================================
tidy                         qonnx cleanup, shapes, datatypes, unique names
qonnx_to_finn                integer input from the model's quantizer; Quant → MultiThreshold
streamline                   :class:`AffineStreamline`: every scale/bias into thresholds
lower                        NHWC + Im2Col/MatMul, bipolar → XNOR-popcount, thresholds rounded
convert_to_hw                FINN HW layers (MVAU, Thresholding, SWG, Pool, GlobalAccPool, …)
create_dataflow_partition    one StreamingDataflowPartition; fails if a compute op stays out
specialize_layers            HLS/RTL variants for the board's part
set_folding                  PE/SIMD for a target FPS or a resource budget (folding.json)
minimize_bit_width           weight and accumulator widths
set_fifo_depths              FIFO depths, incl. frame buffers in front of SE-gate multiplies
hw_codegen                   RTL and HLS sources of every layer (PrepareIP)
estimate                     per-layer cycles and resources, FPS, latency, the PNG chart
===========================  =================================================================

Steps after ``estimate`` need Vitis HLS and Vivado; they live in ``hw/bitstream.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from bnn_brevitas.errors import ToolkitError

from .build_dir import record_location
from .config import FlowConfig
from .finn_env import prepare_finn
from .names import (
    DATAFLOW_PARENT,
    DATAFLOW_PARTITION,
    FINN_TMP,
    HW_DOMAIN,
    INPUT_SPEC,
    PARTITION_DIR,
)
from .transforms import prelu_handler  # noqa: F401  (registers QuantPReluHandler)
from .transforms.affine import AffineStreamline
from .transforms.graph_input import AbsorbInputReshape, QuantizedGraphInput, resolve_input_spec
from .transforms.graph_io import InferGlobalSum, NarrowIntegerDatatypes, RemoveIdentityThresholds
from .transforms.layout import BinaryIm2ColPadValue, BipolarMatMulToXnorPopcount, ToChannelsLast
from .transforms.split_thresholds import SplitMVAUThresholds

log = logging.getLogger(__name__)

Step = Callable[[ModelWrapper, FlowConfig], ModelWrapper]


class PartitionError(ToolkitError):
    """Compute nodes were left outside the dataflow partition; the message lists them."""


def tidy(model: ModelWrapper, readable_names: bool = False) -> ModelWrapper:
    """Shapes, datatypes (with exact integer ranges), unique node names, no unused tensors.

    Tensor names are made readable only once (``step_tidy``); later steps keep them, so that
    ``flows.verify`` can match the tensors of consecutive stages."""
    model = model.transform(InferShapes()).transform(InferDataTypes())
    model = model.transform(NarrowIntegerDatatypes())
    model = model.transform(GiveUniqueNodeNames())
    if readable_names:
        model = model.transform(GiveReadableTensorNames())
    return model.transform(RemoveUnusedTensors())


def step_tidy(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """QONNX cleanup: constant folding, shapes, datatypes, unique names."""
    from qonnx.util.cleanup import cleanup_model

    return tidy(cleanup_model(model), readable_names=True)


#: what the project's own models take (``bnn_brevitas``: images in [0, 1])
REGISTRY_INPUT = "the project's models take pixels / 255 (bnn_brevitas.models)"


def step_qonnx_to_finn(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """The graph input becomes the accelerator's integer input, read from the model (its input
    quantizer or annotation) or from ``input_datatype``/``input_scale``; saved as
    ``input_spec.json``. Then Quant/BipolarQuant → MultiThreshold (FINN's conversion plus our
    PReLU handler), weights folded to integers."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    model = model.transform(AbsorbInputReshape())
    # the project's own models (registry, checkpoints) take [0, 1] images: pixels / 255
    fallback = None if cfg.onnx is not None else ("UINT8", 1.0 / 255.0, REGISTRY_INPUT)
    spec = resolve_input_spec(model, cfg.input_datatype, cfg.input_scale, fallback)
    log.info("accelerator input: %s codes, model input = code × %.6g (%s)", spec.datatype,
             spec.scale, spec.source)
    spec.save(cfg.out_dir / INPUT_SPEC)
    model = tidy(model.transform(QuantizedGraphInput(spec)))
    model = model.transform(ConvertQONNXtoFINN())
    return tidy(model.transform(RemoveStaticGraphInputs()))


def step_streamline(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Absorb every scale, bias and BatchNorm into thresholds (exact, one pass)."""
    return tidy(model.transform(AffineStreamline("NCHW")))


def step_lower(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """NCHW → NHWC with convs as Im2Col + MatMul, bipolar MatMuls → XNOR-popcount, re-streamline
    the popcount correction, round thresholds to the integer input grid."""
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    model = tidy(model.transform(ToChannelsLast()))
    model = model.transform(BipolarMatMulToXnorPopcount())
    model = tidy(model.transform(BinaryIm2ColPadValue()))
    model = tidy(model.transform(AffineStreamline("NHWC")))
    model = model.transform(RoundAndClipThresholds())
    return tidy(model.transform(RemoveIdentityThresholds()))


def integer_operands(model: ModelWrapper, node) -> bool:
    """Filter for elementwise ops: only integer operands are hardware (float scaling stays on
    the host)."""
    return all(model.get_tensor_datatype(i).is_integer() for i in node.input if i)


def step_convert_to_hw(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Map every integer op to a FINN HW layer (in FINN's own order, plus GlobalAccPool from our
    integer global sums); forks become DuplicateStreams."""
    from finn.transformation.fpgadataflow.convert_to_hw import (
        binary_matrix_vector_activation as bmvau,
    )
    from finn.transformation.fpgadataflow.convert_to_hw import concat, conv_inp_gen, pool
    from finn.transformation.fpgadataflow.convert_to_hw import duplicate_streams as dup
    from finn.transformation.fpgadataflow.convert_to_hw import elementwise_binary_operation as ew
    from finn.transformation.fpgadataflow.convert_to_hw import (
        quantized_matrix_vector_activation as qmvau,
    )
    from finn.transformation.fpgadataflow.convert_to_hw import thresholding
    from finn.transformation.fpgadataflow.convert_to_hw.reshape import InferReshape
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    passes = []
    if cfg.standalone_thresholds:
        passes.append(thresholding.InferThresholdingLayer())
    passes += [
        bmvau.InferBinaryMatrixVectorActivation(),
        qmvau.InferQuantizedMatrixVectorActivation(),
        thresholding.InferThresholdingLayer(),
        pool.InferPool(),
        InferGlobalSum(),
        conv_inp_gen.InferConvInpGen(),
        RemoveCNVtoFCFlatten(),
        concat.InferConcatLayer(),
        ew.InferElementwiseBinaryOperation(integer_operands),
        dup.InferDuplicateStreamsLayer(),
    ]
    for t in passes:
        model = model.transform(t).transform(InferDataLayouts())
    model = tidy(model).transform(InferReshape())
    if cfg.split_mvau_thresholds:
        model = model.transform(SplitMVAUThresholds("rtl", cfg.board_info.part))
    return model.transform(RoundAndClipThresholds())


#: ops allowed outside the partition: the input layout change and the output scaling
HOST_OPS = {"Transpose", "Mul", "Add", "TopK", "Reshape"}


def step_create_dataflow_partition(model: ModelWrapper, cfg: FlowConfig) -> ModelWrapper:
    """Put all HW layers in one StreamingDataflowPartition and continue with it. Fails (naming
    every node) if a compute op stayed outside; the parent graph (host-side scaling) and the
    partition's HW-layer graph are saved for the driver."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import (
        CreateDataflowPartition,
    )
    from qonnx.custom_op.registry import getCustomOp

    prepare_finn(cfg.out_dir / FINN_TMP)
    outside = [n for n in model.graph.node
               if n.domain != HW_DOMAIN and not _host_op(model, n)]
    if outside:
        lines = [f"  {n.name} ({n.op_type}): {_why_not_hw(model, n)}" for n in outside]
        raise PartitionError("these nodes could not be mapped to HW layers and would run on "
                             "the CPU:\n" + "\n".join(lines))
    # absolute (FINN executes the parent from any directory); a moved build is relocated when
    # loaded, from the locations recorded here (flows/build_dir.py)
    parent = model.transform(CreateDataflowPartition(
        partition_model_dir=str((cfg.out_dir / PARTITION_DIR).absolute())))
    sdps = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    if len(sdps) != 1:
        raise PartitionError(f"expected one dataflow partition, got {len(sdps)}")
    record_location(cfg.out_dir)
    parent.save(str(cfg.out_dir / DATAFLOW_PARENT))
    child = ModelWrapper(getCustomOp(sdps[0]).get_nodeattr("model"))
    child.save(str(cfg.out_dir / DATAFLOW_PARTITION))  # the driver emulator's HW-layer graph
    return child


def _host_op(model: ModelWrapper, node) -> bool:
    """Input Transpose, or float scaling on the way to a graph output."""
    if node.op_type not in HOST_OPS:
        return False
    if node.op_type == "Transpose":
        return node.input[0] == model.graph.input[0].name
    outputs = {o.name for o in model.graph.output}
    todo = list(node.output)
    while todo:
        t = todo.pop()
        if t in outputs:
            continue
        consumers = model.find_consumers(t)
        if not consumers or any(c.op_type not in HOST_OPS - {"Transpose"} for c in consumers):
            return False
        todo += [o for c in consumers for o in c.output]
    return True


def _why_not_hw(model: ModelWrapper, node) -> str:
    dts = {i: model.get_tensor_datatype(i).name for i in node.input if i}
    if any(not model.get_tensor_datatype(i).is_integer() for i in node.input if i):
        return f"float operand(s) {dts}: only integer arithmetic maps to hardware"
    return f"no FINN HW layer implements {node.op_type} with inputs {dts}"


#: the graph steps of this module, in order (``flows.pipeline.STEPS`` adds the HW steps)
GRAPH_STEPS: dict[str, Step] = {
    "tidy": step_tidy,
    "qonnx_to_finn": step_qonnx_to_finn,
    "streamline": step_streamline,
    "lower": step_lower,
    "convert_to_hw": step_convert_to_hw,
    "create_dataflow_partition": step_create_dataflow_partition,
}
