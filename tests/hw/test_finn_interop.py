# SPDX-License-Identifier: BSD-3-Clause
"""FINN-driver interoperability, both directions, on the emulated ``pynq.Device``.

Matrix: driver (ours ``FinnAccelerator``; FINN's own, finn-plus-driver's ``FINNDMAOverlay``)
x bundle (ours from ``hw.package``; finn-plus's deploy folder written by its own
``MakePYNQDriver``; upstream FINN's ``driver.py`` layout) -> bit-exact against the golden
vectors, for the one-MVAU example build and the ``cnv_build`` session build. Every cell runs
the unmodified driver against ``SimZynqMPDevice`` (pynq's real ``Overlay``/``allocate``/
``Clocks`` code over the emulator). The differences listed in ``finn_compat.DIFFERENCES`` are
asserted below (register traffic, DMA bytes, clock, batch handling, output types).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.hw.finn_deploy import HWH_CLK_WIZ_MHZ, make_finn_plus_deploy, make_upstream_deploy
from tests.hw.helpers import write_mvau_build

pytest.importorskip("finn")
pytest.importorskip("finn_plus_driver", reason="finn-plus-driver not installed "
                    "(pip install --no-deps -r requirements/finn-driver.txt)")

DRIVERS = ("ours", "finn")
BUNDLES = ("ours", "finn-plus", "finn-upstream")


@dataclass
class Case:
    """One build, packaged three ways, and the golden vectors it must reproduce."""

    name: str
    hw_onnx: Path
    clock_mhz: float
    folders: dict[str, Path]
    gi: np.ndarray
    go: np.ndarray
    finn_settings: dict
    cells: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)


def _case(name: str, build: Path, graph: Path, clock_mhz: float, tmp: Path) -> Case:
    from hw.driver.meta import load_meta
    from hw.package import build_bundle

    meta = load_meta(build)
    bundle = build_bundle(build, None, tmp / "bundle").path
    settings = make_finn_plus_deploy(graph, tmp / "finn-plus", tmp / "work",
                                     clk_ns=1000.0 / clock_mhz)
    make_upstream_deploy(settings["driver_information"]["io_shape_dict"], tmp / "finn-upstream")
    return Case(name, meta.path("hw_onnx"), clock_mhz,
                {"ours": bundle, "finn-plus": tmp / "finn-plus",
                 "finn-upstream": tmp / "finn-upstream"},
                np.load(meta.path("golden_input")), np.load(meta.path("golden_output")), settings)


@pytest.fixture(scope="module")
def mvau_case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interop_mvau")
    build = write_mvau_build(tmp / "build")
    return _case("mvau", build, build / "mvau.onnx", 100.0, tmp)


@pytest.fixture(scope="module")
def cnv_case(cnv_build, tmp_path_factory):
    from flows.pipeline import intermediate_path

    return _case("cnv", cnv_build.out_dir, intermediate_path(cnv_build, "make_driver_meta"),
                 cnv_build.clock_mhz, tmp_path_factory.mktemp("interop_cnv"))


@pytest.fixture(params=["mvau", "cnv"])
def case(request):
    return request.getfixturevalue(f"{request.param}_case")


# -- running one cell ------------------------------------------------------------------------

def _trace(dev, memo: dict) -> dict:
    """Record every IODMA register write and the bytes the accelerator model receives. The
    model's answers are memoised by those bytes (``memo``, one per build): it is
    deterministic, so a cell whose driver DMA'd the same bytes gets the same answer without
    executing the ONNX graph again; any other bytes are computed."""
    tr: dict = {"writes": [], "dma_in": []}
    for w in dev.idmas + dev.odmas:
        def rec(off, val, _w=w, _orig=w._write32):
            tr["writes"].append((_w.name, off, val))
            _orig(off, val)
        w._write32 = rec
    model = dev.model

    def model_rec(inputs):
        tr["dma_in"].append([np.array(x, copy=True) for x in inputs])
        key = tuple(x.tobytes() for x in inputs)
        if key not in memo:
            memo[key] = model(inputs)
        return [o.copy() for o in memo[key]]
    dev.model = model_rec
    return tr


def _emulator_meta(bundle: str, folder: Path):
    from hw.driver.finn_compat import find_finn_deploy, meta_from_finn
    from hw.driver.meta import load_meta

    return load_meta(folder) if bundle == "ours" else meta_from_finn(find_finn_deploy(folder))


def _finn_kwargs(bundle: str, folder: Path) -> dict:
    """The constructor arguments FINN's own launchers pass: finn-plus-driver's CLI passes all
    of ``driver_information`` (``fclk_mhz`` included); upstream's driver.py passes
    ``platform`` and ``io_shape_dict``."""
    from hw.driver.finn_compat import find_finn_deploy

    dep = find_finn_deploy(folder)
    if dep.kind == "FINN driver.py":
        return {"platform": dep.platform, "io_shape_dict": dep.io_shape_dict}
    return dict(json.loads(dep.source.read_text())["driver_information"])


def run_ours(case: Case, bundle: str, x: np.ndarray, batch: int | None = None):
    from hw.driver.bundle import open_bundle

    kw = {} if bundle == "ours" else {"hw_onnx": case.hw_onnx}
    with open_bundle(case.folders[bundle], sim=True, purpose="verify", **kw) as acc:
        if batch:
            acc.batch_size = batch
        tr = _trace(acc.device, case.memo)
        y = acc.execute(x)
        tr.update(fclk0=acc.clock["read_back_mhz"], notes=acc.notes)
    return y, tr


def open_finn(case: Case, bundle: str, batch: int):
    """finn-plus-driver's FINNDMAOverlay, unmodified, on a fresh emulated device."""
    from hw.driver.pynq_compat import import_pynq

    pynq = import_pynq()  # the numpy-2 shim first: FINN's driver calls pynq.allocate
    from finn_plus_driver.overlays.dma import FINNDMAOverlay

    from hw.driver.sim import OnnxModel, SimZynqMPDevice

    folder = case.folders[bundle]
    meta = _emulator_meta(bundle, folder)
    dev = SimZynqMPDevice(meta, OnnxModel(meta, case.hw_onnx))
    bit = folder / "bitfile" / "finn-accel.bit"
    bitfile = str(bit) if bit.is_file() else dev.placeholder_bitfile
    acc = FINNDMAOverlay(bitfile, **_finn_kwargs(bundle, folder), batch_size=batch,
                         device=dev, runtime_weight_dir=str(folder / "runtime_weights"))
    return acc, dev, pynq


