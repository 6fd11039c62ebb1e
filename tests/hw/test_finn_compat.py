# SPDX-License-Identifier: BSD-3-Clause
"""``hw/driver/finn_compat.py`` without FINN: io_shape_dict both ways, driver.py read by ast
(never executed), FINN deploy folder detection, refusals. The end-to-end matrix with FINN's
own driver and FINN-generated folders is ``test_finn_interop.py``."""

from __future__ import annotations

import json
import math

import pytest

from hw.driver.errors import BundleError, MetadataError
from hw.driver.finn_compat import (
    DIFFERENCES,
    FINN_PS_CLOCK_MHZ,
    find_finn_deploy,
    finn_settings,
    io_shape_dict,
    meta_from_finn,
    open_finn_meta,
    parse_driver_py,
)
from tests.hw.finn_deploy import make_upstream_deploy, render_upstream_driver_py
from tests.hw.helpers import MVAU_DICT, axi_meta, example_meta

OLD_STYLE = '''
from finn.core.datatype import DataType
io_shape_dict = {
    "idt" : DataType['BIPOLAR'],
    "odt" : DataType['BIPOLAR'],
    "ishape_normal" : (1, 600),
    "oshape_normal" : (1, 1),
    "ishape_folded" : (1, 15, 40),
    "oshape_folded" : (1, 1, 1),
    "ishape_packed" : (1, 15, 5),
    "oshape_packed" : (1, 1, 1)
}
if __name__ == "__main__":
    parser.add_argument('--bitfile', default="resizer.bit")
    parser.add_argument('--batchsize', type=int, default=2000)
'''


def test_io_shape_dict_round_trip_through_settings_and_upstream_driver_py(tmp_path):
    from hw.driver.meta import parse_meta

    meta = parse_meta(dict(MVAU_DICT, files={}))
    settings = finn_settings(meta)
    info = settings["driver_information"]
    assert info["driver_type"] == "FINNDMAOverlay" and info["platform"] == "zynq-iodma"
    assert info["io_shape_dict"]["idt"] == ["DataType['UINT8']"]
    assert info["io_shape_dict"]["oshape_packed"] == [[1, 2, 4]]
    assert info["fclk_mhz"] == meta.synth_mhz
    json.dumps(settings)  # JSON as written into the bundle
    (tmp_path / "plus" / "driver").mkdir(parents=True)
    (tmp_path / "plus" / "driver" / "settings.json").write_text(json.dumps(settings))
    make_upstream_deploy(info["io_shape_dict"], tmp_path / "up")
    for folder, kind in (("plus", "finn-plus settings.json"), ("up", "FINN driver.py")):
        dep = find_finn_deploy(tmp_path / folder)
        assert dep.kind == kind
        back = meta_from_finn(dep)
        assert back.inputs[0].name == "global_in" and back.outputs[0].name == "global_out"
        for a, b in zip(back.inputs + back.outputs, meta.inputs + meta.outputs):
            assert (a.dma, a.dtype, a.shape_folded, a.shape_packed) == \
                (b.dma, b.dtype, b.shape_folded, b.shape_packed)
        assert (back.driver_mhz, back.synth_mhz) == (FINN_PS_CLOCK_MHZ, FINN_PS_CLOCK_MHZ)
        bit = {"bitfile": "bitfile/finn-accel.bit", "hwh": "bitfile/finn-accel.hwh"}
        assert back.files == (bit if folder == "up" else {})  # only "up" got a bitfile/


def test_driver_py_is_parsed_never_executed(tmp_path):
    marker = tmp_path / "executed"
    text = (f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)\n"
            + render_upstream_driver_py(io_shape_dict(example_meta())))
    isd, defaults = parse_driver_py(text)
    assert not marker.exists()
    assert isd["idt"] == ["DataType['UINT8']"] and isd["ishape_normal"] == [(1, 28, 28, 1)]
    assert isd["input_dma_name"] == ["idma0"] and isd["num_inputs"] == 1
    assert defaults == {"platform": "zynq-iodma", "batchsize": 1, "bitfile": "resizer.bit"}


@pytest.mark.parametrize("bad", ["__import__('os').system('true')", "DataType.UINT8",
                                 "[x for x in range(3)]", "DataType[name]", "{**other}"])
def test_driver_py_refuses_anything_but_literals(bad):
    with pytest.raises(MetadataError, match=r"driver.py, line 1: .* is not a literal"):
        parse_driver_py(f'io_shape_dict = {{"idt": {bad}}}\n')


