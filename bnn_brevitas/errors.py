# SPDX-License-Identifier: BSD-3-Clause
"""Error hierarchy and the exit-code contract every CLI of the toolkit follows.

``UserError`` = bad input the user can fix; the message says how. ``exit_code`` maps an
exception to the documented exit code (README, "Exit codes"):

===  ==========================================================================
0    success
1    a verification or check ran and failed (or an internal error: a bug)
2    bad input or config: unknown name, missing/invalid file, invalid value
3    an external tool (Vivado, Vitis HLS, a board) is missing
4    incomplete: a requested check could not run (verify's INCOMPLETE)
===  ==========================================================================
"""

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


class CheckFailedError(ToolkitError):
    """A verification or exactness check ran and failed (or training diverged)."""


class IncompleteError(ToolkitError):
    """A requested check could not run, so no verdict can be given."""


class InternalError(ToolkitError):
    """A bug: an invariant of the toolkit does not hold."""


EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_TOOL = 3
EXIT_INCOMPLETE = 4

# most specific first: MissingToolError is also a UserError
_EXIT_BY_TYPE: tuple[tuple[type[BaseException], int], ...] = (
    (MissingToolError, EXIT_MISSING_TOOL),
    (UserError, EXIT_BAD_INPUT),
    (IncompleteError, EXIT_INCOMPLETE),
    (CheckFailedError, EXIT_CHECK_FAILED),
    (InternalError, EXIT_CHECK_FAILED),
)


def exit_code(e: BaseException) -> int:
    """The documented exit code of an exception (any other exception is a bug: 1)."""
    for cls, code in _EXIT_BY_TYPE:
        if isinstance(e, cls):
            return code
    return EXIT_CHECK_FAILED
