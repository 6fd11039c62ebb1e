# SPDX-License-Identifier: BSD-3-Clause
"""Interoperability with FINN's own PYNQ drivers, in both directions (numpy + stdlib only).

FINN describes an accelerator to its driver with an ``io_shape_dict`` (datatypes; normal,
folded and packed shapes; DMA names). Two generations of FINN write it:

* **finn-plus** (1.6.1, ``MakePYNQDriver``): ``driver/settings.json`` holding
  ``driver_information`` (``driver_type``, ``platform``, ``io_shape_dict``, ``fclk_mhz``, ...),
  read by the ``finn-plus-driver`` package (``FINNDMAOverlay``); the deploy folder is
  ``deploy/bitfile/finn-accel.{bit,hwh}`` + ``deploy/driver/settings.json``.
* **upstream FINN** (Xilinx/finn): a generated ``driver/driver.py`` whose module-level
  ``io_shape_dict = {...}`` literal uses ``DataType['UINT8']`` for the datatypes, next to
  ``driver_base.py`` (``FINNExampleOverlay``). It is read here with :mod:`ast`, **never
  executed**: only literals, lists, tuples, dicts, negative numbers and ``DataType['X']``
  are accepted; the ``--platform``/``--bitfile``/``--batchsize`` defaults of its argparse
  calls are read the same way.

:func:`finn_settings` writes our ``accel_meta.json`` as finn-plus's ``settings.json`` (the
deploy bundle carries it, so ``FINNDMAOverlay`` runs the bundle); :func:`find_finn_deploy`
and :func:`meta_from_finn` turn a FINN deploy folder into an in-memory ``accel_meta`` that
``FinnAccelerator`` runs. What differs between the drivers is listed in :data:`DIFFERENCES`
(asserted in ``tests/hw/test_finn_interop.py``).
"""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError, MetadataError
from .meta import SCHEMA_VERSION, AccelMeta, inside, parse_meta

log = logging.getLogger(__name__)

SETTINGS_NAME = "settings.json"
DRIVER_PY_NAME = "driver.py"
#: the driver class finn-plus's flow names for IODMA designs (``FINNDMAOverlay``)
FINN_DRIVER_TYPE = "FINNDMAOverlay"
#: where FINN's flows put the bitfile, relative to the deploy folder (and to the driver dir)
FINN_BITFILES = ("bitfile/finn-accel.bit", "finn-accel.bit", "../bitfile/finn-accel.bit")
#: golden vectors a FINN deploy folder may carry: ours, then FINN's build-config names
GOLDEN_NAMES = (("golden/input.npy", "golden/output.npy"), ("input.npy", "expected_output.npy"))
#: the PS clock (``Clocks.fclk0_mhz``) both FINN drivers program: finn-plus feeds it to the
#: Clocking Wizard as its fixed 100 MHz reference; upstream FINN's ``fclk_mhz`` defaults to it
FINN_PS_CLOCK_MHZ = 100.0
#: host-side batch limit for FINN folders (FINN's drivers fix one batch size; ours chunks)
DEFAULT_BATCH_MAX = 1024

#: what differs between FINN's drivers and ``FinnAccelerator`` (README text, asserted in tests)
DIFFERENCES = {
    "register_map": "same IODMA protocol: idle check, odma armed before idma, each with 0x10/"
                    "0x14 address lo/hi, 0x1C repetitions, 0x00 ap_start, then ap_done of odma "
                    "polled; upstream FINN's driver_base writes 0x10 only (no hi word)",
    "packing": "same DMA bytes: finnpy_to_packed_bytearray(reverse_endian=True, "
               "reverse_inner=True) equals our little-endian packbits; FINN returns float32, "
               "ours integer arrays",
    "clock": "FINN's drivers set Clocks.fclk0_mhz = 100 (finn-plus: the Clocking Wizard's fixed "
             "reference; the accelerator clock is clk_wiz_0's output, read from the HWH, "
             "which pynq's ip_dict lacks); ours sets accel_meta clock.driver_mhz",
    "batch": "FINN: one batch_size fixed at construction, buffers of exactly that size, "
             "execute() asserts the input has exactly that many samples; ours: buffers grow "
             "up to batch_max and any N is run in chunks of batch_size",
    "metadata": "io_shape_dict: DataType['X'] per input/output, no tensor names, no golden "
                "vectors, no manifest; FINN folders get global_in/global_out",
}


