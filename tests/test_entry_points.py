# SPDX-License-Identifier: BSD-3-Clause
"""Every CLI is a library function plus ``main(argv=None)``, listed in ``[project.scripts]``,
and runs as ``python -m <module>``; ``python flows/verify.py`` keeps working by path."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
#: modules run as ``python -m`` (``hw.driver`` through its ``__main__``)
MODULES = sorted({t.split(":")[0] for t in SCRIPTS.values()} - {"hw.driver.cli"} | {"hw.driver"})


def test_every_module_with_a_main_has_a_script():
    found = set()
    for pkg in ("bnn_brevitas", "flows", "hw"):
        for f in (ROOT / pkg).rglob("*.py"):
            if "\ndef main(argv" in f.read_text():
                parts = f.relative_to(ROOT).with_suffix("").parts
                found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    listed = {t.split(":")[0] for t in SCRIPTS.values()}
    # bnn_brevitas.train re-exports its cli's main
    assert found - {"bnn_brevitas.train.cli"} == listed - {"bnn_brevitas.train"}


@pytest.mark.parametrize("target", sorted(SCRIPTS.values()))
def test_scripts_point_at_a_main_taking_argv(target):
    mod, func = target.split(":")
    main = getattr(importlib.import_module(mod), func)
    assert list(inspect.signature(main).parameters) == ["argv"]


@pytest.mark.parametrize("module", MODULES)
def test_runs_as_module(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage:" in r.stdout


def test_verify_runs_by_path_from_another_directory(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "flows" / "verify.py"), "--build",
                        str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2  # a clean usage error, not a traceback
    assert "is not a build directory (no flow_config.yaml)" in r.stderr
    assert "ERROR flows.verify:" in r.stderr and "Traceback" not in r.stderr
