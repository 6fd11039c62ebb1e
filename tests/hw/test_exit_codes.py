# SPDX-License-Identifier: BSD-3-Clause
"""The driver's exit codes are the toolkit's contract (``bnn_brevitas.errors``), though the
driver cannot import it: every code equal, and every driver error class on the code of its
toolkit counterpart."""

from __future__ import annotations

import pytest

from bnn_brevitas import errors as toolkit
from hw.driver import errors as driver
from hw.driver.sim import errors as sim

CODES = ("EXIT_OK", "EXIT_CHECK_FAILED", "EXIT_BAD_INPUT", "EXIT_MISSING_TOOL", "EXIT_INCOMPLETE")


@pytest.mark.parametrize("name", CODES)
def test_driver_codes_equal_the_contract(name):
    assert getattr(driver, name) == getattr(toolkit, name)


@pytest.mark.parametrize("cls, counterpart", [
    (driver.DriverError, toolkit.UserError),
    (driver.InputError, toolkit.UserError),
    (driver.MetadataError, toolkit.UserError),
    (driver.BundleError, toolkit.UserError),
    (driver.OutputError, toolkit.UserError),
    (driver.DeviceError, toolkit.CheckFailedError),
    (driver.AcceleratorTimeout, toolkit.CheckFailedError),
    (driver.MissingToolError, toolkit.MissingToolError),
    (sim.SimCoherencyError, toolkit.InternalError),  # the emulator caught a driver bug
    (sim.SimRegisterError, toolkit.InternalError),
    (sim.SimModelError, toolkit.UserError),  # the bundle's model cannot run
], ids=lambda c: c.__name__)
def test_each_driver_error_has_the_code_of_its_counterpart(cls, counterpart):
    assert driver.exit_code(cls("x")) == toolkit.exit_code(counterpart("x"))


def test_any_other_exception_is_a_bug_in_both():
    assert driver.exit_code(ValueError("x")) == toolkit.exit_code(ValueError("x")) == 1
