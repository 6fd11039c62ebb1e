# SPDX-License-Identifier: BSD-3-Clause
"""Open a deploy bundle (or build folder) as a ``FinnAccelerator``, on the board or emulated.

A bundle holds ``accel_meta.json`` and the files it names (``accel.bit``/``accel.hwh`` for the
board, ``golden/input.npy``/``golden/output.npy``, optionally the HW-layer ONNX for the
emulator). ``sim=True`` runs the same driver against ``hw.driver.sim`` with a model chosen by
``sim_model``: ``onnx`` (FINN ``execute_onnx`` of ``files.hw_onnx``), ``replay`` (golden
vectors only) or ``auto``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .accel import FinnAccelerator
from .errors import BundleError, InputError
from .meta import AccelMeta, load_meta

log = logging.getLogger(__name__)
SIM_MODELS = ("auto", "onnx", "replay")


def load_npy(path: str | Path, what: str) -> np.ndarray:
    """``np.load`` without pickles; a clear ``InputError`` for missing or corrupt files."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} not found")
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {what} {p} as a .npy array: {e}") from None


def load_golden(meta: AccelMeta) -> tuple[np.ndarray, np.ndarray]:
    """The golden input/output vectors named by the metadata (``BundleError`` if absent)."""
    paths = [meta.path("golden_input"), meta.path("golden_output")]
    for key, p in zip(("golden_input", "golden_output"), paths):
        if p is None or not p.is_file():
            raise BundleError(f"{key} {p} not found (metadata files.{key})")
    return load_npy(paths[0], "golden input"), load_npy(paths[1], "golden output")


def _has(meta: AccelMeta, key: str) -> bool:
    p = meta.path(key)
    return p is not None and p.is_file()


def make_sim_model(meta: AccelMeta, choice: str = "auto", prefer: str = "onnx") -> Any:
    """The emulator's accelerator model for a bundle (see the module docstring)."""
    from .sim import OnnxModel, ReplayModel  # lazy: the emulator imports pynq (host-only use)

    if choice not in SIM_MODELS:
        raise BundleError(f"unknown sim model {choice!r}; valid: {', '.join(SIM_MODELS)}")
    order = [choice] if choice != "auto" else [prefer, "replay" if prefer == "onnx" else "onnx"]
    for kind in order:
        if kind == "onnx" and _has(meta, "hw_onnx"):
            try:
                return OnnxModel(meta, meta.path("hw_onnx"))
            except ImportError as e:
                if choice == "onnx":
                    raise BundleError(f"the ONNX model needs FINN/qonnx installed: {e}") from None
                continue
        if kind == "replay" and _has(meta, "golden_input") and _has(meta, "golden_output"):
            return ReplayModel(meta, *load_golden(meta))
    raise BundleError(f"--sim with model {choice!r} needs files.hw_onnx (onnx) or golden "
                      f"vectors (replay) in {meta.root}; neither is present")


def open_bundle(bundle: str | Path, *, sim: bool = False, sim_model: str = "auto",
                prefer: str = "onnx", **kwargs: Any) -> FinnAccelerator:
    """Load ``bundle/accel_meta.json`` and return a ready accelerator (board or emulator)."""
    root = Path(bundle)
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} not found")
    meta = load_meta(root)
    if not sim:
        return FinnAccelerator.open(meta, **kwargs)
    from .sim import open_sim  # lazy: the emulator imports pynq; the board path must not

    model = make_sim_model(meta, sim_model, prefer)
    log.info("emulator model: %s", type(model).__name__)
    return open_sim(meta, model, **kwargs)
