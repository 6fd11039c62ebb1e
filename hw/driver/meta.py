# SPDX-License-Identifier: BSD-3-Clause
"""Loader for ``accel_meta.json`` (schema version 1), the only source of shapes and types.

The FINN flow writes this file next to the bitstream; the driver holds no shapes of its own.
Dim 0 of every shape is the batch and is overwritten at run time. The loader checks the
schema version and that normal, folded and packed shapes agree with the datatypes, so a bad
file fails here with a message instead of corrupting data on the DMA. Every path it names
stays inside its folder (:func:`inside`): relative, without ``..``, and not a link out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .dtypes import DType, parse_dtype
from .errors import MetadataError
from .packing import packed_row_bytes

SCHEMA_VERSION = 1
META_NAME = "accel_meta.json"
#: the keys of ``input_quant`` the driver reads
INPUT_QUANT_KEYS = {"datatype", "scale", "zero_point", "bipolar"}
PLATFORMS = ("zynq-iodma", "axi-dma")
FILE_KEYS = ("bitfile", "hwh", "hw_onnx", "golden_input", "golden_output")


@dataclass(frozen=True)
class TensorSpec:
    """One accelerator input or output: its DMA, datatype and three shapes (batch first)."""

    name: str
    dma: str
    dtype: DType
    shape_normal: tuple[int, ...]
    shape_folded: tuple[int, ...]
    shape_packed: tuple[int, ...]

    @property
    def frame_bytes(self) -> int:
        """Packed bytes of one sample (what the DMA moves per repetition)."""
        return math.prod(self.shape_packed[1:])

    @property
    def frame_values(self) -> int:
        """Values of one sample."""
        return math.prod(self.shape_normal[1:])

    def with_batch(self, shape: tuple[int, ...], n: int) -> tuple[int, ...]:
        """``shape`` with dim 0 set to ``n``."""
        return (n, *shape[1:])


@dataclass(frozen=True)
class AccelMeta:
    """Parsed ``accel_meta.json``; ``root`` is the folder relative paths resolve against."""

    model: str
    board: str
    fpga_part: str
    platform: str
    synth_mhz: float
    driver_mhz: float
    batch_max: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    postprocess: dict[str, Any] | None = None
    estimates: dict[str, float] | None = None
    files: dict[str, str] = field(default_factory=dict)
    root: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    #: whether the board's PYNQ image reports power rails (from the flow's board registry);
    #: None: the metadata does not say (older builds)
    power_rails: bool | None = None
    #: how the host quantizes the model's float input into the input codes (the flow's
    #: ``InputSpec``: datatype, scale, zero_point, bipolar); None: absent
    input_quant: dict[str, Any] | None = None

    def path(self, key: str) -> Path | None:
        """Absolute path of ``files[key]`` (None when the key is absent); ``MetadataError``
        when it leads outside the bundle."""
        rel = self.files.get(key)
        if rel is None:
            return None
        return inside(self.root or Path("."), rel, f"{META_NAME} files.{key}")


def inside(root: Path, rel: str, what: str) -> Path:
    """``root / rel``, refused (``MetadataError``) unless it stays inside ``root``: a relative
    path without ``..`` components whose target (links followed) lies under ``root``."""
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    if not rel or PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).drive \
            or PureWindowsPath(rel).is_absolute() or ".." in parts:
        raise MetadataError(f"{what}: {rel!r} is not a path inside the bundle (it must be "
                            "relative, without '..')")
    path = root / rel
    real, base = path.resolve(), root.resolve()
    if real != base and base not in real.parents:
        raise MetadataError(f"{what}: {rel!r} leads outside the bundle (to {real}, through a "
                            "link); bundles must hold their files")
    return path


def _need(d: dict, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in d:
        raise MetadataError(f"{where}: missing key {key!r}")
    if not isinstance(d[key], kind) or isinstance(d[key], bool) and kind is not bool:
        raise MetadataError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, "
                            f"got {d[key]!r}")
    return d[key]


def _shape(d: dict, key: str, where: str) -> tuple[int, ...]:
    s = _need(d, key, where, list)
    if not s or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in s):
        raise MetadataError(f"{where}: {key} must be a non-empty list of positive ints, got {s}")
    return tuple(s)


def _tensor(d: Any, where: str) -> TensorSpec:
    if not isinstance(d, dict):
        raise MetadataError(f"{where}: expected an object, got {d!r}")
    dt = parse_dtype(_need(d, "datatype", where, str))
    spec = TensorSpec(_need(d, "name", where, str), _need(d, "dma", where, str), dt,
                      _shape(d, "shape_normal", where), _shape(d, "shape_folded", where),
                      _shape(d, "shape_packed", where))
    n, f, p = spec.shape_normal, spec.shape_folded, spec.shape_packed
    if math.prod(n[1:]) != math.prod(f[1:]):
        raise MetadataError(f"{where}: shape_normal {list(n)} and shape_folded {list(f)} "
                            "hold different numbers of values")
    want = (*f[:-1], packed_row_bytes(f[-1], dt.bits))
    if tuple(p[1:]) != tuple(want[1:]):
        raise MetadataError(f"{where}: shape_packed {list(p)} does not match shape_folded "
                            f"{list(f)} of {dt.name} (expected {[p[0], *want[1:]]})")
    return spec


def parse_meta(d: Any, root: Path | None = None) -> AccelMeta:
    """Validate a decoded metadata dict; raise ``MetadataError`` naming the first problem."""
    if not isinstance(d, dict):
        raise MetadataError("accel_meta.json must hold a JSON object")
    ver = d.get("schema_version")
    if ver != SCHEMA_VERSION:
        raise MetadataError(f"accel_meta.json has schema_version {ver!r}; this driver reads "
                            f"version {SCHEMA_VERSION} (rebuild the bundle with a matching flow)")
    platform = _need(d, "platform", "metadata", str)
    if platform not in PLATFORMS:
        raise MetadataError(f"unknown platform {platform!r}; valid: {', '.join(PLATFORMS)}")
    clock = _need(d, "clock", "metadata", dict)
    synth = float(_need(clock, "synth_mhz", "metadata.clock", (int, float)))
    drv = float(clock.get("driver_mhz", synth))
    if not (0 < synth <= 1000 and 0 < drv <= 1000):
        raise MetadataError(f"metadata.clock: implausible clock {clock}")
    ins = [_tensor(t, f"inputs[{i}]") for i, t in enumerate(_need(d, "inputs", "metadata", list))]
    outs = [_tensor(t, f"outputs[{i}]")
            for i, t in enumerate(_need(d, "outputs", "metadata", list))]
    if not ins or not outs:
        raise MetadataError("metadata: needs at least one input and one output")
    batch_max = _need(d, "batch_max", "metadata", int)
    if batch_max < 1:
        raise MetadataError(f"metadata: batch_max must be >= 1, got {batch_max}")
    files = d.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise MetadataError("metadata: 'files' must map names to relative paths")
    for key, rel in files.items():
        inside(root or Path("."), rel, f"{META_NAME} files.{key}")
    post = d.get("output_postprocess")
    if post is not None and not isinstance(post, dict):
        raise MetadataError("metadata: output_postprocess must be an object or absent")
    est = d.get("estimates")
    if est is not None and not isinstance(est, dict):
        raise MetadataError("metadata: estimates must be an object or absent")
    iq = d.get("input_quant")
    if iq is not None and not (isinstance(iq, dict) and INPUT_QUANT_KEYS <= set(iq)):
        raise MetadataError(f"metadata: input_quant must be an object with "
                            f"{', '.join(sorted(INPUT_QUANT_KEYS))}")
    rails = d.get("power_rails")
    if rails is not None and not isinstance(rails, bool):
        raise MetadataError(f"metadata: power_rails must be true, false or absent, got {rails!r}")
    return AccelMeta(str(d.get("model", "?")), str(d.get("board", "?")),
                     str(d.get("fpga_part", "?")), platform, synth, drv, batch_max,
                     tuple(ins), tuple(outs), post, est, dict(files), root, d, rails, iq)


def load_meta(path: str | Path) -> AccelMeta:
    """Load ``accel_meta.json`` (or a folder holding it); relative files resolve next to it."""
    p = Path(path)
    if p.is_dir():
        p = p / META_NAME
    if not p.is_file():
        raise MetadataError(f"metadata file {p} not found (expected {META_NAME} from the "
                            "FINN flow in the build or bundle folder)")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetadataError(f"cannot read {p}: {e}") from None
    return parse_meta(d, root=p.parent.resolve())
