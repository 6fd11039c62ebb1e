# SPDX-License-Identifier: BSD-3-Clause
"""A build directory is self-contained and relocatable: it is always run with its own files.

FINN writes absolute paths into a build: the partition model of ``dataflow_parent.onnx`` (the
``model`` attribute of its StreamingDataflowPartition), the code-generation and IP directories
of every layer (``code_gen_dir_ipgen``, ``ipgen_path``, ``ip_path``), and the generated HDL
names its memory images by absolute path (``$readmemh`` of the project's MVAU wrappers, FINN's
memstream ``INIT_FILE``). A copied or moved build would silently run the original's files.

So every directory a build was written in is recorded (:data:`~flows.names.BUILD_LOCATIONS`,
by the steps that write absolute paths, :func:`record_location`), and every model loaded from
inside a build (:func:`relocate_model`, called by ``flows.finn_env.load_model``) is checked
against where the build is now:

* a path into the build as it is now is kept; a path into a recorded earlier location is
  rewritten to the same file here (in memory; the model files stay as written);
* the generated sources (:func:`relocate_sources`) are rewritten on disk, once per move, and
  their absolute paths checked the same way (FINN's own installed sources are allowed);
* any other path is refused with a :class:`BuildPathError` that names it: a build never reads
  a file outside itself.

A build written before the record existed is relocated from the location its flow config and
its partition model name. :func:`check_partition_files` checks that the three files of the
dataflow partition (the step's saved model, FINN's partition model and the HW-layer graph) are
still one model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from onnx import AttributeProto, ModelProto, load, numpy_helper

from bnn_brevitas.errors import UserError

from .names import (
    BUILD_LOCATIONS,
    DATAFLOW_PARENT,
    DATAFLOW_PARTITION,
    FINN_TMP,
    FLOW_CONFIG,
    INTERMEDIATE_DIR,
    PARTITION_DIR,
    PARTITION_MODEL,
)

if TYPE_CHECKING:
    from qonnx.core.modelwrapper import ModelWrapper

#: node attributes that hold a path (FINN's); any other string attribute holding an absolute
#: path is treated as one too
PATH_ATTRS = frozenset({"model", "code_gen_dir_ipgen", "code_gen_dir_cppsim", "ipgen_path",
                        "ip_path", "executable_path", "rtlsim_so"})
#: generated files that may name other files (rewritten on a move); HDL ones are also checked
SOURCE_SUFFIXES = frozenset({".v", ".sv", ".vh", ".svh", ".tcl", ".sh", ".xdc", ".cpp", ".h",
                             ".hpp"})
HDL_SUFFIXES = frozenset({".v", ".sv", ".vh", ".svh"})
_QUOTED_ABS = re.compile(r'"(/[^"\n]*)"')
#: the step whose saved model is the dataflow partition (``intermediate/NN_<step>.onnx``)
PARTITION_STEP = "create_dataflow_partition"
#: build roots whose generated sources were checked by this process
_SOURCES_OK: set[str] = set()


class BuildPathError(UserError):
    """A path inside a build points outside it (or cannot be placed in it)."""


class InconsistentBuildError(UserError):
    """Files of a build that must hold the same model disagree; the message names them."""


# -- where a build is, and where it was -----------------------------------------------------

def build_root(path: str | Path) -> Path | None:
    """The build directory holding the file ``path`` (it or a parent up to two levels holds
    ``flow_config.yaml``), absolute; None for a file outside any build."""
    p = Path(path).absolute()
    for d in list(p.parents)[:3]:
        if (d / FLOW_CONFIG).is_file():
            return d
    return None


def _forms(root: Path) -> list[str]:
    """The absolute spellings of a directory: as given and with symlinks resolved."""
    return list(dict.fromkeys([str(root.absolute()), str(root.resolve())]))


def _read_record(root: Path) -> dict:
    f = root / BUILD_LOCATIONS
    return json.loads(f.read_text()) if f.is_file() else {}


def _write_record(root: Path, record: dict) -> None:
    tmp = root / f".{BUILD_LOCATIONS}.{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, root / BUILD_LOCATIONS)


def record_location(out_dir: str | Path) -> None:
    """Record ``out_dir`` as a location of the build (called by the steps that write absolute
    paths into it); its generated sources are taken to name files there."""
    root = Path(out_dir).absolute()
    record = _read_record(root)
    record["locations"] = list(dict.fromkeys(record.get("locations", []) + _forms(root)))
    record["sources_at"] = str(root)
    _write_record(root, record)


def _legacy_locations(root: Path) -> list[str]:
    """Where a build without a record was written: its flow config's ``output_dir`` (when
    absolute), the directory its partition model was saved in and the one holding the
    code-generation directories of its ``hw_codegen`` model."""
    found = []
    cfg = yaml.safe_load((root / FLOW_CONFIG).read_text()) or {}
    if cfg.get("output_dir") and os.path.isabs(str(cfg["output_dir"])):
        found.append(str(cfg["output_dir"]))
    models = [root / DATAFLOW_PARENT, *sorted((root / INTERMEDIATE_DIR).glob("*_hw_codegen.onnx"))]
    for f in (m for m in models if m.is_file()):
        for _, a, value in _path_attributes(load(str(f), load_external_data=False)):
            p = Path(value)
            if a.name == "model" and p.is_absolute() and p.parent.name == PARTITION_DIR:
                found.append(str(p.parent.parent))
            elif a.name == "code_gen_dir_ipgen" and p.is_absolute() and \
                    p.parent.name == FINN_TMP:
                found.append(str(p.parent.parent))
                break
    return list(dict.fromkeys(found))


def locations(root: Path) -> list[str]:
    """Every recorded location of the build at ``root`` (legacy builds: inferred)."""
    record = _read_record(root)
    return record.get("locations") or _legacy_locations(root)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class _Mapper:
    """Paths named inside the build at ``root``, expressed where the build is now."""

    def __init__(self, root: Path):
        self.root = root.absolute()
        self.here = _forms(root)
        # longest first: a location that extends another one wins
        self.old = sorted((p for p in locations(root) if p not in self.here), key=len,
                          reverse=True)

    def map(self, path: str) -> str | None:
        """``path`` here (unchanged when it already is), or None when outside the build."""
        if any(_under(path, h) for h in self.here):
            return path
        for o in self.old:
            if _under(path, o):
                return str(self.root) + path[len(o.rstrip("/")):]
        return None

    def relative(self, path: str) -> str | None:
        """A relative path attribute, placed in the build (None: it names nothing here)."""
        if (self.root / path).exists():
            return str(self.root / path)
        parts = Path(path).parts
        for anchor in (FINN_TMP, PARTITION_DIR, INTERMEDIATE_DIR):
            if anchor in parts:
                return str(self.root.joinpath(*parts[parts.index(anchor):]))
        return None


# -- relocating what is loaded --------------------------------------------------------------

def _path_attributes(proto: ModelProto):
    """(node, attribute, value) of every string attribute that holds a path."""
    for node in proto.graph.node:
        for a in node.attribute:
            if a.type != AttributeProto.STRING:
                continue
            value = a.s.decode(errors="replace")
            if value and (a.name in PATH_ATTRS or os.path.isabs(value)):
                yield node, a, value


def relocate_model(model: ModelWrapper, path: str | Path) -> ModelWrapper:
    """Check and rewrite the paths of ``model`` (a ``ModelWrapper`` loaded from ``path``)
    against the build that holds ``path`` (see the module docstring); returns ``model``.
    A model outside any build is returned as it is."""
    root = build_root(path)
    if root is None:
        return model
    mapper, has_paths = _Mapper(root), False
    for node, a, value in _path_attributes(model.model):
        new = mapper.map(value) if os.path.isabs(value) else mapper.relative(value)
        if new is None:
            raise BuildPathError(
                f"{path}: node {node.name} ({node.op_type}) attribute {a.name} = {value!r} "
                f"points outside the build {root} (recorded locations: "
                f"{', '.join(mapper.old) or 'none'}); a build may only name its own files: "
                "rebuild it, or copy the whole build directory")
        a.s = new.encode()
        has_paths = True
    for prop in model.model.metadata_props:  # provenance may name outside files: kept
        if os.path.isabs(prop.value) and (new := mapper.map(prop.value)) is not None:
            prop.value = new
    if has_paths:
        relocate_sources(root)
    return model


def _installed(path: str) -> bool:
    """Whether ``path`` is in the Python installation (FINN's own HDL sources)."""
    return any(_under(os.path.abspath(path), p) for p in {sys.prefix, sys.base_prefix})


def _rewrite_text(text: str, old: list[str], new: str) -> str:
    for o in old:
        text = re.sub(re.escape(o.rstrip("/")) + r"(?=[/\"'\s]|$)", lambda _: new, text)
    return text


def relocate_sources(root: Path) -> int:
    """Rewrite the generated sources of the build at ``root`` (under ``finn_tmp``, not FINN's
    rtllib copy) from its earlier locations to ``root``, and check that every absolute path
    the HDL names is in the build or in the Python installation; returns the number of files
    rewritten. Done once per move (the record says where the sources point)."""
    root = root.absolute()
    here, record = _forms(root), _read_record(root)
    moved = record.get("sources_at") not in here
    if not moved and str(root) in _SOURCES_OK:
        return 0
    mapper, rewritten = _Mapper(root), 0
    for f in sorted((root / FINN_TMP).glob("code_gen_*/**/*")):
        if f.suffix not in SOURCE_SUFFIXES or not f.is_file():
            continue
        text = f.read_text(errors="surrogateescape")
        new = _rewrite_text(text, mapper.old, str(root)) if moved else text
        if new != text:
            _replace_text(f, new)
            rewritten += 1
        if f.suffix in HDL_SUFFIXES:
            for p in _QUOTED_ABS.findall(new):
                if not any(_under(p, h) for h in here) and not _installed(p):
                    raise BuildPathError(f"{f}: names {p!r}, outside the build {root}; a "
                                         "build may only name its own files: rebuild it")
    if moved:
        record["locations"] = list(dict.fromkeys(locations(root) + here))
        record["sources_at"] = str(root)
        try:
            _write_record(root, record)
        except OSError as e:
            raise BuildPathError(f"{root} was moved: its record {BUILD_LOCATIONS} cannot be "
                                 f"updated ({e}); make the build writable") from None
    _SOURCES_OK.add(str(root))
    return rewritten


def _replace_text(f: Path, text: str) -> None:
    """Write ``text`` to ``f`` atomically; a read-only build is a clear error."""
    tmp = f.with_name(f".{f.name}.{os.getpid()}")
    try:
        tmp.write_text(text, errors="surrogateescape")
        os.replace(tmp, f)
    except OSError as e:
        raise BuildPathError(f"{f} names files where the build was, and cannot be rewritten "
                             f"for where it is now ({e}); make the build writable") from None


# -- the partition's three files --------------------------------------------------------------

def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def graph_signature(proto: ModelProto) -> dict[str, str]:
    """What makes the graph the model it is, item by item (``"node 3 MVAU_0 (MVAU)"`` → its
    domain, connections and attributes): path attributes, names of nothing and metadata are
    left out, so two saves of one model compare equal wherever they were written."""
    g, sig = proto.graph, {}
    for kind, values in (("input", g.input), ("output", g.output)):
        for i, v in enumerate(values):
            sig[f"{kind} {i}"] = f"{v.name} {v.type.SerializeToString().hex()}"
    for i, node in enumerate(g.node):
        attrs = sorted((a.name, _digest(a.SerializeToString())) for a in node.attribute
                       if not (a.type == AttributeProto.STRING and (
                           a.name in PATH_ATTRS or os.path.isabs(a.s.decode(errors="replace")))))
        sig[f"node {i} {node.name} ({node.op_type})"] = repr(
            (node.domain, list(node.input), list(node.output), attrs))
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        sig[f"initializer {init.name}"] = f"{arr.dtype} {arr.shape} {_digest(arr.tobytes())}"
    for ann in g.quantization_annotation:
        sig[f"datatype of {ann.tensor_name}"] = repr(sorted(
            (p.key, p.value) for p in ann.quant_parameter_tensor_names))
    for vi in g.value_info:
        sig[f"shape of {vi.name}"] = vi.type.SerializeToString().hex()
    return sig


def _first_difference(a: dict[str, str], b: dict[str, str]) -> str:
    for key in list(a) + [k for k in b if k not in a]:
        if a.get(key) != b.get(key):
            where = "only in the first" if key not in b else "only in the second" \
                if key not in a else "differs"
            return f"{key} {where}"
    return "the same"


def partition_files(build: Path) -> list[Path]:
    """The files that hold the dataflow partition: the step's saved model, FINN's partition
    model and the HW-layer graph (``flows.names.DATAFLOW_PARTITION``)."""
    saved = sorted((build / INTERMEDIATE_DIR).glob(f"[0-9][0-9]_{PARTITION_STEP}.onnx"))
    return [*saved[:1], build / PARTITION_DIR / PARTITION_MODEL, build / DATAFLOW_PARTITION]


def check_partition_files(build: Path) -> None:
    """Raise :class:`InconsistentBuildError` naming the files when the partition's files (see
    :func:`partition_files`) are not one model (graphs compared without paths and metadata),
    or when the step's model exists and one of the others is missing."""
    files = [f for f in partition_files(Path(build)) if f.is_file()]
    expected = partition_files(Path(build))
    if not files:
        return
    if files[0].parent.name == INTERMEDIATE_DIR and len(files) < len(expected):
        missing = [str(f) for f in expected if not f.is_file()]
        raise InconsistentBuildError(f"{build}: {files[0].name} exists but {', '.join(missing)} "
                                     "does not: the partition step writes all of them; rebuild")
    sigs = [graph_signature(load(str(f))) for f in files]
    for f, sig in zip(files[1:], sigs[1:]):
        if sig != sigs[0]:
            raise InconsistentBuildError(
                f"the dataflow partition files of {build} disagree: {files[0]} and {f} are not "
                f"the same model ({_first_difference(sigs[0], sig)}); rebuild from "
                f"{PARTITION_STEP}")
