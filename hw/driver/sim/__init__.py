# SPDX-License-Identifier: BSD-3-Clause
"""Off-board emulator for the driver: a strict ``pynq.Device`` plus accelerator models.

>>> acc = open_sim(meta, ReferenceModel(meta, fn))      # doctest: +SKIP
>>> acc.execute(x)                                      # doctest: +SKIP

Importing this package imports pynq (with the numpy-2 shim). Times measured through it are
emulator host times: every report labels them ``backend: sim``.
"""

from __future__ import annotations

from typing import Any

from ..accel import FinnAccelerator
from ..meta import AccelMeta
from .device import SimZynqMPDevice
from .errors import (SimCoherencyError, SimDmaError, SimError, SimHangError, SimModelError,
                     SimRegisterError)
from .buffer import SimBuffer
from .models import (AcceleratorModel, FinnCodec, NumpyCodec, OnnxModel, ReferenceModel,
                     ReplayModel, default_codec)

__all__ = ["open_sim", "SimZynqMPDevice", "SimBuffer", "SimError", "SimCoherencyError", "SimDmaError",
           "SimHangError", "SimModelError", "SimRegisterError", "AcceleratorModel",
           "ReferenceModel", "OnnxModel", "ReplayModel", "FinnCodec", "NumpyCodec",
           "default_codec"]


def open_sim(meta: AccelMeta, model: AcceleratorModel, *, device_kwargs: dict | None = None,
             **accel_kwargs: Any) -> FinnAccelerator:
    """A ``FinnAccelerator`` on a fresh emulated device (``accel_kwargs`` go to the driver)."""
    dev = SimZynqMPDevice(meta, model, **(device_kwargs or {}))
    return FinnAccelerator.open(meta, bitfile=dev.placeholder_bitfile, device=dev,
                                **accel_kwargs)
