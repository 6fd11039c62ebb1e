# SPDX-License-Identifier: BSD-3-Clause
"""bnn_brevitas/outputs.py: output directories and files are replaced only when they are the
tool's own, all or nothing; a refusal or a failure leaves every byte as it was."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from bnn_brevitas.outputs import (
    MARKER,
    OutputError,
    adopt_output_dir,
    atomic_output_dir,
    atomic_write_file,
    check_output_dir,
    owner,
    write_marker,
)

TOOL = "tests.tool"


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (hidden ones too) → sha256 of a file, ``dir`` for a folder."""
    return {p.relative_to(root).as_posix(): "dir" if p.is_dir() and not p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))}


def output(path: Path, tool: str | None = TOOL, files: dict[str, str] | None = None) -> Path:
    """A directory with some files, marked as ``tool``'s output (None: unmarked)."""
    for rel, text in (files or {"a.txt": "old a", "sub/b.txt": "old b"}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    if tool is not None:
        write_marker(path, tool)
    return path


@pytest.mark.parametrize("in_place", [False, True])
def test_a_new_output_is_marked_and_complete(tmp_path, in_place):
    with atomic_output_dir(tmp_path / "new", TOOL, in_place=in_place) as d:
        assert (d == tmp_path / "new") is in_place
        (d / "x.txt").write_text("x")
    assert owner(tmp_path / "new") == TOOL
    assert json.loads((tmp_path / "new" / MARKER).read_text())["created"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.parametrize("in_place", [False, True])
def test_success_replaces_the_old_output_entirely(tmp_path, in_place):
    out = output(tmp_path / "out")
    with atomic_output_dir(out, TOOL, replace=True, in_place=in_place) as d:
        (d / "new.txt").write_text("new")
    assert sorted(tree(out)) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("existing", [True, False])
def test_a_failure_leaves_the_old_output_byte_identical(tmp_path, in_place, existing):
    if existing:
        output(tmp_path / "out")
    before = tree(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output_dir(tmp_path / "out", TOOL, replace=True, in_place=in_place) as d:
            (d / "a.txt").write_text("half-written")
            raise RuntimeError("boom")
    assert tree(tmp_path) == before  # nothing new, nothing left behind


def test_a_failed_swap_puts_the_old_output_back(tmp_path, monkeypatch):
    out = output(tmp_path / "out")
    before = tree(tmp_path)
    real = os.replace

    def failing(src, dst):
        if Path(src).name.startswith(".out.tmp-"):
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        with atomic_output_dir(out, TOOL, replace=True) as d:
            (d / "new.txt").write_text("new")
    assert tree(tmp_path) == before


REFUSALS = [
    ("foreign", "is not empty and is not an output of this toolkit"),
    ("other_tool", "holds the output of hw.package; tests.tool never replaces it"),
    ("bad_marker", "is not empty and is not an output of this toolkit"),
    ("file", "is a file, not a directory"),
    ("parent_file", "is a file, not a directory"),
    ("source", "holds the source"),
]


@pytest.mark.parametrize("case, message, replace", [
    *((c, m, r) for c, m in REFUSALS for r in (True, False)),
    ("no_force", "exists; pass --force to replace it", False),
])
def test_refusals_touch_nothing(tmp_path, case, message, replace):
    target = tmp_path / "out"
    if case == "foreign":
        output(target, tool=None)
    elif case == "other_tool":
        output(target, tool="hw.package")
    elif case == "bad_marker":
        output(target, tool=None, files={"a.txt": "mine", MARKER: "not json"})
    elif case in ("file", "parent_file"):
        target.write_bytes(b"precious")
        target = target / "x" if case == "parent_file" else target
    elif case in ("source", "no_force"):
        output(target)
    sources = [tmp_path / "out" / "a.txt"] if case == "source" else []
    before = tree(tmp_path)
    with pytest.raises(OutputError, match=message):
        with atomic_output_dir(target, TOOL, replace=replace, sources=sources):
            pytest.fail("the body must not run")
    assert tree(tmp_path) == before


def test_an_empty_directory_and_a_legacy_output_are_replaced(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_output_dir(tmp_path / "empty", TOOL) as d:
        (d / "x").write_text("x")
    assert sorted(tree(tmp_path / "empty")) == [MARKER, "x"]
    legacy = output(tmp_path / "legacy", tool=None, files={"config.yaml": "", "old": ""})
    assert owner(legacy, TOOL, ("config.yaml",)) == TOOL
    assert owner(legacy, TOOL, ("config.yaml", "other")) is None
    with atomic_output_dir(legacy, TOOL, replace=True, legacy=("config.yaml",)) as d:
        (d / "config.yaml").write_text("new")
    assert sorted(tree(legacy)) == [MARKER, "config.yaml"]


def test_check_output_dir_resolves_and_allows_a_missing_parent(tmp_path):
    assert check_output_dir(tmp_path / "a" / "b", TOOL) == (tmp_path / "a" / "b").resolve()
    assert not (tmp_path / "a").exists()


def test_adopt_marks_a_legacy_output_and_refuses_others(tmp_path):
    legacy = output(tmp_path / "legacy", tool=None, files={"config.yaml": ""})
    adopt_output_dir(legacy, TOOL, ("config.yaml",))
    assert owner(legacy) == TOOL
    foreign = output(tmp_path / "foreign", tool=None)
    (tmp_path / "file").write_text("f")
    for target, message in ((foreign, f"no {MARKER}"), (tmp_path / "file", "is a file"),
                            (tmp_path / "nothing", "does not exist")):
        before = tree(tmp_path)
        with pytest.raises(OutputError, match=message):
            adopt_output_dir(target, TOOL, ("config.yaml",))
        assert tree(tmp_path) == before


@pytest.mark.parametrize("content", [b"\x00bytes", "text"])
def test_atomic_write_file_writes_bytes_and_text(tmp_path, content):
    path = atomic_write_file(tmp_path / "deep" / "f.json", content)
    assert path.read_bytes() == (content if isinstance(content, bytes) else content.encode())
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.json"]


def test_atomic_write_file_callback_keeps_only_its_file(tmp_path):
    def write(p: Path) -> None:
        p.write_text("model")
        (p.parent / "weights.data").write_text("external data")

    atomic_write_file(tmp_path / "m.onnx", write)
    assert tree(tmp_path) == {"m.onnx": hashlib.sha256(b"model").hexdigest()}


def test_atomic_write_file_failures_leave_the_old_file(tmp_path):
    (tmp_path / "f").write_bytes(b"old")
    (tmp_path / "d").mkdir()
    before = tree(tmp_path)

    def broken(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write_file(tmp_path / "f", broken)
    with pytest.raises(OutputError, match="nothing was written"):
        atomic_write_file(tmp_path / "f", lambda p: None)
    with pytest.raises(OutputError, match="is a directory; name a file"):
        atomic_write_file(tmp_path / "d", b"x")
    with pytest.raises(OutputError, match="'.*/f' is a file, not a directory"):
        atomic_write_file(tmp_path / "f" / "g", b"x")
    assert tree(tmp_path) == before
