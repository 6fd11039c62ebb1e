# SPDX-License-Identifier: BSD-3-Clause
"""Errors of the on-board driver and the exit code of each.

The driver cannot import ``bnn_brevitas.errors`` (it runs on the board with numpy and pynq
only), so it defines its own small hierarchy with the same meaning and the same exit codes
(``tests/hw/test_exit_codes.py`` keeps them equal to the toolkit's contract):

===  ==========================================================================
0    success (``verify``: the outputs are bit-exact)
1    a check ran and failed (``verify``: a mismatch), the accelerator misbehaved
     (not idle, timeout), the emulator caught a driver bug, or an internal error
2    bad input: arguments, data, metadata, a bundle that fails its MANIFEST.json
3    a tool is missing: no pynq, no board (overlay cannot load), no FINN for ``--sim``
4    incomplete: a requested check could not run
===  ==========================================================================

``DriverError`` is the base of every error raised on purpose; its message says what to fix
and its class attribute ``exit_code`` is the CLI's exit status.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_TOOL = 3
EXIT_INCOMPLETE = 4


class DriverError(Exception):
    """Base class of every error the driver raises on purpose (the ToolkitError of hw/driver)."""

    exit_code = EXIT_BAD_INPUT


class InputError(DriverError, ValueError):
    """Bad user data: wrong shape, dtype or values outside the input datatype."""


class MetadataError(DriverError):
    """accel_meta.json is missing, malformed, inconsistent or of another schema version."""


class BundleError(DriverError):
    """A deploy bundle or build directory lacks a required file, or fails its manifest."""


class OutputError(DriverError):
    """An output path cannot be written: a folder where a file is wanted, no permission."""


class DeviceError(DriverError):
    """The accelerator misbehaved (busy, timeout, a short transfer) or the overlay lacks an IP."""

    exit_code = EXIT_CHECK_FAILED


class AcceleratorTimeout(DeviceError):
    """The accelerator did not report ap_done within the timeout."""


class MissingToolError(DeviceError):
    """What the command needs is not here: pynq, a board to load the overlay on, FINN."""

    exit_code = EXIT_MISSING_TOOL


def exit_code(e: BaseException) -> int:
    """The documented exit code of an exception (any other exception is a bug: 1)."""
    return e.exit_code if isinstance(e, DriverError) else EXIT_CHECK_FAILED
