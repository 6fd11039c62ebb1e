# SPDX-License-Identifier: BSD-3-Clause
"""Open a deploy bundle (or build folder) as a ``FinnAccelerator``, on the board or emulated.

A bundle holds ``accel_meta.json`` and the files it names (``accel.bit``/``accel.hwh`` for the
board, ``golden/input.npy``/``golden/output.npy``, optionally the HW-layer ONNX for the
emulator), checked against its ``MANIFEST.json`` first (``manifest.py``). ``sim=True`` runs
the same driver against ``hw.driver.sim`` with a model chosen by ``sim_model``: ``onnx``
(FINN ``execute_onnx`` of ``files.hw_onnx``), ``replay`` (golden vectors only) or ``auto``.

**The replay model checks nothing**: it answers the golden inputs with the golden outputs, so
"verifying" with it would compare the golden file with itself. It only drives ``profile``
(host-side timing without FINN); ``run`` and ``verify`` need the ONNX model and refuse it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .accel import FinnAccelerator
from .errors import BundleError, InputError, MissingToolError
from .finn_compat import open_finn_meta
from .manifest import check_manifest, check_used
from .meta import META_NAME, AccelMeta, load_meta

log = logging.getLogger(__name__)
SIM_MODELS = ("auto", "onnx", "replay")
#: what a bundle is opened for; only profiling may use the replay model
PURPOSES = ("run", "verify", "profile")


def load_npy(path: str | Path, what: str) -> np.ndarray:
    """``np.load`` without pickles; a clear ``InputError`` for missing or corrupt files."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} not found")
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
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


def _onnx_model(meta: AccelMeta, path: Path | None = None) -> Any:
    from .sim import OnnxModel  # lazy: the emulator imports pynq (host-only use)

    try:
        return OnnxModel(meta, path or meta.path("hw_onnx"))
    except ImportError as e:
        raise MissingToolError(f"the emulator's ONNX model needs FINN and qonnx installed: "
                               f"{e}") from None


def make_sim_model(meta: AccelMeta, choice: str = "auto", purpose: str = "run",
                   hw_onnx: str | Path | None = None) -> Any:
    """The emulator's accelerator model for a bundle opened for ``purpose`` (see the module
    docstring): ``auto`` is the ONNX model, or for ``profile`` the replay model first.
    ``hw_onnx`` names the graph when the metadata has none (FINN deploy folders)."""
    if choice not in SIM_MODELS:
        raise BundleError(f"unknown sim model {choice!r}; valid: {', '.join(SIM_MODELS)}")
    if purpose not in PURPOSES:
        raise BundleError(f"unknown purpose {purpose!r}; valid: {', '.join(PURPOSES)}")
    if choice == "replay" and purpose != "profile":
        raise BundleError(f"{purpose} --sim refuses the replay model: it would compare the "
                          "golden file with itself, so nothing would be checked; use "
                          "--sim-model onnx (files.hw_onnx, with FINN installed)")
    has_golden = _has(meta, "golden_input") and _has(meta, "golden_output")
    if purpose == "profile" and choice in ("auto", "replay") and has_golden:
        from .sim import ReplayModel  # lazy: the emulator imports pynq (host-only use)

        return ReplayModel(meta, *load_golden(meta))
    if choice != "replay" and hw_onnx is not None:
        if not Path(hw_onnx).is_file():
            raise InputError(f"--hw-onnx {hw_onnx} not found")
        return _onnx_model(meta, Path(hw_onnx))
    if choice != "replay" and _has(meta, "hw_onnx"):
        return _onnx_model(meta)
    if purpose == "profile":
        raise BundleError(f"profile --sim with model {choice!r} needs files.hw_onnx (onnx) or "
                          f"golden vectors (replay) in {meta.root}; neither is present")
    hint = (" (a FINN deploy folder carries none: pass the partition's graph with --hw-onnx)"
            if "finn" in meta.raw else "")
    raise BundleError(f"{purpose} --sim needs the HW-layer ONNX model (files.hw_onnx), which "
                      f"{meta.root} does not have{hint}; the replay model cannot check "
                      "anything, so it only drives profile")


def open_bundle(bundle: str | Path, *, sim: bool = False, sim_model: str = "auto",
                purpose: str = "run", hw_onnx: str | Path | None = None,
                **kwargs: Any) -> FinnAccelerator:
    """Check ``bundle`` against its manifest, load its ``accel_meta.json`` and return a ready
    accelerator (board or emulator). ``acc.notes`` says what was checked and which model
    emulates the accelerator. A FINN deploy folder (no ``accel_meta.json``) is read through
    ``finn_compat.py``; ``hw_onnx`` is the graph the emulator runs for it."""
    root = Path(bundle)
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} not found")
    if (root / META_NAME).is_file() or not _looks_finn(root):
        if hw_onnx is not None:
            raise BundleError("--hw-onnx is for FINN deploy folders; a bundle or build folder "
                              "names its HW-layer ONNX in accel_meta.json (files.hw_onnx)")
        files = check_manifest(root)
        meta = load_meta(root)
        notes = [check_used(root.resolve(), meta, files)]
    else:
        meta, dep = open_finn_meta(root)
        acc_clk = meta.raw["finn"].get("accelerator_mhz")
        where = dep.source.relative_to(root).as_posix()
        clock = f"clock: PS clock set to {meta.driver_mhz:g} MHz as FINN's driver does"
        if acc_clk:
            clock += f" (accelerator clock {acc_clk:g} MHz per settings.json)"
        head = (f"bundle: {root} is a FINN deploy folder ({dep.kind}, {where}): "
                "io_shape_dict read, no MANIFEST.json, files not checked")
        notes = [head, clock]
    if not sim:
        acc = FinnAccelerator.open(meta, **kwargs)
    else:
        from .sim import open_sim  # lazy: the emulator imports pynq; the board path must not

        model = make_sim_model(meta, sim_model, purpose, hw_onnx)
        notes.append(f"emulator model: {type(model).__name__} ({getattr(model, 'label', '')})")
        log.info("%s", notes[-1])
        acc = open_sim(meta, model, **kwargs)
    acc.notes = notes
    return acc


def bundle_meta(bundle: str | Path) -> AccelMeta:
    """The metadata of a bundle, build folder or FINN deploy folder (no manifest check)."""
    root = Path(bundle)
    if root.is_dir() and not (root / META_NAME).is_file() and _looks_finn(root):
        return open_finn_meta(root)[0]
    return load_meta(root)


def _looks_finn(root: Path) -> bool:
    """Whether ``root`` is a FINN deploy folder (or its ``driver/``) rather than ours."""
    return any((root / d / f).is_file() for d in ("driver", ".")
               for f in ("settings.json", "driver.py"))
