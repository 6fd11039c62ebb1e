# SPDX-License-Identifier: BSD-3-Clause
"""The stages of ``flows.verify``: samples, references, executing a stage, the tool stages.

Samples are float model inputs; a stage whose graph takes the accelerator's integer codes gets
them through the build's :class:`~flows.transforms.graph_input.InputSpec` (``input_spec.json``),
the same quantization the driver applies on the host. Inputs of any rank work: each graph gets
the samples reshaped to its own input shape (C order, as the exporters' reshapes).
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from brevitas.nn import QuantLinear
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from bnn_brevitas.errors import ConfigError
from bnn_brevitas.export import brevitas_integer_probe
from bnn_brevitas.train.data import FASHION_MNIST_DIR, read_idx
from flows.divergence import annotation_violations, execute_full
from flows.finn_env import load_model
from flows.names import DATAFLOW_PARTITION
from flows.results import StageResult
from flows.rtlsim_layers import verify_rtl_layers
from flows.stitch import non_rtl_layers, simulate_accelerator
from flows.tools import find_verilator, find_xilinx_tools
from flows.transforms.graph_input import InputSpec

#: stages that need a tool or a board this machine may not have, and what they need
TOOL_STAGES = {"cppsim": "vitis_hls", "stitched_rtlsim": "vivado", "board": "a PYNQ board"}
#: stages whose integer annotations are FINN's own convention (a signed MultiThreshold is
#: annotated with the datatype it has only after the Add that follows it)
UNCHECKED_ANNOTATIONS = ("qonnx", "tidy", "qonnx_to_finn")
PIXEL_SCALE = 1.0 / 255.0


# -- samples and references ------------------------------------------------------------------

def _is_pixels(spec: InputSpec) -> bool:
    """Whether the model takes [0, 1] images (pixels / 255), as far as its input says."""
    return spec.from_quantizer or (
        spec.datatype == "UINT8" and math.isclose(spec.scale, PIXEL_SCALE, rel_tol=1e-6))


def load_samples(spec: InputSpec, shape: tuple[int, ...], n: int, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(float model inputs N×shape, labels or None, description). Fashion-MNIST test images
    when the model takes 784 pixels and the dataset is installed; otherwise seeded random
    pixels / 255 (a model with an input quantizer) or random codes × scale (the others)."""
    rng = np.random.default_rng(seed)
    images = FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    if math.prod(shape) == 784 and _is_pixels(spec) and images.is_file():
        x = read_idx(images)
        if n > len(x):
            raise ConfigError(f"samples: the Fashion-MNIST test set has {len(x)} images, "
                              f"{n} were asked for")
        x = x[:n].astype(np.float32) * np.float32(PIXEL_SCALE)
        y = read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")[:n].astype(np.int64)
        return x.reshape(n, *shape), y, f"first {n} Fashion-MNIST test images"
    if _is_pixels(spec):
        x = rng.integers(0, 256, size=(n, *shape)).astype(np.float32) * np.float32(PIXEL_SCALE)
        return x, None, f"{n} seeded random images / 255 (seed {seed})"
    dt = DataType[spec.datatype]
    codes = rng.integers(int(dt.min()), int(dt.max()) + 1, size=(n, *shape))
    if dt == DataType["BIPOLAR"]:
        codes = 2 * rng.integers(0, 2, size=(n, *shape)) - 1
    x = (codes.astype(np.float64) * spec.scale).astype(np.float32)
    return x, None, f"{n} seeded random {dt.name} codes × {spec.scale:.6g} (seed {seed})"


def stage_input(model: ModelWrapper, spec: InputSpec, x: np.ndarray) -> np.ndarray:
    """``x`` (float model inputs) as ``model`` takes them: integer codes when its input is
    integer-typed, reshaped to its input shape."""
    name = model.graph.input[0].name
    v = spec.quantize(x) if model.get_tensor_datatype(name).is_integer() else x
    shape = model.get_tensor_shape(name)
    return np.asarray(v, dtype=np.float32).reshape(len(x), *shape[1:])


