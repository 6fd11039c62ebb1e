# SPDX-License-Identifier: BSD-3-Clause
"""Small helpers shared by the command-line entry points."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from collections.abc import Callable
from typing import Any

import yaml

from .errors import ConfigError, ToolkitError, exit_code


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["hw=true", "widths=[8,16]"]`` → ``{"hw": True, "widths": [8, 16]}`` (YAML values)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like FIELD=VALUE")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot parse the value of override {item!r}: {e}") from None
    return out


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr through rich when the CLI runs; library code only uses ``logging``."""
    import sys

    level = logging.DEBUG if verbose else logging.INFO
    if sys.stderr.isatty():  # rich on a terminal; plain one-line records in logs and pipes
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_path=False)
        fmt = "%(message)s"
    else:
        handler, fmt = logging.StreamHandler(), "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)
    for noisy in ("matplotlib", "PIL", "onnxscript", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # finn-plus logs every datatype adjustment as a warning; keep them for --verbose
    logging.getLogger("finn_logger").setLevel(logging.DEBUG if verbose else logging.ERROR)


def module_logger(spec: Any, name: str) -> logging.Logger:
    """The logger of a module by its import name, also while it runs as ``python -m`` (where
    ``__name__`` is ``"__main__"``). Use as ``log = module_logger(__spec__, __name__)``."""
    return logging.getLogger(spec.name if spec is not None else name)


def exception_summary(e: BaseException) -> str:
    """``Type: first line of the message`` — an unexpected exception as one line."""
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def log_error(log: logging.Logger, e: BaseException, verbose: bool) -> None:
    """A CLI's report of a ``ToolkitError``: one line; with ``-v`` its cause's traceback."""
    log.error("%s", e)
    if verbose and e.__cause__ is not None:
        log.error("traceback:", exc_info=e.__cause__)


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_cli(log: logging.Logger, verbose: bool, body: Callable[[], int | None]) -> int:
    """Run a CLI's body under the exit-code contract (``bnn_brevitas.errors``).

    A ``ToolkitError`` becomes one logged line and its code; any other exception is a bug
    and becomes one line naming it (``internal error: Type: message``) and exit 1. With
    ``verbose`` the traceback follows. ``KeyboardInterrupt`` exits 130 as shells expect.
    """
    try:
        return body() or 0
    except ToolkitError as e:
        log_error(log, e, verbose)
        return exit_code(e)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 (the contract: one line, traceback with -v)
        log.error("internal error: %s%s", exception_summary(e),
                  "" if verbose else " (run with -v for the traceback)")
        if verbose:
            log.error("traceback:", exc_info=e)
        return exit_code(e)
