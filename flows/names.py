# SPDX-License-Identifier: BSD-3-Clause
"""Base facts every layer of ``flows`` shares: ONNX domains, metadata keys, build-dir files.

This module sits at the bottom of the layer table (``flows/__init__.py``) and imports nothing
from the project, so that any module may use it. Each name here is the one place its value is
written; use it instead of the literal.
"""

from __future__ import annotations

from pathlib import Path

#: the ONNX domain of FINN's HW layers (``MVAU``, ``Thresholding``, …)
HW_DOMAIN = "finn.custom_op.fpgadataflow"
#: FINN's specialised HLS and RTL variants (``MVAU_hls``, ``MVAU_rtl``, the project's units)
HLS_DOMAIN = f"{HW_DOMAIN}.hls"
RTL_DOMAIN = f"{HW_DOMAIN}.rtl"


def is_hw_node(node) -> bool:
    """Whether an ONNX node is a FINN HW layer, generic or specialised (HLS/RTL)."""
    return node.domain == HW_DOMAIN or node.domain.startswith(HW_DOMAIN + ".")

#: ONNX metadata key under which a graph rewrite records which tensor became which (an affine
#: map ``old = a · new + b``, read by ``flows.divergence``); it describes one step only
AFFINE_MAP_KEY = "flows.affine_map"

# -- the files of a build directory (``FlowConfig.out_dir``) -----------------------------------
#: the resolved flow config of the build; its presence marks a directory this flow wrote
FLOW_CONFIG = "flow_config.yaml"
#: what the build was made from (sha256 of the checkpoint/ONNX file, or the registry name)
SOURCE_FINGERPRINT = "source.txt"
#: seconds per step, as run
FLOW_REPORT = "flow_report.json"
#: the exact Brevitas model compiled, and its checked QONNX export (registry models, checkpoints)
BREVITAS_MODEL = "model.pt"
QONNX_EXPORT = "model.qonnx.onnx"
#: what the accelerator's input is (``flows.transforms.graph_input.InputSpec``), as resolved
INPUT_SPEC = "input_spec.json"
#: the model after every step: ``intermediate/NN_<step>.onnx``
INTERMEDIATE_DIR = "intermediate"
#: the graph around the dataflow partition (host-side input/output ops), and the partition's
#: HW-layer graph before specialisation (what runs in Python: the driver emulator's model)
DATAFLOW_PARENT = "dataflow_parent.onnx"
DATAFLOW_PARTITION = "dataflow_partition.onnx"
#: FINN's folder of partition models, FINN's model file of the (one) partition in it, and
#: FINN's working directory (generated code)
PARTITION_DIR = "dataflow_partition"
PARTITION_MODEL = "partition_0.onnx"
FINN_TMP = "finn_tmp"
#: where the build was written (and moved to): the absolute directories that paths inside the
#: build's models and generated sources may name (``flows.build_dir`` rewrites them on load)
BUILD_LOCATIONS = "build_locations.json"
#: estimates and other reports; the editable folding
REPORT_DIR = "report"
FOLDING = "folding.json"
#: the driver metadata (``hw.driver.meta`` reads it; the driver cannot import flows, so its
#: ``META_NAME`` is tested to equal this) and the golden vectors
ACCEL_META = "accel_meta.json"
GOLDEN_DIR = "golden"
#: the Vivado dry run's folder (``flows.vivado_dryrun``): the scripts FINN would hand to
#: Vivado / Vitis HLS, and the report of their checks
VIVADO_DRY_RUN = "vivado_dry_run"


def intermediate_file(out_dir: str | Path, index: int, step: str) -> Path:
    """``<out_dir>/intermediate/NN_<step>.onnx`` for the ``index``-th step (1-based)."""
    return Path(out_dir) / INTERMEDIATE_DIR / f"{index:02d}_{step}.onnx"