def run_finn(case: Case, bundle: str, x: np.ndarray):
    acc, dev, pynq = open_finn(case, bundle, x.shape[0])
    tr = _trace(dev, case.memo)
    y = acc.execute(x)
    tr.update(fclk0=pynq.ps.Clocks.fclk0_mhz, fclk_actual=acc.fclk_mhz_actual)
    return y, tr


def cell(case: Case, driver: str, bundle: str):
    key = (driver, bundle)
    if key not in case.cells:
        run = run_ours if driver == "ours" else run_finn
        case.cells[key] = run(case, bundle, case.gi)
    return case.cells[key]


# -- the matrix ------------------------------------------------------------------------------

@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("driver", DRIVERS)
def test_matrix_bit_exact_against_golden(case, driver, bundle):
    y, tr = cell(case, driver, bundle)
    want = case.go.reshape(y.shape)
    assert np.array_equal(y, want), f"{driver} driver x {bundle} bundle ({case.name})"
    assert len(tr["dma_in"]) == 1  # one accelerator run for the whole golden batch


# -- what FINN's driver needs, and what FINN writes ---------------------------------------

def test_bundle_settings_json_is_what_finn_make_pynq_driver_writes(case):
    ours = json.loads((case.folders["ours"] / "settings.json").read_text())
    assert ours["driver_information"] == case.finn_settings["driver_information"]


def test_upstream_driver_py_and_finn_plus_settings_give_the_same_metadata(case):
    from hw.driver.meta import load_meta

    plus = _emulator_meta("finn-plus", case.folders["finn-plus"])
    up = _emulator_meta("finn-upstream", case.folders["finn-upstream"])
    ours = load_meta(case.folders["ours"])
    assert (plus.inputs, plus.outputs) == (up.inputs, up.outputs)
    def strip(specs):
        return [(s.dma, s.dtype, s.shape_normal, s.shape_folded, s.shape_packed) for s in specs]
    assert strip(plus.inputs) == strip(ours.inputs) and strip(plus.outputs) == strip(ours.outputs)
    assert plus.files == up.files == {"bitfile": "bitfile/finn-accel.bit",
                                      "hwh": "bitfile/finn-accel.hwh"}
    assert plus.raw["finn"]["accelerator_mhz"] == pytest.approx(case.clock_mhz)


# -- the differences (finn_compat.DIFFERENCES) -----------------------------------------------

def _shape_of_traffic(writes):
    return [(dma, off) for dma, off, _ in writes]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_same_register_protocol_and_dma_bytes(case, bundle):
    (_, ours), (_, finn) = cell(case, "ours", bundle), cell(case, "finn", bundle)
    n = case.gi.shape[0]
    # odma armed first, then idma: address lo, hi, repetitions, ap_start (both drivers)
    want = [(d, off) for d in ("odma0", "idma0") for off in (0x10, 0x14, 0x1C, 0x00)]
    assert _shape_of_traffic(ours["writes"]) == _shape_of_traffic(finn["writes"]) == want
    for tr in (ours, finn):
        vals = {(d, off): v for d, off, v in tr["writes"]}
        assert vals[("idma0", 0x1C)] == vals[("odma0", 0x1C)] == n
        assert vals[("idma0", 0x00)] == 1
    # the accelerator received the same bytes from both drivers' packing
    assert all(np.array_equal(a, b) for a, b in zip(ours["dma_in"][0], finn["dma_in"][0]))


