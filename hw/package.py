# SPDX-License-Identifier: BSD-3-Clause
"""Deploy bundle: everything the board needs, in one folder and one ``.tar.gz``.

``python -m hw.package --build-dir BUILD -o OUTDIR [--board zcu104]`` writes ``OUTDIR/`` and
``OUTDIR.tar.gz`` holding ``accel.bit`` + ``accel.hwh`` (when the build has them: they come
from Vivado), ``accel_meta.json`` (file paths rewritten to the bundle layout), the golden
vectors ``golden/input.npy`` + ``golden/output.npy``, the HW-layer ONNX when present (for
``--sim`` on a host), a copy of ``hw/driver`` (numpy + pynq only), ``settings.json`` for
FINN's own driver (finn-plus ``FINNDMAOverlay`` / the ``finn-plus-driver`` CLI; zynq-iodma
designs, ``hw/driver/finn_compat.py``), ``README.md`` with the on-board commands and
``MANIFEST.json`` (sha256 of every file).

The build is checked first; then the bundle is assembled in a temporary folder next to
``OUTDIR`` and swapped into place only when complete (``bnn_brevitas.outputs``): a missing
required file raises ``BundleError`` and leaves nothing behind. ``--force`` replaces only a
bundle this command wrote: a folder with the toolkit's ownership marker of ``hw.package`` (or,
written before the marker, with ``MANIFEST.json`` and ``accel_meta.json``) and a tarball holding
``OUTDIR/MANIFEST.json``. Any other folder or file, a build (the source or another one) and a
folder that holds the build are refused, with or without ``--force``; nothing is deleted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from bnn_brevitas.errors import UserError
from bnn_brevitas.outputs import MARKER, OutputError, atomic_output_dir, check_output_dir
from bnn_brevitas.utils import module_logger, run_cli, setup_logging, sha256_file
from flows.boards import get_board
from hw.driver.errors import BundleError, DriverError
from hw.driver.finn_compat import SETTINGS_NAME, finn_settings
from hw.driver.manifest import MANIFEST_NAME
from hw.driver.meta import META_NAME, load_meta, parse_meta

log = module_logger(__spec__, __name__)
DRIVER_SRC = Path(__file__).resolve().parent / "driver"
LAYOUT = {"bitfile": "accel.bit", "hwh": "accel.hwh", "golden_input": "golden/input.npy",
          "golden_output": "golden/output.npy", "hw_onnx": "hw_model.onnx"}
MANIFEST = MANIFEST_NAME  # the name the driver checks (hw/driver/manifest.py)
#: the owner named in a bundle's ownership marker, and the files that mark a bundle written
#: before the marker existed (``bnn_brevitas.outputs``)
OUTPUT_TOOL = "hw.package"
LEGACY_BUNDLE_FILES = (MANIFEST, META_NAME)


@dataclass(frozen=True)
class Bundle:
    """A finished bundle: its folder, tarball, files and whether it can run on hardware."""

    path: Path
    tarball: Path
    files: tuple[str, ...]
    has_bitstream: bool


def _sources(build: Path, board: str | None) -> tuple[dict, dict[str, Path], bool]:
    meta = load_meta(build)
    # the build's metadata names its board; --board, when given, only has to be the same board
    # (in any spelling the registry accepts: zcu104, ZCU104)
    if board is not None and get_board(board).name != get_board(meta.board).name:
        raise BundleError(f"{build / META_NAME} is for board {meta.board!r}, not {board!r}")
    found = {k: p for k in LAYOUT if (p := meta.path(k)) is not None and p.is_file()}
    for key in ("golden_input", "golden_output"):
        if key not in found:
            raise BundleError(f"required file files.{key} ({meta.path(key)}) is missing from "
                              f"the build; the FINN flow writes the golden vectors")
    has_bit, has_hwh = "bitfile" in found, "hwh" in found
    if has_bit != has_hwh:
        have, lack = ("accel.bit", "accel.hwh") if has_bit else ("accel.hwh", "accel.bit")
        raise BundleError(f"the build has {have} but not {lack}; pynq.Overlay needs both")
    if not has_bit:
        log.warning("no bitstream in %s (Vivado not run): the bundle runs only with --sim",
                    build)
    return meta.raw, found, has_bit


def _readme(meta: dict, name: str, has_bit: bool, build: Path) -> str:
    hw_note = ("" if has_bit else "\n**This bundle has no bitstream** (the build ran without "
               "Vivado): only the `--sim` commands work until `accel.bit`/`accel.hwh` are "
               "added and the bundle is rebuilt.\n")
    finn_note = ("" if meta.get("platform") != "zynq-iodma" else f"""
FINN's own driver runs the same bundle from `{SETTINGS_NAME}` (finn-plus `FINNDMAOverlay`;
`pip install finn-plus-driver==1.6.1` in the PYNQ environment, with `onnx==1.17.0` against
pynq's protobuf; not verified on a board):

```bash
finn-plus-driver -b accel.bit -s {SETTINGS_NAME} -f run_throughput_test -fk report_dir=. Str
```
""")
    return f"""# Deploy bundle `{name}`: {meta.get('model')} for {meta.get('board')}

Built {datetime.date.today().isoformat()} from `{build}` by `python -m hw.package`.
Platform {meta.get('platform')}, part {meta.get('fpga_part')}, design clock
{meta.get('clock', {}).get('synth_mhz')} MHz. `{MANIFEST}` lists the sha256 of every file.
{hw_note}
## On the board

Copy the folder (from the repository: `make deploy BOARD={meta.get('board')} HOST=xilinx@<board>`,
or `scp -r {name} xilinx@<board>:`), then on the board, as root with the PYNQ Python
environment active (PYNQ 3.x images: `sudo -i` then `source /etc/profile.d/pynq_venv.sh`;
not verified here, no board was available):

