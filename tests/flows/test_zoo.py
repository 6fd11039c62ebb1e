# SPDX-License-Identifier: BSD-3-Clause
"""FINN's reference networks (``brevitas_examples.bnn_pynq``, exported by Brevitas itself) through
the whole flow, verify (RTL stages included) and the driver emulator: the ``slow`` tier runs the
whole zoo; the default tier runs the smallest member end to end."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from bnn_brevitas import zoo
from flows.config import FlowConfig
from flows.pipeline import intermediate_path, run_flow
from flows.stitch import non_rtl_layers
from flows.verify import verify
from flows.verify_stages import run_stage
from hw.driver.bundle import open_bundle
from hw.driver.cli import main as driver_main
from hw.driver.tensors import quantize_input
from hw.package import build_bundle
from tests.flows.graphs import needs_verilator

#: the zoo's models that compile today (resnet18_4w4a: see docs/RESULTS.md)
COMPILED = [n for n in zoo.list_zoo() if not n.startswith("resnet")]


def _build(name: str, root, **overrides) -> FlowConfig:
    spec = zoo.ZOO[name]
    onnx = zoo.export(name, root / f"{name}.onnx")
    cfg = FlowConfig(onnx=onnx, output_dir=root / "build", input_datatype=spec.input_datatype,
                     input_scale=spec.input_scale, **overrides)
    run_flow(cfg)
    return cfg


def _check(cfg: FlowConfig, tmp_path, samples: int = 2) -> None:
    final = ModelWrapper(str(intermediate_path(cfg, "hw_codegen")))
    assert non_rtl_layers(final) == [], "every layer RTL"
    report = verify(cfg.out_dir, samples=samples)
    assert report.result == "PASS", [(s.stage, s.status, s.note) for s in report.stages]
    ran = {s.stage for s in report.stages if s.status == "pass"}
    assert {"qonnx", "create_dataflow_partition", "rtlsim", "accel_rtlsim"} <= ran
    bundle = build_bundle(cfg.out_dir, None, tmp_path / "bundle")
    assert driver_main(["verify", "--bundle", str(bundle.path), "--sim", "--sim-model",
                        "onnx"]) == 0
    # float inputs → the driver's own quantization → emulator → top-1 of the QONNX model
    x = np.random.default_rng(1).random((3, *zoo.ZOO[cfg.name].input_shape), np.float32)
    ref, _ = run_stage(cfg.out_dir / "model.qonnx.onnx", x, _spec(cfg))
    with open_bundle(bundle.path, sim=True, sim_model="onnx") as acc:
        codes = quantize_input(acc.meta, x)
        shape = acc.meta.inputs[0].shape_normal[1:]
        # images go in channels-last (the partition's layout), vectors flat
        codes = codes.transpose(0, 2, 3, 1) if len(shape) == 3 else codes.reshape(len(x), -1)
        pred = acc.predict(codes)
    assert np.array_equal(pred, ref.argmax(-1))


def _spec(cfg):
    from flows.names import INPUT_SPEC
    from flows.transforms.graph_input import InputSpec

    return InputSpec.load(cfg.out_dir / INPUT_SPEC)


@needs_verilator
def test_tfc_w1a1_end_to_end(tmp_path):
    _check(_build("tfc_1w1a", tmp_path), tmp_path)


@pytest.mark.slow
@needs_verilator
@pytest.mark.parametrize("name", COMPILED)
def test_zoo_model_end_to_end(name, tmp_path):
    _check(_build(name, tmp_path), tmp_path)
