# SPDX-License-Identifier: BSD-3-Clause
"""Use finn-plus through its Python API on a machine without Vivado, Vitis HLS or FINN's CLI.

* FINN's transformations read a global settings object that normally comes from the ``finn``
  CLI; :func:`prepare_finn` creates it and points its build directory into our output folder.
* ``finn.builder.build_dataflow_steps`` imports ``finn.xsi.SimEngine`` only for a type hint, and
  that attribute access demands Vivado (``XILINX_VIVADO``). :func:`import_builder` gives the
  module a placeholder before the import — it changes no behaviour.
* Every FINN graph this project reads may hold its own RTL ops: :func:`prepare_finn` and
  :func:`load_model` register them (``flows.rtl.registry``) before FINN looks a node up.
* qonnx's per-node graph queries that are quadratic in the node count are replaced, in this
  process, by linear-time versions with the same results (``bnn_brevitas/qonnx_speedups.py``),
  installed when this module is imported: every step, stage and model load goes through it.
* A model loaded from a build is relocated to where the build is now, and any path it names
  outside the build refused (:func:`load_model`, ``flows/build_dir.py``).

Nothing in the installed packages is edited, and no fake Vivado path is ever set.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType

from bnn_brevitas import qonnx_speedups
from flows.build_dir import relocate_model
from flows.rtl.registry import register_custom_ops
from flows.rtllib_patches import use_patched_rtllib

log = logging.getLogger(__name__)

qonnx_speedups.install()


def prepare_finn(build_dir: str | Path) -> Path:
    """Initialise FINN's settings (once), set its build directory and point it at the patched
    finn-rtllib (``flows/rtllib_patches.py``); return the build directory."""
    from finn.util import settings

    build_dir = Path(build_dir).absolute()
    build_dir.mkdir(parents=True, exist_ok=True)
    if settings._SETTINGS is None:
        settings.initialize_dummy_settings()
    settings.get_settings().finn_build_dir = build_dir
    register_custom_ops()
    use_patched_rtllib(build_dir / "finn-rtllib")  # the fixed sources, for every later step
    return build_dir


def load_model(path: str | Path):
    """An ONNX graph as a ``ModelWrapper``, with the project's custom ops (``flows.rtl``)
    registered so that ``getCustomOp`` finds them. A model inside a build names only that
    build's files, wherever the build is now (``flows/build_dir.py``: paths into where it was
    written are rewritten, paths outside it refused)."""
    from qonnx.core.modelwrapper import ModelWrapper

    register_custom_ops()
    return relocate_model(ModelWrapper(str(path)), path)


def import_builder() -> ModuleType:
    """``finn.builder.build_dataflow_steps`` without Vivado (see the module docstring)."""
    import finn.xsi as xsi

    if "SimEngine" not in vars(xsi):
        xsi.SimEngine = object  # only used as a type annotation by the builder
    return importlib.import_module("finn.builder.build_dataflow_steps")