def test_driver_py_without_io_shape_dict_or_broken():
    with pytest.raises(MetadataError, match="no module-level io_shape_dict"):
        parse_driver_py("def f():\n    io_shape_dict = {}\n")
    with pytest.raises(MetadataError, match="not valid Python"):
        parse_driver_py("io_shape_dict = {\n")


def test_oldest_single_tensor_driver_py(tmp_path):
    (tmp_path / "driver").mkdir()
    (tmp_path / "driver" / "driver.py").write_text(OLD_STYLE)
    meta, _ = open_finn_meta(tmp_path)
    s = meta.inputs[0]
    assert (s.dma, s.dtype.name, s.shape_folded, s.shape_packed) == \
        ("idma0", "BIPOLAR", (1, 15, 40), (1, 15, 5))
    assert meta.outputs[0].dma == "odma0" and meta.batch_max == 2000
    assert meta.files == {}  # resizer.bit (its default) is not in the folder


def test_bitfile_outside_the_folder_is_never_used(tmp_path):
    (tmp_path / "x.bit").write_bytes(b"")
    (tmp_path / "d" / "driver").mkdir(parents=True)
    (tmp_path / "d" / "driver" / "driver.py").write_text(
        OLD_STYLE.replace("resizer.bit", "../../x.bit"))
    assert find_finn_deploy(tmp_path / "d").bitfile is None


def _settings_folder(tmp_path, **changes):
    from hw.driver.meta import parse_meta

    s = finn_settings(parse_meta(dict(MVAU_DICT, files={})))
    info = s["driver_information"]
    for k, v in changes.items():
        (info["io_shape_dict"] if k in info["io_shape_dict"] else info)[k] = v
    (tmp_path / "driver").mkdir(exist_ok=True)
    (tmp_path / "driver" / "settings.json").write_text(json.dumps(s))
    return tmp_path


@pytest.mark.parametrize("change, match", [
    ({"idma_names": [""]}, r"idma_names\[0\] is ''; FINN names the DMAs"),
    ({"platform": "alveo"}, "Alveo/XRT is not supported"),
    ({"number_of_external_weights": 1}, "external or runtime-writable weights"),
    ({"runtime_weights": True}, "external or runtime-writable weights"),
    ({"ishape_packed": [[1, 4, 5]]}, r"shape_packed \[1, 4, 5\] does not match"),
    ({"odt": ["DataType['FLOAT32']"]}, "unsupported datatype"),
    ({"num_inputs": 2}, r"'idt' has 1 entries for 2 tensors"),
])
def test_finn_folders_the_driver_cannot_run_are_refused(tmp_path, change, match):
    with pytest.raises(MetadataError, match=match):
        meta_from_finn(find_finn_deploy(_settings_folder(tmp_path, **change)))


def test_not_a_finn_folder(tmp_path):
    assert find_finn_deploy(tmp_path) is None
    with pytest.raises(BundleError, match="neither accel_meta.json nor FINN's"):
        open_finn_meta(tmp_path)
    (tmp_path / "settings.json").write_text('{"driver_information": {"driver_type": '
                                            '"FINNInstrumentationOverlay"}}')
    with pytest.raises(MetadataError, match="no io_shape_dict"):
        find_finn_deploy(tmp_path)


def test_axi_dma_designs_have_no_finn_settings():
    with pytest.raises(MetadataError, match="support only zynq-iodma"):
        finn_settings(axi_meta())


def test_differences_are_documented():
    assert set(DIFFERENCES) >= {"register_map", "packing", "clock", "batch"}
    assert math.isclose(FINN_PS_CLOCK_MHZ, 100.0)


def test_package_writes_settings_json_for_finn(tmp_path):
    from hw.package import build_bundle
    from tests.hw.helpers import write_build

    b = build_bundle(write_build(tmp_path / "build"), None, tmp_path / "bundle")
    assert "settings.json" in b.files
    man = json.loads((b.path / "MANIFEST.json").read_text())
    assert "settings.json" in man["files"]
    s = json.loads((b.path / "settings.json").read_text())
    assert s["driver_information"]["io_shape_dict"] == io_shape_dict(example_meta())
    assert s["driver_information"]["io_shape_dict"]["oshape_packed"] == [[1, 10, 3]]
    assert "finn-plus-driver -b accel.bit -s settings.json" in (b.path / "README.md").read_text()