@dataclass(frozen=True)
class FinnDeploy:
    """A FINN deploy (or driver) folder: where its description came from and what it says."""

    root: Path
    #: ``"finn-plus settings.json"`` or ``"FINN driver.py"``
    kind: str
    source: Path
    io_shape_dict: dict[str, Any]
    platform: str
    driver_type: str | None = None
    fclk_mhz: float | None = None
    batch_size: int | None = None
    #: the bitfile named or found (inside ``root``), None when the folder has none
    bitfile: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- our metadata -> FINN ---------------------------------------------------------------

def io_shape_dict(meta: AccelMeta) -> dict[str, Any]:
    """``meta`` as finn-plus's ``io_shape_dict`` (the JSON form ``settings.json`` holds)."""
    d: dict[str, Any] = {}
    for pre, specs, dmas in (("i", meta.inputs, "idma_names"), ("o", meta.outputs, "odma_names")):
        d[f"{pre}dt"] = [f"DataType['{s.dtype.name}']" for s in specs]
        d[dmas] = [s.dma for s in specs]
        for kind in ("normal", "folded", "packed"):
            d[f"{pre}shape_{kind}"] = [list(getattr(s, f"shape_{kind}")) for s in specs]
    d.update(num_inputs=len(meta.inputs), num_outputs=len(meta.outputs),
             number_of_external_weights=0, external_weights_input_shapes={})
    return d


def finn_settings(meta: AccelMeta) -> dict[str, Any]:
    """``settings.json`` for the finn-plus driver (``FINNDMAOverlay``, ``finn-plus-driver``'s
    CLI), in the layout finn-plus's ``MakePYNQDriver`` writes.

    Raises:
        MetadataError: for ``axi-dma`` designs (FINN's drivers know zynq-iodma and alveo).
    """
    if meta.platform != "zynq-iodma":
        raise MetadataError(f"platform {meta.platform!r}: FINN's PYNQ drivers support only "
                            "zynq-iodma (and alveo) designs")
    info = {"driver_type": FINN_DRIVER_TYPE, "io_shape_dict": io_shape_dict(meta),
            "external_weights": False, "runtime_weights": False, "platform": meta.platform,
            "fclk_mhz": meta.synth_mhz}
    return {"driver_information": info, "experiment_information": {}}


# -- reading FINN's files ---------------------------------------------------------------

