# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas: the BNext family and FINN's CNV in Brevitas, their cost metrics and export.

>>> import bnn_brevitas
>>> "bnext_nano_hw" in bnn_brevitas.list_models()
True

Importing the package (or :mod:`bnn_brevitas.errors`, :mod:`bnn_brevitas.utils`) imports no
torch: ``flows`` and ``hw`` modules that only want an exception class stay cheap. The model
registry functions below are resolved on first use (PEP 562), which imports torch then.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigError, ToolkitError, UnknownNameError, UserError

#: public names that need torch, and the module that defines them (imported on first access)
_LAZY = {name: "bnn_brevitas.models"
         for name in ("create_model", "list_models", "get_spec", "resolve_config")}

__all__ = [*_LAZY, "ToolkitError", "UserError", "ConfigError", "UnknownNameError"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bnn_brevitas' has no attribute {name!r}")
