# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas: the BNext family and FINN's CNV in Brevitas, their cost metrics and export.

>>> import bnn_brevitas
>>> "bnext_nano_hw" in bnn_brevitas.list_models()
True
"""

from . import _compat

_compat.apply()

from .errors import ConfigError, ToolkitError, UnknownNameError, UserError  # noqa: E402
from .models import create_model, get_spec, list_models, resolve_config  # noqa: E402

__all__ = [
    "create_model", "list_models", "get_spec", "resolve_config",
    "ToolkitError", "UserError", "ConfigError", "UnknownNameError",
]
