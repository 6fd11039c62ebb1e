# SPDX-License-Identifier: BSD-3-Clause
"""flows/names.py: the base facts are what the rest of the project (and FINN) use."""

from __future__ import annotations

from onnx import helper

from flows import names
from hw.driver.meta import META_NAME


def test_driver_reads_the_metadata_file_the_flow_writes():
    assert META_NAME == names.ACCEL_META  # the driver cannot import flows: checked here


def test_domains_are_finns():
    from finn.custom_op.fpgadataflow import hls, rtl

    assert hls.__name__ == names.HLS_DOMAIN and rtl.__name__ == names.RTL_DOMAIN
    for domain, hw in ((names.HW_DOMAIN, True), (names.RTL_DOMAIN, True),
                       (names.HLS_DOMAIN, True), ("finn.custom_op.fpgadataflowx", False),
                       ("qonnx.custom_op.general", False)):
        assert names.is_hw_node(helper.make_node("X", [], [], domain=domain)) is hw


def test_intermediate_file_pattern(tmp_path):
    assert names.intermediate_file(tmp_path, 7, "set_folding") == \
        tmp_path / "intermediate" / "07_set_folding.onnx"
