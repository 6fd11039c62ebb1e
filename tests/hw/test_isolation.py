# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver must run on the board with numpy + pynq only: enforced by an import scan."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "hw" / "driver"
STDLIB = set(sys.stdlib_module_names)
# modules allowed at module level; everything else only inside functions (lazy)
TOP_LEVEL_OK = STDLIB | {"numpy"}
FORBIDDEN = {"bnn_brevitas", "flows", "torch", "brevitas"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module, imported at module level?) for every import in ``path``."""
    tree, out = ast.parse(path.read_text()), []
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.append((node.module or "", id(node) in top))
    return out


def test_driver_imports_nothing_from_the_toolkit_and_keeps_heavy_imports_lazy():
    files = sorted(DRIVER.rglob("*.py"))
    assert len(files) >= 15
    for path in files:
        for mod, top in _imports(path):
            root = mod.split(".")[0]
            assert root not in FORBIDDEN, f"{path.relative_to(ROOT)} imports {mod}"
            assert root != "hw", f"{path.relative_to(ROOT)}: use relative imports, not {mod}"
            if top:
                assert root in TOP_LEVEL_OK, f"{path.relative_to(ROOT)}: top-level import {mod}"


def test_importing_the_driver_pulls_in_neither_pynq_nor_finn():
    code = ("import sys, hw.driver, hw.driver.accel, hw.driver.cli, hw.driver.profile, "
            "hw.driver.report, hw.driver.power, hw.driver.bundle\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'pynq', 'finn', 'qonnx', 'onnx', 'torch', 'matplotlib', 'bnn_brevitas', 'flows'})\n"
            "print(bad)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
