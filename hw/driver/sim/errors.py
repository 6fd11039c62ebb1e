# SPDX-License-Identifier: BSD-3-Clause
"""Errors the strict emulator raises when a driver would misbehave on a real board."""

from __future__ import annotations

from ..errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, DriverError


class SimError(DriverError):
    """Base class: the emulated hardware was driven in a way real hardware would not accept
    (a driver bug: exit 1)."""

    exit_code = EXIT_CHECK_FAILED


class SimCoherencyError(SimError):
    """A cache-maintenance bug: missing ``flush()`` before the device reads a buffer, or a CPU
    read of device-written data without ``invalidate()``."""


class SimDmaError(SimError):
    """A DMA address outside every allocated buffer, misaligned, or a bad transfer length."""


class SimRegisterError(SimError):
    """A register access real hardware would corrupt: ap_start while busy, a 64-bit value
    through a 32-bit register, an unmapped offset, a non-int value."""


class SimHangError(SimError):
    """The driver polls for completion that can never come (real hardware would hang)."""


class SimModelError(SimError):
    """The accelerator model cannot be read or run, or produced data that does not fit the
    metadata (a bad bundle: exit 2)."""

    exit_code = EXIT_BAD_INPUT