def brevitas_reference(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(float logits, exact integer logits of the last FC or None) of the eval-mode model."""
    fcs = [m for m in model.modules() if isinstance(m, QuantLinear)]
    xt = torch.from_numpy(x.reshape(len(x), *model.cfg.input_shape)).float()
    y, codes = brevitas_integer_probe(model.eval(), xt)
    fc = fcs[-1] if fcs else None
    if fc is None or fc.bias is not None or fc.quant_weight().scale.numel() != 1:
        return y, None
    with torch.no_grad():
        w_int = fc.quant_weight().int().to(torch.int64).numpy()
    c = np.round(codes.reshape(len(x), -1)).astype(np.int64)
    return y, c @ w_int.T


# -- executing stages ------------------------------------------------------------------------

def output_tail(model) -> tuple[str, float, float]:
    """(integer tensor, a, b) with output = a · tensor + b, from the Mul/Add tail."""
    name, a, b = model.graph.output[0].name, 1.0, 0.0
    while True:
        node = model.find_producer(name)
        if node is None or node.op_type not in ("Mul", "Add"):
            return name, a, b
        const = [model.get_initializer(i) for i in node.input]
        if not any(c is not None for c in const):
            return name, a, b
        c = next(v for v in const if v is not None)
        if np.asarray(c).size != 1:
            return name, a, b
        c = float(np.asarray(c).reshape(()))
        # walking upstream: output = a · (inner) + b with inner = c · t or t + c
        if node.op_type == "Mul":
            a = a * c
        else:
            b = b + a * c
        name = next(i for i in node.input if model.get_initializer(i) is None)



def run_stage(path: Path, x: np.ndarray, spec: InputSpec, check_annotations: bool = True
              ) -> tuple[np.ndarray, list[dict]]:
    """(logits, integer tensors that violate their datatype annotation) of the graph at
    ``path`` on the float model inputs ``x``."""
    # qonnx warns for every FINN MultiThreshold whose annotation holds only after the Add that
    # follows it (FINN's convention before streamlining); the annotation check below is ours
    warnings.filterwarnings("ignore", message="The values of tensor")
    model = load_model(path)
    if any(model.get_tensor_shape(t) is None for n in model.graph.node for t in n.output):
        # a QONNX file as exported (verify's reference for --onnx builds) may lack shapes:
        # qonnx's cleanup (shape inference, constant folding) changes no value
        model = cleanup_model(model)
    xs = stage_input(model, spec, x)
    ys, bad = [], []
    for i in range(len(x)):
        ctx = execute_full(model, xs[i:i + 1])
        ys.append(ctx[model.graph.output[0].name])
        if check_annotations and not bad:
            bad = annotation_violations(model, ctx)
    return np.concatenate(ys).reshape(len(x), -1), bad


def canonical_integers(y: np.ndarray, a: float, b: float) -> np.ndarray | None:
    """round((y − b)/a) when every value lies within ¼ of an integer, else None."""
    q = (y.astype(np.float64) - b) / a
    r = np.round(q)
    return r.astype(np.int64) if np.abs(q - r).max() < 0.25 else None



def compare(res: StageResult, y, q, prev_y, q_ref, labels, int_exact_expected: bool) -> None:
    """Fill ``res`` with the comparison of logits ``y`` (integers ``q``) against the previous
    stage and the integer reference, and set its status."""
    res.samples = len(y)
    if q_ref is not None:
        res.exact = q is not None and bool(np.array_equal(q, q_ref))
    if prev_y is not None:
        res.max_abs_diff = float(np.abs(y - prev_y).max())
        res.top1_agree = float(np.mean(y.argmax(-1) == prev_y.argmax(-1)))
    if labels is not None:
        res.top1_acc = float(np.mean(y.argmax(-1) == labels))
    ok = res.exact is not False and (res.top1_agree is None or res.top1_agree == 1.0)
    if int_exact_expected and res.exact is None:
        ok = ok and res.max_abs_diff is not None and \
            res.max_abs_diff <= 1e-5 * (1 + float(np.abs(prev_y).max()))
    res.status = "pass" if ok else "fail"



def canonical_scaling(streamlined: Path) -> tuple[float, float] | None:
    """(a, b) of y = a · q + b at the output of the streamlined graph (integer q)."""
    if not streamlined.is_file():
        return None
    model = ModelWrapper(str(streamlined))
    tensor, a, b = output_tail(model)
    return (a, b) if model.get_tensor_datatype(tensor).is_integer() else None



def first_bad_sample(y, q, prev_y, q_ref) -> int:
    """The first sample whose integers (or top-1) differ from the reference's."""
    if q is not None and q_ref is not None:
        bad = np.nonzero(np.any(q != q_ref, axis=-1))[0]
    else:
        bad = np.nonzero(y.argmax(-1) != prev_y.argmax(-1))[0]
    return int(bad[0]) if len(bad) else 0



def tool_stages(build: Path, x: np.ndarray, want: set[str] | None, codegen: Path,
                bundle: Path | None) -> list[StageResult]:
    """RTL simulation with Verilator (per layer and whole design), FINN's cppsim/rtlsim and the
    board. ``x``: the accelerator's input codes; ``codegen``: the model after ``hw_codegen``.
    Stages that need an absent tool are "not run" unless ``want`` names them ("skipped")."""
    hw_graph = build / DATAFLOW_PARTITION
    out = []
    if want is None or "rtlsim" in want:
        out.append(verify_rtl_layers(build, codegen, hw_graph, x))
    if want is None or "accel_rtlsim" in want:
        out.append(accel_stage(build, codegen, hw_graph, x))
    tools = find_xilinx_tools()
    for stage, tool in TOOL_STAGES.items():
        if want is not None and stage not in want:
            continue  # a chosen list of stages reports just those
        if stage == "board":
            note = ("no --bundle given: run python -m hw.driver verify --bundle DIR on the board"
                    if bundle is None else "run on the board: python -m hw.driver verify")
        elif tools.get(tool) is None:
            note = f"needs {tool}: not found (PATH, XILINX_HLS, XILINX_VIVADO)"
        else:
            note = "needs the build's Vivado/HLS outputs: run make build-bitstream with the tools"
        out.append(StageResult(stage, "not run" if want is None else "skipped", note=note))
    return out


def accel_stage(build: Path, codegen: Path, hw_graph: Path, x: np.ndarray,
                 frames: int = 4) -> StageResult:
    """The whole accelerator (``codegen``, against the HW-layer graph ``hw_graph``) as one
    Verilator design (``flows/stitch.py``), ``frames`` frames back to back: bit-exact output
    and cycles per frame against FINN's estimate."""
    built = codegen.is_file()
    if find_verilator() is None or not built:
        return StageResult("accel_rtlsim", "skipped", note="Verilator not found" if built
                           else "no generated RTL in the build")
    hls = non_rtl_layers(load_model(codegen))
    if hls:
        kinds = sorted({h.split("(")[1].rstrip(")") for h in hls})
        return StageResult("accel_rtlsim", "skipped", note=f"{len(hls)} layer(s) have no RTL "
                           f"({', '.join(kinds)})")
    t0 = time.perf_counter()
    r = simulate_accelerator(build, codegen, hw_graph, x, frames)
    ok = r["result"] == "exact"
    note = (f"{r['layers']} layers, {r['frames']} frames: {r['result']}; "
            f"{r['interval_cycles']:.0f} cycles/frame (FINN estimate {r['estimate_interval_cycles']}"
            f"), latency {r['latency_cycles']} cycles (estimate {r['estimate_latency_cycles']})"
            if ok and r.get("interval_cycles") else f"{r['result']}")
    res = StageResult("accel_rtlsim", "pass" if ok else "fail", samples=frames, exact=ok,
                      seconds=round(time.perf_counter() - t0, 1), note=note)
    if not ok:
        res.divergence = {"node": "accel_top", "op_type": "accelerator",
                          "tensor": "output stream", "reason": r["result"]}
    return res
