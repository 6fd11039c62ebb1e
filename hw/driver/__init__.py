# SPDX-License-Identifier: BSD-3-Clause
"""On-board PYNQ driver for FINN accelerators; needs only numpy (+ pynq on the board).

* :mod:`.meta` loads ``accel_meta.json`` (shapes, datatypes, DMAs, clock) written by the flow;
* :mod:`.manifest` checks a deploy bundle against its ``MANIFEST.json`` before it is used;
* :mod:`.packing` packs/unpacks in FINN's bit order with numpy only;
* :class:`.accel.FinnAccelerator` drives the accelerator through the real pynq API;
* :mod:`.profile` measures throughput, latency, host breakdown, clocks and power;
* :mod:`.sim` emulates the board off-board (imports pynq, and FINN for the ONNX model);
* :mod:`.finn_compat` writes FINN's ``settings.json`` for a bundle and reads FINN's deploy
  folders (``settings.json`` / ``driver.py``, by ``ast``, never executed).

Nothing here imports ``bnn_brevitas`` or ``flows``; pynq and matplotlib are imported lazily,
so packing and reports work on any host. CLI: ``python -m hw.driver --help``.
"""

from __future__ import annotations

from .dtypes import DType, parse_dtype
from .errors import (AcceleratorTimeout, BundleError, DeviceError, DriverError, InputError,
                     MetadataError, MissingToolError, OutputError, exit_code)
from .meta import SCHEMA_VERSION, AccelMeta, TensorSpec, load_meta, parse_meta
from .packing import check_values, pack_rows, packed_row_bytes, unpack_rows

__all__ = ["DType", "parse_dtype", "DriverError", "InputError", "MetadataError", "BundleError",
           "DeviceError", "AcceleratorTimeout", "MissingToolError", "OutputError", "exit_code",
           "SCHEMA_VERSION", "AccelMeta", "TensorSpec",
           "load_meta", "parse_meta", "check_values", "pack_rows", "packed_row_bytes",
           "unpack_rows", "FinnAccelerator"]


def __getattr__(name: str):  # lazy: FinnAccelerator's module is importable without pynq
    if name == "FinnAccelerator":
        from .accel import FinnAccelerator

        return FinnAccelerator
    raise AttributeError(name)