def _literal(node: ast.AST, where: str) -> Any:
    """The value of a literal expression of FINN's generated driver.py (no code runs)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool,
                                                                 type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)) \
            and not isinstance(node.operand.value, bool):
        return -node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        vals = [_literal(e, where) for e in node.elts]
        return vals if isinstance(node, ast.List) else tuple(vals)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k, where): _literal(v, where) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
            and node.value.id == "DataType" and isinstance(node.slice, ast.Constant) \
            and isinstance(node.slice.value, str):
        return f"DataType['{node.slice.value}']"
    raise MetadataError(f"{where}, line {getattr(node, 'lineno', '?')}: "
                        f"{type(node).__name__} is not a literal; only literals and "
                        "DataType['X'] are read from FINN's driver.py (it is never executed)")


def parse_driver_py(text: str, where: str = DRIVER_PY_NAME) -> tuple[dict, dict[str, Any]]:
    """``(io_shape_dict, argparse defaults)`` of an upstream-FINN ``driver.py``, read with
    :mod:`ast` only. The defaults are those of ``add_argument('--platform' | '--bitfile' |
    '--batchsize', default=...)``.

    Raises:
        MetadataError: no module-level ``io_shape_dict = {...}``, or a non-literal in it.
    """
    try:
        tree = ast.parse(text, filename=where)
    except (SyntaxError, ValueError) as e:
        raise MetadataError(f"{where} is not valid Python ({e})") from None
    isd = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "io_shape_dict"
                                                for t in stmt.targets):
            isd = _literal(stmt.value, where)
    if not isinstance(isd, dict):
        raise MetadataError(f"{where} has no module-level io_shape_dict = {{...}} (not a "
                            "FINN-generated driver.py)")
    defaults: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "add_argument" and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and node.args[0].value in ("--platform", "--bitfile", "--batchsize"):
            for kw in node.keywords:
                if kw.arg == "default":
                    defaults[node.args[0].value.lstrip("-")] = _literal(kw.value, where)
    return isd, defaults


def _read_settings(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
        info = d["driver_information"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise MetadataError(f"cannot read {path} as FINN's settings.json "
                            f"(driver_information): {type(e).__name__}: {e}") from None
    if not isinstance(info, dict) or not isinstance(info.get("io_shape_dict"), dict):
        raise MetadataError(f"{path}: driver_information has no io_shape_dict (driver type "
                            f"{info.get('driver_type') if isinstance(info, dict) else '?'!r}); "
                            "only FINN's DMA drivers describe their I/O")
    return info


def _find_bitfile(root: Path, driver_dir: Path, named: str | None) -> Path | None:
    cands = [driver_dir / named] if named else []
    cands += [root / rel for rel in FINN_BITFILES] + [driver_dir / rel for rel in FINN_BITFILES]
    for p in cands:
        try:
            rel = p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue  # outside the folder: never used
        if p.is_file():
            return inside(root, rel, "FINN bitfile")
    return None


def find_finn_deploy(root: str | Path) -> FinnDeploy | None:
    """The FINN deploy folder (or its ``driver/``) at ``root``: finn-plus's ``settings.json``
    first, then upstream FINN's ``driver.py``; None when ``root`` holds neither.

    Raises:
        MetadataError: a ``settings.json`` or ``driver.py`` that cannot be read.
    """
    root = Path(root)
    for driver_dir in (root / "driver", root):
        settings = driver_dir / SETTINGS_NAME
        if settings.is_file():
            info = _read_settings(settings)
            batch = info.get("batch_size")
            return FinnDeploy(root, "finn-plus settings.json", settings, info["io_shape_dict"],
                              str(info.get("platform", "zynq-iodma")), info.get("driver_type"),
                              _float(info.get("fclk_mhz")),
                              batch if isinstance(batch, int) else None,
                              _find_bitfile(root, driver_dir, None),
                              {k: info[k] for k in ("runtime_weights", "external_weights")
                               if k in info})
        drv = driver_dir / DRIVER_PY_NAME
        if drv.is_file():
            try:
                text = drv.read_text()
            except (OSError, UnicodeDecodeError) as e:
                raise MetadataError(f"cannot read {drv}: {e}") from None
            isd, defaults = parse_driver_py(text, str(drv))
            batch = defaults.get("batchsize")
            named = defaults.get("bitfile")
            return FinnDeploy(root, "FINN driver.py", drv, isd,
                              str(defaults.get("platform", "zynq-iodma")), "FINNExampleOverlay",
                              None, batch if isinstance(batch, int) else None,
                              _find_bitfile(root, driver_dir, named if isinstance(named, str)
                                            else None), {"defaults": defaults})
    return None


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# -- FINN -> our metadata ---------------------------------------------------------------

def _per_tensor(isd: dict, key: str, n: int, where: str, shape: bool) -> list:
    """One value per input/output; FINN's single-I/O dicts hold bare values."""
    if key not in isd:
        raise MetadataError(f"{where}: io_shape_dict has no {key!r}")
    v = isd[key]
    single = (isinstance(v, (list, tuple)) and v and all(isinstance(x, int) for x in v)) \
        if shape else not isinstance(v, (list, tuple))
    vals = [v] if single else list(v)
    if len(vals) != n:
        raise MetadataError(f"{where}: io_shape_dict {key!r} has {len(vals)} entries for {n} "
                            "tensors")
    return [list(x) if shape and isinstance(x, (list, tuple)) else x for x in vals]


def _dma_names(isd: dict, pre: str, n: int, where: str) -> list[str]:
    key = next((k for k in (f"{pre}dma_names", "input_dma_name" if pre == "i"
                            else "output_dma_name") if k in isd), None)
    if key is None:  # the oldest drivers hard-code idma0/odma0
        return [f"{pre}dma{i}" for i in range(n)]
    names = _per_tensor(isd, key, n, where, shape=False)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise MetadataError(f"{where}: io_shape_dict {key}[{i}] is {name!r}; FINN names the "
                                "DMAs when it builds the Vivado design (MakeZYNQProject)")
    return names


