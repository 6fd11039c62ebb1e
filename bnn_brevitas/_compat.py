# SPDX-License-Identifier: BSD-3-Clause
"""Compatibility shims for the pinned stack, applied once when ``bnn_brevitas`` is imported.

* torch 2.13 removed the named-tensor API; brevitas 0.13 still calls ``Tensor.rename(None)``
  on every eager forward of a quantized layer. Naming is unused, so ``rename`` becomes a no-op.
"""

from __future__ import annotations

import torch


def apply() -> None:
    if not hasattr(torch.Tensor, "rename"):
        torch.Tensor.rename = lambda self, *args, **kwargs: self  # type: ignore[attr-defined]
