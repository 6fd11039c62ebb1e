# SPDX-License-Identifier: BSD-3-Clause
"""Error hierarchy. ``UserError`` = bad input the user can fix; the message says how."""

from __future__ import annotations

from collections.abc import Iterable


class ToolkitError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class UserError(ToolkitError):
    """Bad input: unknown name, wrong shape, missing file, invalid config value."""


class ConfigError(UserError, ValueError):
    """An invalid configuration value or override."""


class UnknownNameError(UserError, KeyError):
    """A name that is not in a registry; the message lists the valid ones."""

    def __init__(self, kind: str, name: object, valid: Iterable[str]) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class MissingToolError(UserError):
    """An external tool (Vivado, Vitis HLS, Verilator) is not installed."""


class InternalError(ToolkitError):
    """A bug: an invariant of the toolkit does not hold."""
