# SPDX-License-Identifier: BSD-3-Clause
"""One way to declare and validate config fields, shared by ``TrainConfig`` and ``FlowConfig``.

A field is declared with :func:`option`: its default, its help text, where the value is a
choice the valid choices, and where it is a number its valid :class:`Range`, all in the
dataclass field's metadata (a config class may add keys of its own, e.g. ``TrainConfig``'s
``resume_safe``). :func:`check_fields` then checks every field of a config instance against its
type hint, its range and its choices, and raises a ``ConfigError`` that names the field and the
valid values. A float field never accepts NaN or ±inf. Choices may be a tuple or a callable
returning one (for choices that come from a registry, resolved when checked).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

Choices = tuple[str, ...] | Callable[[], typing.Iterable[str]] | None


@dataclass(frozen=True)
class Range:
    """The valid interval of a numeric field; an end is None (unbounded) or closed/open."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""  # why, or what an end value means: "0 disables clipping"

    def __contains__(self, value: float) -> bool:
        lo_ok = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        hi_ok = self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)
        return lo_ok and hi_ok

    def describe(self) -> str:
        """``must be > 0``, ``must be ≥ 1``, ``must be in (0, 1]`` (+ the note in parentheses)."""
        def num(v: float | None) -> str:
            return "" if v is None else str(v) if isinstance(v, int) else f"{v:g}"

        lo, hi = num(self.lo), num(self.hi)
        if self.hi is None:
            text = f"must be {'>' if self.lo_open else '≥'} {lo}"
        elif self.lo is None:
            text = f"must be {'<' if self.hi_open else '≤'} {hi}"
        else:
            text = (f"must be in {'(' if self.lo_open else '['}{lo}, "
                    f"{hi}{')' if self.hi_open else ']'}")
        return f"{text} ({self.note})" if self.note else text


def option(default: Any, help: str, choices: Choices = None, bounds: Range | None = None,
           **meta: Any) -> Any:
    """A dataclass field with its help text, valid choices and valid range in its metadata
    (plus any further ``meta`` keys the config class defines)."""
    meta = {"help": help, "choices": choices, "bounds": bounds, **meta}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def choices_of(f: dataclasses.Field) -> tuple[str, ...] | None:
    """The valid values of a field, or None when any value of its type is valid."""
    c = f.metadata.get("choices")
    return tuple(c()) if callable(c) else c


def field_type(cls: type, name: str) -> tuple[type, bool]:
    """(base type, optional) of a field: ``int | None`` → ``(int, True)``."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (base,) = [a for a in args if a is not type(None)]
        return base, True
    return typing.get_origin(hint) or hint, False


_KINDS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
    dict: (lambda v: isinstance(v, dict), "a mapping"),
    list: (lambda v: isinstance(v, list), "a list"),
    Path: (lambda v: isinstance(v, (str, Path)), "a path"),
}


def check_value(cls: type, name: str, value: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` has the type of field ``name`` of ``cls``."""
    base, optional = field_type(cls, name)
    if value is None:
        if optional:
            return
        raise ConfigError(f"{name}: a value is required")
    ok, kind = _KINDS[base]
    if not ok(value):
        raise ConfigError(f"{name}: expected {kind}, got {value!r}")
    if base is float and not math.isfinite(value):
        raise ConfigError(f"{name}: must be a finite number, got {value!r}")


def check_fields(cfg: Any) -> None:
    """Check the type and the choices of every field of the dataclass instance ``cfg``."""
    for f in dataclasses.fields(cfg):
        if not f.init:
            continue
        value = getattr(cfg, f.name)
        check_value(type(cfg), f.name, value)
        bounds = f.metadata.get("bounds")
        if bounds is not None and value is not None and value not in bounds:
            raise ConfigError(f"{f.name}: {bounds.describe()}, got {value!r}")
        valid = choices_of(f)
        if valid and value is not None and value not in valid:
            # choices from a registry (a callable) read as the registry's own error
            what = f"unknown {f.name}" if callable(f.metadata["choices"]) else "invalid value"
            raise ConfigError(f"{f.name}: {what} {value!r}; valid: {', '.join(valid)}")
