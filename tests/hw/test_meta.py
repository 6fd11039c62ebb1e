# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver/meta.py: the schema-1 loader and its error messages."""

from __future__ import annotations

import json

import pytest

from hw.driver.errors import MetadataError
from hw.driver.meta import load_meta, parse_meta
from tests.hw.helpers import FIXTURES, example_dict


def test_fixture_parses_with_every_field():
    m = load_meta(FIXTURES)
    assert (m.model, m.board, m.platform, m.synth_mhz, m.driver_mhz, m.batch_max) == \
        ("bnext_nano_hw", "zcu104", "zynq-iodma", 200.0, 200.0, 1024)
    i, o = m.inputs[0], m.outputs[0]
    assert (i.dma, i.dtype.name, i.frame_bytes, i.frame_values) == ("idma0", "UINT8", 784, 784)
    assert (o.dma, o.dtype.name, o.frame_bytes, o.shape_folded) == ("odma0", "INT24", 30,
                                                                    (1, 10, 1))
    assert m.postprocess == {"scale": 0.0123, "bias": None, "argmax": True}
    assert m.path("golden_input") == FIXTURES.resolve() / "golden/input.npy"
    assert m.estimates["cycles_per_frame"] == 12345


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema_version=2), "schema_version 2; this driver reads version 1"),
    (lambda d: d.pop("schema_version"), "schema_version None"),
    (lambda d: d.update(platform="pcie"), "unknown platform 'pcie'; valid: zynq-iodma, axi-dma"),
    (lambda d: d.pop("inputs"), "missing key 'inputs'"),
    (lambda d: d["inputs"][0].update(datatype="FLOAT32"), "unsupported datatype 'FLOAT32'"),
    (lambda d: d["outputs"][0].update(shape_packed=[1, 10, 4]),
     r"shape_packed \[1, 10, 4\] does not match shape_folded \[1, 10, 1\] of INT24 "
     r"\(expected \[1, 10, 3\]\)"),
    (lambda d: d["inputs"][0].update(shape_folded=[1, 28, 28, 2, 1]), "different numbers"),
    (lambda d: d["inputs"][0].update(shape_normal=[1, 0]), "positive ints"),
    (lambda d: d.update(batch_max=0), "batch_max must be >= 1"),
    (lambda d: d["clock"].pop("synth_mhz"), r"metadata.clock: missing key 'synth_mhz'"),
    (lambda d: d.update(files={"bitfile": 3}), "'files' must map names"),
    (lambda d: d.update(power_rails="yes"), "power_rails must be true, false or absent"),
])
def test_bad_metadata_is_rejected_with_a_message(mutate, message):
    d = example_dict()
    mutate(d)
    with pytest.raises(MetadataError, match=message):
        parse_meta(d)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(MetadataError, match="accel_meta.json not found"):
        load_meta(tmp_path)
    (tmp_path / "accel_meta.json").write_text("{not json")
    with pytest.raises(MetadataError, match="cannot read"):
        load_meta(tmp_path)
    (tmp_path / "accel_meta.json").write_text(json.dumps([1]))
    with pytest.raises(MetadataError, match="must hold a JSON object"):
        load_meta(tmp_path)


def test_power_rails_flag_is_read_and_optional():
    assert parse_meta(example_dict()).power_rails is None  # older metadata does not say
    assert parse_meta(example_dict(power_rails=False)).power_rails is False
