# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures for the driver tests: emulated accelerators on the schema example."""

from __future__ import annotations

import pytest

from tests.hw.helpers import example_meta, reference


@pytest.fixture
def meta():
    return example_meta()


@pytest.fixture
def sim_acc(meta):
    """The example accelerator on a fresh emulator with the integer reference model."""
    from hw.driver.sim import ReferenceModel, open_sim

    acc = open_sim(meta, ReferenceModel(meta, reference))
    yield acc
    acc.close()


def pytest_collection_modifyitems(config, items):
    # pynq's own Overlay.download warns that 200 MHz is not reachable from the emulated IOPLL
    # (it is the real ZynqMP divider arithmetic); the driver's clock report covers it.
    for item in items:
        if "tests/hw/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore:Setting frequency to the closest"))