```bash
cd {name}
python3 -m hw.driver verify --bundle .                       # golden vectors, bit-exact
python3 -m hw.driver run --bundle . --input golden/input.npy -o preds.npy
python3 -m hw.driver profile --bundle . -o profile            # throughput, latency, power
```

The driver needs only numpy and pynq (matplotlib optional, for the profile plots).
{finn_note}
## Off-board (emulator; every number is labelled `sim`, never hardware)

```bash
python -m hw.driver verify --bundle . --sim   # runs hw_model.onnx; refused without it
python -m hw.driver profile --bundle . --sim --latency-runs 200 -o profile-sim
```
"""


def _populate(tmp: Path, meta: dict, found: dict[str, Path], has_bit: bool, name: str,
              build: Path) -> None:
    meta = dict(meta, files={k: LAYOUT[k] for k in found})
    for key, src in found.items():
        dst = tmp / LAYOUT[key]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    (tmp / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    if meta.get("platform") == "zynq-iodma":  # FINN's drivers have no axi-dma platform
        settings = finn_settings(parse_meta(meta, root=tmp))
        (tmp / SETTINGS_NAME).write_text(json.dumps(settings, indent=2) + "\n")
    shutil.copytree(DRIVER_SRC, tmp / "hw" / "driver",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tmp / "hw" / "__init__.py").write_text('"""Deploy-bundle copy of the toolkit\'s hw '
                                            'package (driver only)."""\n')
    (tmp / "README.md").write_text(_readme(meta, name, has_bit, build))
    files = _files(tmp)
    manifest = {"created": datetime.datetime.now().isoformat(timespec="seconds"),
                "model": meta.get("model"), "board": meta.get("board"),
                "has_bitstream": has_bit, "source": str(build),
                "files": {f: {"sha256": sha256_file(tmp / f), "bytes": (tmp / f).stat().st_size}
                          for f in files}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _files(folder: Path) -> list[str]:
    """The bundle's files (the ownership marker is the toolkit's, not the bundle's)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MARKER)


def _check_tarball(tarball: Path, name: str, force: bool) -> None:
    """Whether the tarball may be (re)written: absent, or with ``force`` a bundle tarball
    (holds ``<name>/MANIFEST.json``); raises ``OutputError`` otherwise."""
    if not tarball.exists() and not tarball.is_symlink():
        return
    if not tarball.is_file():
        raise OutputError(f"{tarball} is not a file; it is never replaced")
    if not force:
        raise OutputError(f"{tarball} exists; pass --force to replace it")
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tar.getmember(f"{name}/{MANIFEST}")
    except (tarfile.TarError, KeyError, OSError, EOFError):
        raise OutputError(f"{tarball} is not a bundle tarball of {OUTPUT_TOOL} (no "
                          f"{name}/{MANIFEST} inside); it is never replaced, even with "
                          "--force") from None


def build_bundle(build_dir: str | Path, board: str | None, out_dir: str | Path, *,
                 force: bool = False) -> Bundle:
    """Assemble the bundle from ``build_dir`` into ``out_dir`` (+ ``.tar.gz``). The board is
    the build's own (``accel_meta.json``); ``board``, when given, must name the same one.
    ``force`` replaces an existing bundle of this command (see the module docstring)."""
    build, out = Path(build_dir).resolve(), Path(out_dir).resolve()
    if not build.is_dir():
        raise BundleError(f"build folder {build} not found")
    meta, found, has_bit = _sources(build, board)  # the source first: nothing touched yet
    tarball = out.with_name(out.name + ".tar.gz")
    policy = dict(replace=force, legacy=LEGACY_BUNDLE_FILES, sources=(build,))
    check_output_dir(out, OUTPUT_TOOL, **policy)
    _check_tarball(tarball, out.name, force)
    tmp_tar = out.with_name(f".{tarball.name}.tmp-{os.getpid()}")
    try:
        with atomic_output_dir(out, OUTPUT_TOOL, **policy) as tmp:
            _populate(tmp, meta, found, has_bit, out.name, build)
            with tarfile.open(tmp_tar, "w:gz") as tar:
                tar.add(tmp, arcname=out.name,
                        filter=lambda m: None if Path(m.name).name == MARKER else m)
        os.replace(tmp_tar, tarball)
    finally:
        tmp_tar.unlink(missing_ok=True)
    files = tuple(_files(out))
    log.info("bundle %s (%d files) and %s", out, len(files), tarball.name)
    return Bundle(out, tarball, files, has_bit)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m hw.package --build-dir BUILD -o OUTDIR [--board BOARD] [--force]``."""
    ap = argparse.ArgumentParser(prog="python -m hw.package", description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True, type=Path, help="FINN build output folder")
    ap.add_argument("--board", help="check that the build is for this board (default: the "
                    "build's own board, from its accel_meta.json)")
    ap.add_argument("-o", "--out", required=True, type=Path, help="bundle folder to create")
    ap.add_argument("--force", action="store_true",
                    help="replace an existing bundle written by this command (nothing else)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)

    def body() -> None:
        try:
            b = build_bundle(args.build_dir, args.board, args.out, force=args.force)
        except DriverError as e:  # the driver's own errors (it cannot import ours): bad input
            raise UserError(str(e)) from e
        print(f"bundle {b.path} ({len(b.files)} files, "  # noqa: T201 (CLI output)
              f"bitstream: {'yes' if b.has_bitstream else 'no'})")
        print(f"tarball {b.tarball}")  # noqa: T201 (CLI output)

    return run_cli(log, args.verbose, body)


if __name__ == "__main__":
    sys.exit(main())
