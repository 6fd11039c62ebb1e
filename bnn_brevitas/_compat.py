# SPDX-License-Identifier: BSD-3-Clause
"""Compatibility shims for the pinned stack, applied when this module is first imported.

* torch 2.13 removed the named-tensor API; brevitas 0.13 still calls ``Tensor.rename(None)``
  on every eager forward of a quantized layer. Naming is unused, so ``rename`` becomes a no-op.

Every module that builds or runs Brevitas layers imports this one (``quant``, ``models``), so
the shim is in place before any forward pass; importing ``bnn_brevitas`` alone does not touch
torch.
"""

from __future__ import annotations

import torch


def apply() -> None:
    """Install the shims (idempotent)."""
    if not hasattr(torch.Tensor, "rename"):
        torch.Tensor.rename = lambda self, *args, **kwargs: self  # type: ignore[attr-defined]


apply()
