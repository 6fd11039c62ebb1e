# SPDX-License-Identifier: BSD-3-Clause
"""The driver metadata and golden vectors of a build (``accel_meta.json``, schema version 1).

``hw/driver`` holds no shapes of its own: everything it needs comes from this file, written by
the compiler. Shapes follow FINN's ``get_driver_shapes``: the folded shape of the stream the
first (last) dataflow layer consumes (produces), and the packed shape FINN's packing gives it.
The golden vectors are the partition's own python execution on a few samples; the driver's
emulator, and the board, must reproduce them bit for bit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from .config import FlowConfig
from .names import ACCEL_META, DATAFLOW_PARENT, DATAFLOW_PARTITION, GOLDEN_DIR, INPUT_SPEC
from .transforms.graph_input import InputSpec

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
GOLDEN_SAMPLES = 8


def _spec(model: ModelWrapper, tensor: str, node, is_input: bool, dma: str) -> dict:
    from finn.util.data_packing import finnpy_to_packed_bytearray
    from qonnx.util.basic import gen_finn_dt_tensor

    inst = getCustomOp(node)
    dt = model.get_tensor_datatype(tensor)
    folded = tuple(inst.get_folded_input_shape() if is_input else inst.get_folded_output_shape())
    packed = finnpy_to_packed_bytearray(gen_finn_dt_tensor(dt, folded), dt).shape
    return {"name": tensor, "dma": dma, "datatype": dt.name,
            "shape_normal": list(model.get_tensor_shape(tensor)), "shape_folded": list(folded),
            "shape_packed": list(packed)}


def output_postprocess(parent: ModelWrapper) -> dict:
    """The host-side scaling after the partition, composed: y = out · scale + bias."""
    a, b = np.ones(1), np.zeros(1)
    for node in parent.graph.node:
        consts = [parent.get_initializer(i) for i in node.input]
        c = next((v for v in consts if v is not None), None)
        if node.op_type not in ("Mul", "Add") or c is None:
            continue
        c = np.asarray(c, dtype=np.float64).reshape(-1)
        a, b = (a * c, b * c) if node.op_type == "Mul" else (a, b + c)
    as_json = lambda v: float(v[0]) if v.size == 1 else v.tolist()  # noqa: E731
    return {"scale": as_json(a), "bias": None if not np.any(b) else as_json(b), "argmax": True}


def write_driver_meta(model: ModelWrapper, cfg: FlowConfig, estimate: dict | None) -> Path:
    """Write ``accel_meta.json`` and ``golden/`` into the build. The golden outputs come from
    the HW-layer graph ``dataflow_partition.onnx`` (written by the partition step), which is
    what runs in Python (specialised HLS layers do not) and what the driver's emulator runs."""
    import finn.core.onnx_exec as oxe
    from qonnx.util.basic import gen_finn_dt_tensor

    out, board = cfg.out_dir, cfg.board_info
    gin, gout = model.graph.input[0].name, model.graph.output[0].name
    first, last = model.find_consumer(gin), model.find_producer(gout)
    parent = ModelWrapper(str(out / DATAFLOW_PARENT))
    hw_graph = ModelWrapper(str(out / DATAFLOW_PARTITION))
    meta = {
        "schema_version": SCHEMA_VERSION, "model": cfg.name, "board": board.name,
        "fpga_part": board.part, "platform": board.shell.driver_platform,
        # the driver sets PL0 to what the shell expects there: the clocking wizard's reference
        "clock": {"synth_mhz": cfg.clock_mhz,
                  "driver_mhz": board.shell.pl_ref_mhz or cfg.clock_mhz},
        "batch_max": cfg.driver_batch_max,
        "inputs": [_spec(model, gin, first, True, board.shell.idma(0))],
        "outputs": [_spec(model, gout, last, False, board.shell.odma(0))],
        "output_postprocess": output_postprocess(parent),
        "files": {"bitfile": "accel.bit", "hwh": "accel.hwh", "hw_onnx": DATAFLOW_PARTITION,
                  "golden_input": f"{GOLDEN_DIR}/input.npy",
                  "golden_output": f"{GOLDEN_DIR}/output.npy"},
    }
    if estimate:
        meta["estimates"] = {"cycles_per_frame": estimate["max_cycles"],
                             "latency_cycles": estimate["critical_path_cycles"],
                             "fclk_mhz": cfg.clock_mhz}
    meta["power_rails"] = board.power_rails
    # how the host makes the accelerator's input codes from the model's float input
    meta["input_quant"] = InputSpec.load(out / INPUT_SPEC).to_dict()

    shape = meta["inputs"][0]["shape_normal"]
    np.random.seed(cfg.seed)  # gen_finn_dt_tensor draws from numpy's global generator
    x = gen_finn_dt_tensor(model.get_tensor_datatype(gin), (GOLDEN_SAMPLES, *shape[1:]))
    hin, hout = hw_graph.graph.input[0].name, hw_graph.graph.output[0].name
    ys = [oxe.execute_onnx(hw_graph, {hin: x[i:i + 1]})[hout] for i in range(len(x))]
    (out / GOLDEN_DIR).mkdir(exist_ok=True)
    np.save(out / GOLDEN_DIR / "input.npy", x.astype(_storage(model.get_tensor_datatype(gin))))
    np.save(out / GOLDEN_DIR / "output.npy", np.concatenate(ys))
    path = out / ACCEL_META
    path.write_text(json.dumps(meta, indent=2))
    return path


def _storage(dt) -> type:
    """The smallest numpy type holding every value of ``dt`` (golden input storage)."""
    for t in (np.uint8, np.int8, np.int16, np.int32):
        info = np.iinfo(t)
        if dt.is_integer() and info.min <= dt.min() and dt.max() <= info.max:
            return t
    return np.float32
