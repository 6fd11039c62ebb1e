# SPDX-License-Identifier: BSD-3-Clause
"""Shared test data for tests/hw: the schema example, an integer reference, build folders.

``python -m tests.hw.helpers OUT [N]`` writes an example build folder (the schema example's
accel_meta.json, N golden samples from the integer reference, no bitstream) for trying the
driver CLI and ``make package`` without a FINN build.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from hw.driver.meta import AccelMeta, parse_meta

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = json.loads((FIXTURES / "accel_meta.json").read_text())
# integer "network" for the example shapes: UINT8 28x28x1 -> INT24 10 (|y| <= 784*255*2 < 2**23)
W_EXAMPLE = np.random.default_rng(42).integers(-2, 2, size=(784, 10))


def example_dict(**top: object) -> dict:
    """A deep copy of the schema example with top-level keys replaced."""
    d = copy.deepcopy(EXAMPLE)
    d.update(top)
    return d


def example_meta(**top: object) -> AccelMeta:
    return parse_meta(example_dict(**top))


def reference(x: np.ndarray) -> np.ndarray:
    """Integer reference of the example accelerator (independent of the driver)."""
    return x.reshape(x.shape[0], -1).astype(np.int64) @ W_EXAMPLE


def example_inputs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)


def write_build(path: Path, *, n_golden: int = 6, bitstream: bool = False,
                meta: dict | None = None, onnx: bool = False) -> Path:
    """A FINN-like build folder: accel_meta.json + golden vectors (+ fake bit/hwh)."""
    path.mkdir(parents=True, exist_ok=True)
    d = meta if meta is not None else example_dict()
    d = copy.deepcopy(d)
    if not onnx:
        d["files"].pop("hw_onnx", None)
    (path / "accel_meta.json").write_text(json.dumps(d, indent=1))
    (path / "golden").mkdir(exist_ok=True)
    x = example_inputs(n_golden, seed=7)
    np.save(path / "golden/input.npy", x)
    np.save(path / "golden/output.npy", reference(x))
    if bitstream:
        (path / "accel.bit").write_bytes(b"\x00fake bitstream")
        (path / "accel.hwh").write_text("<fake/>")
    return path


MVAU_DICT = {
    "schema_version": 1, "model": "mvau_tiny", "board": "zcu104", "fpga_part": "xczu7ev",
    "platform": "zynq-iodma", "clock": {"synth_mhz": 100.0, "driver_mhz": 100.0},
    "batch_max": 64,
    "inputs": [{"name": "global_in", "dma": "idma0", "datatype": "UINT8",
                "shape_normal": [1, 16], "shape_folded": [1, 4, 4], "shape_packed": [1, 4, 4]}],
    "outputs": [{"name": "global_out", "dma": "odma0", "datatype": "INT16",
                 "shape_normal": [1, 4], "shape_folded": [1, 2, 2], "shape_packed": [1, 2, 4]}],
    "files": {"hw_onnx": "mvau.onnx"},
}


def make_mvau_onnx(path: Path, w: np.ndarray) -> Path:
    """A one-node FINN HW graph: MVAU (MW=16, MH=4, SIMD=4, PE=2), UINT8 x INT2 -> INT16."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    mw, mh = w.shape
    node = helper.make_node("MVAU", ["global_in", "weights"], ["global_out"],
                            domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
                            MW=mw, MH=mh, SIMD=4, PE=2, inputDataType="UINT8",
                            weightDataType="INT2", outputDataType="INT16", noActivation=1,
                            ActVal=0, binaryXnorMode=0)
    graph = helper.make_graph(
        [node], "mvau_tiny",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, mw])],
        [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, mh])])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="tests/hw"))
    model.set_tensor_datatype("global_in", DataType["UINT8"])
    model.set_tensor_datatype("global_out", DataType["INT16"])
    model.set_initializer("weights", w.astype(np.float32))
    model.set_tensor_datatype("weights", DataType["INT2"])
    model.save(str(path))
    return path


W_MVAU = np.random.default_rng(5).integers(-2, 2, size=(16, 4))


def write_mvau_build(path: Path, n_golden: int = 6) -> Path:
    """A build folder the emulator can run and verify: the one-MVAU HW graph (``mvau.onnx``,
    y = x @ W_MVAU), its metadata and golden vectors, no bitstream."""
    path.mkdir(parents=True, exist_ok=True)
    make_mvau_onnx(path / "mvau.onnx", W_MVAU)
    d = dict(MVAU_DICT, files={"hw_onnx": "mvau.onnx", "golden_input": "golden/input.npy",
                               "golden_output": "golden/output.npy"})
    (path / "accel_meta.json").write_text(json.dumps(d, indent=1))
    (path / "golden").mkdir(exist_ok=True)
    x = np.random.default_rng(1).integers(0, 256, size=(n_golden, 16), dtype=np.uint8)
    np.save(path / "golden/input.npy", x)
    np.save(path / "golden/output.npy", x.astype(np.int64) @ W_MVAU)
    return path


W_AXI = np.random.default_rng(3).choice([-1, 1], size=(600, 3))
AXI_DICT = json.loads((FIXTURES / "axi_dma_bipolar" / "accel_meta.json").read_text())


def axi_meta() -> AccelMeta:
    """An axi-dma design with the UNSW-NB15 MLP's BIPOLAR (1, 600) input (finn-examples)."""
    return parse_meta(copy.deepcopy(AXI_DICT))


def axi_reference(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1).astype(np.int64) @ W_AXI


if __name__ == "__main__":
    import sys

    out = write_build(Path(sys.argv[1]), n_golden=int(sys.argv[2]) if len(sys.argv) > 2 else 64)
    print(f"example build (no bitstream) -> {out}")
