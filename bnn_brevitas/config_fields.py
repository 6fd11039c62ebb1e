# SPDX-License-Identifier: BSD-3-Clause
"""One way to declare and validate config fields, shared by ``TrainConfig`` and ``FlowConfig``.

A field is declared with :func:`option`: its default, its help text and, where the value is a
choice, the valid choices, all in the dataclass field's metadata. :func:`check_fields` then
checks every field of a config instance against its type hint and its choices, and raises a
``ConfigError`` that names the field and the valid values. Choices may be a tuple or a callable
returning one (for choices that come from a registry, resolved when checked).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError

Choices = tuple[str, ...] | Callable[[], typing.Iterable[str]] | None


def option(default: Any, help: str, choices: Choices = None, **kw: Any) -> Any:
    """A dataclass field with its help text and valid choices in its metadata."""
    meta = {"help": help, "choices": choices}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta,
                                 **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


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


def check_fields(cfg: Any) -> None:
    """Check the type and the choices of every field of the dataclass instance ``cfg``."""
    for f in dataclasses.fields(cfg):
        if not f.init:
            continue
        value = getattr(cfg, f.name)
        check_value(type(cfg), f.name, value)
        valid = choices_of(f)
        if valid and value is not None and value not in valid:
            # choices from a registry (a callable) read as the registry's own error
            what = f"unknown {f.name}" if callable(f.metadata["choices"]) else "invalid value"
            raise ConfigError(f"{f.name}: {what} {value!r}; valid: {', '.join(valid)}")
