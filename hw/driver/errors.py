# SPDX-License-Identifier: BSD-3-Clause
"""Errors of the on-board driver.

The driver cannot import ``bnn_brevitas.errors`` (it runs on the board with numpy and pynq
only), so it defines its own small hierarchy with the same meaning: ``DriverError`` is the
base of every error raised on purpose, and its message says what to fix. The CLI turns a
``DriverError`` into a one-line message and exit status 2.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base class of every error the driver raises on purpose (the ToolkitError of hw/driver)."""


class InputError(DriverError, ValueError):
    """Bad user data: wrong shape, dtype or values outside the input datatype."""


class MetadataError(DriverError):
    """accel_meta.json is missing, malformed, inconsistent or of another schema version."""


class BundleError(DriverError):
    """A deploy bundle or build directory lacks a required file."""


class DeviceError(DriverError):
    """No usable PYNQ device / overlay, or the accelerator misbehaved (busy, timeout)."""


class AcceleratorTimeout(DeviceError):
    """The accelerator did not report ap_done within the timeout."""