def test_clock_handling_differs(case):
    _, ours = cell(case, "ours", "ours")
    _, finn_on_ours = cell(case, "finn", "ours")
    _, ours_on_finn = cell(case, "ours", "finn-plus")
    _, finn_on_finn = cell(case, "finn", "finn-plus")
    # FINN's driver programs the PS clock to the Clocking Wizard's 100 MHz reference ...
    assert finn_on_ours["fclk0"] == finn_on_finn["fclk0"] == pytest.approx(99.999)
    # ... and takes the accelerator clock from clk_wiz_0 in the HWH (settings.json without one)
    assert finn_on_finn["fclk_actual"] == HWH_CLK_WIZ_MHZ
    assert finn_on_ours["fclk_actual"] == pytest.approx(case.clock_mhz)
    # ours sets clock.driver_mhz from accel_meta.json: for FINN's Zynq shell the flow writes
    # the Clocking Wizard's 100 MHz reference there (flows/boards.py Shell.pl_ref_mhz), the
    # design clock being synth_mhz, so PL0 is programmed as FINN's driver programs it
    assert ours["fclk0"] == pytest.approx(99.999, 1e-4)
    assert ours_on_finn["fclk0"] == pytest.approx(99.999)


def test_batch_handling_differs(mvau_case):
    case = mvau_case
    x = case.gi  # 6 samples
    acc, _, _ = open_finn(case, "ours", batch=4)
    with pytest.raises(AssertionError):  # FINN: the input must be exactly batch_size samples
        acc.execute(x)
    y, tr = run_ours(case, "ours", x, batch=4)  # ours: chunked 4 + 2
    assert np.array_equal(y, case.go.reshape(y.shape))
    assert [v for d, off, v in tr["writes"] if (d, off) == ("idma0", 0x1C)] == [4, 2]


def test_output_types_differ(mvau_case):
    y_ours, _ = cell(mvau_case, "ours", "ours")
    y_finn, _ = cell(mvau_case, "finn", "ours")
    assert y_ours.dtype.kind == "i" and y_finn.dtype == np.float32
    assert np.array_equal(y_ours, y_finn)


# -- the CLI on FINN deploy folders -------------------------------------------------------------

def _cli(*argv: str) -> int:
    from hw.driver.cli import main

    return main(list(argv))


def test_cli_verifies_a_finn_deploy_folder_with_finn_golden_names(mvau_case, tmp_path, capsys):
    import shutil

    folder = tmp_path / "deploy"
    shutil.copytree(mvau_case.folders["finn-plus"], folder)
    np.save(folder / "input.npy", mvau_case.gi)  # FINN's verify_input_npy naming
    np.save(folder / "expected_output.npy", mvau_case.go)
    hw = str(mvau_case.hw_onnx)
    assert _cli("verify", "--bundle", str(folder), "--sim", "--hw-onnx", hw) == 0
    out = capsys.readouterr().out
    assert "golden check: bit-exact (6 samples)" in out and "FINN deploy folder" in out
    assert "PS clock set to 100 MHz as FINN's driver does" in out
    preds = tmp_path / "p.npy"
    # the driver/ folder alone is enough for --sim (its ../bitfile is outside it: not used)
    assert _cli("run", "--bundle", str(folder / "driver"), "--sim", "--hw-onnx", hw,
                "--input", str(folder / "input.npy"), "-o", str(preds)) == 0
    assert np.array_equal(np.load(preds), np.argmax(mvau_case.go, axis=1))
    capsys.readouterr()
    assert _cli("verify", "--bundle", str(folder), "--sim") == 2
    assert "--hw-onnx" in capsys.readouterr().err
    assert _cli("verify", "--bundle", str(mvau_case.folders["ours"]), "--sim", "--hw-onnx",
                hw) == 2
    assert "for FINN deploy folders" in capsys.readouterr().err


def test_finn_plus_driver_cli_on_the_emulator(mvau_case, tmp_path):
    """finn-plus-driver's own CLI, on our bundle: the emulator is pynq's active device. Its
    throughput test runs the accelerator on input buffers nothing was written to or flushed:
    the strict emulator refuses (on a board, stale DDR bytes go through; the timing stands)."""
    from finn_plus_driver.cli import driver_cli

    from hw.driver.meta import load_meta
    from hw.driver.pynq_compat import import_pynq
    from hw.driver.sim import OnnxModel, SimCoherencyError, SimZynqMPDevice

    pynq = import_pynq()
    folder = mvau_case.folders["ours"]
    meta = load_meta(folder)
    dev = SimZynqMPDevice(meta, OnnxModel(meta, mvau_case.hw_onnx))
    args = ["-b", dev.placeholder_bitfile, "-s", str(folder / "settings.json"),
            "-f", "run_throughput_test", "-fk", f"report_dir={tmp_path}", "Str"]
    before = vars(pynq.Device).get("_active_device")
    pynq.Device.active_device = dev
    try:
        with pytest.raises(SimCoherencyError, match="never flush"):
            driver_cli.main(args, standalone_mode=False)
    finally:
        if before is None:
            del pynq.Device._active_device
        else:
            pynq.Device.active_device = before
    assert [e[0] for e in dev.events][:3] == ["download", "allocate", "allocate"]
