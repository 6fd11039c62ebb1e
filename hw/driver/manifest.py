# SPDX-License-Identifier: BSD-3-Clause
"""Integrity of a deploy bundle: every file against ``MANIFEST.json`` before it is used.

``python -m hw.package`` writes ``MANIFEST.json`` last, with the sha256 and size of every file
of the bundle. Before a bundle is opened the driver checks, and refuses with a
``BundleError`` naming the file:

* every listed file exists, inside the bundle, with its size and sha256 (a damaged copy, an
  edited golden vector, a replaced bitstream);
* every file the driver would read or import is listed: ``accel_meta.json``, each file its
  ``files`` names, and the driver code under ``hw/`` (``__pycache__`` aside). Other files
  (predictions or a profile written into the folder) are not the bundle's and are ignored.

A folder without ``MANIFEST.json`` is a build folder of the FINN flow (no ``hw/driver``
copy): it is used as it is, and the CLI says that nothing was checked. A folder holding the
driver copy but no manifest is a bundle that lost it: refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import BundleError
from .meta import META_NAME, AccelMeta, inside

MANIFEST_NAME = "MANIFEST.json"
#: the driver copy in a bundle (code the CLI imports when run from the bundle)
CODE_DIR = "hw"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_manifest(root: Path) -> dict[str, dict] | None:
    """Check every file ``root``'s manifest lists; returns the listing (``{relative path:
    {"sha256", "bytes"}}``), None for a build folder. Run it before reading any file."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        if (root / CODE_DIR / "driver").is_dir():
            raise BundleError(f"{root} holds a driver copy ({CODE_DIR}/driver) but no "
                              f"{MANIFEST_NAME}: a deploy bundle that lost its manifest cannot "
                              "be checked; copy the bundle again")
        return None
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise BundleError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    if not isinstance(files, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()):
        raise BundleError(f"{path}: 'files' must map paths to {{\"sha256\": ..., \"bytes\": ...}}")
    _check_listed(root, files)
    return files


def _check_listed(root: Path, files: dict[str, dict]) -> None:
    for rel, entry in sorted(files.items()):
        path = inside(root, rel, MANIFEST_NAME)
        if not path.is_file():
            raise BundleError(f"{rel}: listed in {MANIFEST_NAME} but missing from {root}")
        size = entry.get("bytes")
        if (size is not None and path.stat().st_size != size) or \
                sha256_file(path) != entry["sha256"]:
            raise BundleError(f"{rel}: its sha256 differs from {MANIFEST_NAME} (changed or "
                              f"damaged after packaging); copy the bundle again or rebuild it "
                              "with python -m hw.package")


def _used_files(root: Path, meta: AccelMeta) -> list[str]:
    """Relative paths of the files the driver reads or imports from the bundle."""
    used = {META_NAME}
    used |= {Path(p).relative_to(root).as_posix() for k in meta.files
             if (p := meta.path(k)) is not None and p.exists()}
    code = root / CODE_DIR
    if code.is_dir():
        used |= {p.relative_to(root).as_posix() for p in code.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    return sorted(used)


def check_used(root: Path, meta: AccelMeta, files: dict[str, dict] | None) -> str:
    """Check that the manifest ``files`` (``check_manifest``) lists every file the driver uses;
    returns the line the CLI prints about the bundle's integrity."""
    if files is None:
        return f"bundle: {root} is a build folder (no {MANIFEST_NAME}): files not checked"
    extra = [rel for rel in _used_files(root, meta) if rel not in files]
    if extra:
        raise BundleError(f"{extra[0]}: in the bundle but not in {MANIFEST_NAME} (added after "
                          f"packaging{f', with {len(extra) - 1} more' if len(extra) > 1 else ''}"
                          "); the driver only uses files the manifest lists")
    return f"bundle: {len(files)} files match {MANIFEST_NAME}"
