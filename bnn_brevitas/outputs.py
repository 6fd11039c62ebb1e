# SPDX-License-Identifier: BSD-3-Clause
"""Outputs that are safe by construction: a command never destroys what it did not write.

Every output directory the toolkit creates carries an ownership marker, :data:`MARKER`
(``.bnn-toolkit-output.json``: the tool that wrote it and when). The rules every command that
writes a directory (:func:`atomic_output_dir`) or a file (:func:`atomic_write_file`) follows:

* a target of the wrong kind is refused (a file where a directory is wanted, a directory where
  a file is wanted, a parent that is a file): :class:`OutputError`, exit 2, nothing touched;
* an existing non-empty directory is replaced only when it is the output of the same tool and
  the command replaces its outputs (``replace``: ``--force`` of ``hw.package``; always for a
  fresh build). One without the marker, or another tool's, is refused, even with ``--force``;
* a target that is, or holds, one of the command's sources is refused;
* the new output is written aside (a hidden sibling) and swapped in only when complete; a
  failure removes only what the run created and leaves the old output byte-identical.

Outputs written before the marker existed have none. A directory holding every file of the
tool's ``legacy`` tuple (a build's ``flow_config.yaml``; a bundle's ``MANIFEST.json`` and
``accel_meta.json``) counts as that tool's output, so existing users are not locked out; it
gets the marker the next time the tool writes it.

The callers validate their sources (files exist and parse, names are known) *before* entering
:func:`atomic_output_dir`; this module validates the target.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError
from .utils import module_logger

log = module_logger(__spec__, __name__)

#: the ownership marker written into every output directory the toolkit creates
MARKER = ".bnn-toolkit-output.json"


class OutputError(UserError):
    """An output path that cannot be written safely; nothing was touched (exit 2)."""


# -- ownership --------------------------------------------------------------------------------

def owner(directory: str | Path, tool: str = "", legacy: Sequence[str] = ()) -> str | None:
    """The tool whose output ``directory`` is: the marker's, else ``tool`` when the directory
    holds every file of ``legacy`` (an output from before the marker), else None. An
    unreadable marker counts as none (such a directory is refused, never replaced)."""
    d = Path(directory)
    marker = d / MARKER
    if marker.is_file():
        try:
            found = json.loads(marker.read_text()).get("tool")
        except (OSError, ValueError, AttributeError):
            found = None
        return str(found) if found else None
    if legacy and all((d / f).exists() for f in legacy):
        return tool
    return None


def write_marker(directory: str | Path, tool: str) -> None:
    """Mark ``directory`` as the output of ``tool``."""
    data = {"tool": tool, "created": datetime.datetime.now().isoformat(timespec="seconds")}
    atomic_write_file(Path(directory) / MARKER, json.dumps(data, indent=1) + "\n")


def _is_empty_dir(d: Path) -> bool:
    return d.is_dir() and not any(d.iterdir())


def _check_parent(path: Path, what: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a "
                                  "directory")
            return


def check_output_dir(target: str | Path, tool: str, *, replace: bool = False,
                     legacy: Sequence[str] = (), sources: Iterable[str | Path] = ()) -> Path:
    """Whether ``tool`` may write the directory ``target`` (see the module docstring); returns
    it resolved, raises :class:`OutputError` saying why not. Touches nothing."""
    what = "output directory"
    t = Path(target).resolve()
    if t.exists() and not t.is_dir():
        raise OutputError(f"{what} {str(target)!r} is a file, not a directory; name a new or "
                          "empty directory")
    _check_parent(t, what)
    for s in sources:
        s = Path(s).resolve()
        if s == t or t in s.parents:
            raise OutputError(f"{what} {str(target)!r} holds the source {str(s)!r}; writing it "
                              "would destroy the source: name another output directory")
    if t.is_dir() and not _is_empty_dir(t):
        who = owner(t, tool, legacy)
        if who is None:
            raise OutputError(f"{what} {str(target)!r} is not empty and is not an output of "
                              f"this toolkit (no {MARKER}); it is never replaced, even with "
                              "--force: name a new or empty directory")
        if who != tool:
            raise OutputError(f"{what} {str(target)!r} holds the output of {who}; {tool} never "
                              "replaces it: name another directory")
        if not replace:
            raise OutputError(f"{what} {str(target)!r} exists; pass --force to replace it")
    return t


def adopt_output_dir(target: str | Path, tool: str, legacy: Sequence[str] = ()) -> Path:
    """An existing output of ``tool`` that a command continues in place (a resumed build):
    refused unless it is one; one from before the marker gets it. Returns it resolved."""
    t = Path(target).resolve()
    if not t.is_dir():
        kind = "does not exist" if not t.exists() else "is a file, not a directory"
        raise OutputError(f"output directory {str(target)!r} {kind}; {tool} can only continue "
                          "an existing output of its own")
    who = owner(t, tool, legacy)
    if who != tool:
        why = f"no {MARKER}" if who is None else f"it holds the output of {who}"
        raise OutputError(f"output directory {str(target)!r} is not an output of {tool} "
                          f"({why}); it is not continued")
    if not (t / MARKER).is_file():
        write_marker(t, tool)
    return t


# -- writing a directory ----------------------------------------------------------------------

def _default_mode(path: Path, directory: bool) -> None:
    """Give a ``tempfile``-made path (0700/0600) the permissions a plain mkdir/open would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


