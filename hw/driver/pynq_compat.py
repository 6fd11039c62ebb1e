# SPDX-License-Identifier: BSD-3-Clause
"""Lazy ``import pynq`` with the numpy-2 shim for ``pynq.allocate``.

pynq 4.0.0 pins numpy<2 because ``PynqBuffer.__new__`` assigns ``self.device``, which numpy 2
made a read-only ndarray attribute (PYNQ issue #1456). The shim (from the project's install
notes) defines ``device`` as a property on the subclass; views and slices keep their device,
address and offset. It is a no-op under numpy 1 (the usual board image).
"""

from __future__ import annotations

import logging
from types import ModuleType

import numpy as np

from .errors import MissingToolError

log = logging.getLogger(__name__)


def _apply_numpy2_shim(buffer_module: ModuleType) -> bool:
    cls = buffer_module.PynqBuffer
    if hasattr(np.ndarray, "device") and not isinstance(cls.__dict__.get("device"), property):
        cls.device = property(lambda self: self.__dict__.get("_pynq_device"),
                              lambda self, v: self.__dict__.__setitem__("_pynq_device", v))
        log.debug("applied the numpy-2 shim to pynq.buffer.PynqBuffer.device")
        return True
    return False


def import_pynq() -> ModuleType:
    """Import pynq (and ``pynq.ps``/``pynq.lib.dma``), applying the numpy-2 shim once."""
    try:
        import pynq
        import pynq.buffer
        import pynq.lib.dma  # noqa: F401  (registers the axi_dma driver with Overlay)
        import pynq.ps  # noqa: F401
    except ImportError as e:
        raise MissingToolError(f"pynq is not importable ({e}); on the board run inside the PYNQ "
                          "virtual environment, on a host install pynq==4.0.0 (--no-deps) "
                          "and use --sim") from None
    _apply_numpy2_shim(pynq.buffer)
    return pynq