def meta_dict_from_finn(dep: FinnDeploy) -> dict[str, Any]:
    """The ``accel_meta.json`` content equivalent to a FINN deploy folder (see the module
    docstring); paths are relative to ``dep.root``. Raises ``MetadataError``."""
    where, isd = str(dep.source), dep.io_shape_dict
    if dep.platform != "zynq-iodma":
        raise MetadataError(f"{where}: platform {dep.platform!r}; hw.driver runs FINN designs "
                            "for zynq-iodma (Alveo/XRT is not supported)")
    if int(isd.get("number_of_external_weights", 0) or 0) or dep.extra.get("runtime_weights"):
        raise MetadataError(f"{where}: the design streams external or runtime-writable "
                            "weights, which hw.driver does not load (use FINN's driver)")
    counts = {}
    for pre, key in (("i", "num_inputs"), ("o", "num_outputs")):
        dt = isd.get(f"{pre}dt")
        n = isd.get(key, len(dt) if isinstance(dt, (list, tuple)) else 1)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise MetadataError(f"{where}: io_shape_dict {key} must be a positive int, got {n!r}")
        counts[pre] = n
    tensors: dict[str, list[dict]] = {}
    for pre, label in (("i", "in"), ("o", "out")):
        n = counts[pre]
        dts = _per_tensor(isd, f"{pre}dt", n, where, shape=False)
        dmas = _dma_names(isd, pre, n, where)
        shapes = {k: _per_tensor(isd, f"{pre}shape_{k}", n, where, shape=True)
                  for k in ("normal", "folded", "packed")}
        tensors[pre] = [{"name": f"global_{label}" + (f"_{i}" if i else ""), "dma": dmas[i],
                         "datatype": str(dts[i]),
                         **{f"shape_{k}": shapes[k][i] for k in shapes}} for i in range(n)]
    files: dict[str, str] = {}
    if dep.bitfile is not None:
        rel = dep.bitfile.relative_to(dep.root).as_posix()
        files["bitfile"] = rel
        files["hwh"] = rel[:-4] + ".hwh" if rel.endswith(".bit") else rel + ".hwh"
    for gin, gout in GOLDEN_NAMES:
        for base in ("", "driver/"):
            if (dep.root / base / gin).is_file() and (dep.root / base / gout).is_file() \
                    and "golden_input" not in files:
                files.update(golden_input=base + gin, golden_output=base + gout)
    return {
        "schema_version": SCHEMA_VERSION, "model": f"finn:{dep.root.resolve().name}",
        "board": "unknown board", "fpga_part": "?", "platform": dep.platform,
        "clock": {"synth_mhz": FINN_PS_CLOCK_MHZ, "driver_mhz": FINN_PS_CLOCK_MHZ},
        "batch_max": max(int(dep.batch_size or 0), DEFAULT_BATCH_MAX),
        "inputs": tensors["i"], "outputs": tensors["o"], "files": files,
        "finn": {"kind": dep.kind, "source": dep.source.relative_to(dep.root).as_posix(),
                 "driver_type": dep.driver_type, "accelerator_mhz": dep.fclk_mhz,
                 "batch_size": dep.batch_size},
    }


def meta_from_finn(dep: FinnDeploy) -> AccelMeta:
    """:func:`meta_dict_from_finn`, validated like an ``accel_meta.json`` (shapes must agree
    with the datatypes: the packed shape is checked against our packing rule)."""
    try:
        return parse_meta(meta_dict_from_finn(dep), root=dep.root.resolve())
    except MetadataError as e:
        raise MetadataError(f"{dep.source} ({dep.kind}): {e}") from None


def open_finn_meta(root: str | Path) -> tuple[AccelMeta, FinnDeploy]:
    """The metadata of the FINN deploy folder ``root`` (``BundleError`` if it is none)."""
    dep = find_finn_deploy(root)
    if dep is None:
        raise BundleError(f"{root} holds neither accel_meta.json nor FINN's "
                          f"driver/{SETTINGS_NAME} or driver/{DRIVER_PY_NAME}")
    return meta_from_finn(dep), dep