def _aside(t: Path, kind: str) -> Path:
    """Rename ``t`` to a hidden sibling ``.<name>.<kind>-<pid>-<random>``; return it."""
    aside = t.with_name(f".{t.name}.{kind}-{os.getpid()}-{secrets.token_hex(3)}")
    os.replace(t, aside)
    return aside


def _discard(old: Path, tool: str, legacy: Sequence[str]) -> None:
    """Delete the replaced output ``old`` only when it is ``tool``'s (or empty); else keep it."""
    if owner(old, tool, legacy) == tool or _is_empty_dir(old):
        shutil.rmtree(old)
    else:  # it changed since it was checked: never delete what the tool did not write
        log.warning("the replaced directory is not an output of %s any more; kept as %s",
                    tool, old)


def _warn_stale(t: Path) -> None:
    for old in sorted(t.parent.glob(f".{t.name}.old-*")):
        log.warning("an interrupted earlier run left the previous output of %s in %s", t, old)


@contextmanager
def atomic_output_dir(target: str | Path, tool: str, *, replace: bool = False,
                      legacy: Sequence[str] = (), sources: Iterable[str | Path] = (),
                      in_place: bool = False) -> Iterator[Path]:
    """Write the directory ``target`` as ``tool``'s output, all or nothing; yields the
    directory to write in (marked already). ``target`` is checked first
    (:func:`check_output_dir`: ``replace``, ``legacy``, ``sources``).

    By default the output is written in a hidden temporary sibling, swapped in on success (the
    old output renamed away, the new one renamed in, the old one deleted) and removed on
    failure. ``in_place`` (for outputs that record their own absolute paths, like FINN builds)
    yields ``target`` itself: the old output is renamed aside first, and renamed back when the
    body fails (after a hard kill it stays in ``.<name>.old-*``, and the next run says so).
    Either way a failure leaves the old output byte-identical and no new directory."""
    t = check_output_dir(target, tool, replace=replace, legacy=legacy, sources=sources)
    _warn_stale(t)
    t.parent.mkdir(parents=True, exist_ok=True)
    old = _aside(t, "old") if in_place and t.exists() else None
    if in_place:
        work = t
        work.mkdir()
    else:
        work = Path(tempfile.mkdtemp(dir=t.parent, prefix=f".{t.name}.tmp-"))
        _default_mode(work, directory=True)
    try:
        write_marker(work, tool)
        yield work
        if not in_place:
            old = _aside(t, "old") if t.exists() else None
            try:
                os.replace(work, t)
            except BaseException:
                if old is not None:
                    os.replace(old, t)
                    old = None
                raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if old is not None:
            os.replace(old, t)
        raise
    if old is not None:
        _discard(old, tool, legacy)


# -- writing a file ---------------------------------------------------------------------------

def check_output_file(path: str | Path) -> Path:
    """Whether ``path`` can be written as a file (not a directory, no parent that is a file);
    returns it (a symbolic link: the file it names), raises :class:`OutputError`."""
    p = Path(path)
    if p.is_symlink():
        p = p.resolve()
    if p.is_dir():
        raise OutputError(f"output file {str(path)!r} is a directory; name a file")
    if p.exists() and not p.is_file():
        raise OutputError(f"output file {str(path)!r} is not a regular file")
    _check_parent(p, "output file")
    return p


def atomic_write_file(path: str | Path, content: bytes | str | Callable[[Path], object]
                      ) -> Path:
    """Write ``path`` all or nothing: ``content`` (bytes, text, or a callback that writes the
    file it is given) goes to a hidden temporary sibling folder, then ``os.replace`` puts the
    file in place. On failure ``path`` is unchanged and nothing is left behind. A callback may
    write other files next to its file (an exporter's external data): they are discarded."""
    p = check_output_file(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".{p.name}.tmp-"))
    try:
        tmp = tmpdir / p.name
        if callable(content):
            content(tmp)
            if not tmp.is_file():
                raise OutputError(f"nothing was written for {str(path)!r}")
        else:
            tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, p)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return p
