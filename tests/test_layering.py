# SPDX-License-Identifier: BSD-3-Clause
"""The project's layering, enforced by parsing every import of every module.

* packages: ``bnn_brevitas`` ← ``flows`` ← ``hw`` (``hw/driver`` has its own, stricter test);
* inside ``flows``: the layer table ``flows.LAYERS`` (an import may not go up the table);
* no import circle anywhere in the project, counting imports inside functions too;
* a project import inside a function only with a ``# lazy: <reason>`` comment next to it.

The checker is a plain function of a module→source mapping, so it is itself tested on
small made-up packages below (a check that cannot fail would prove nothing).
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import flows

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bnn_brevitas", "flows", "hw")
#: a package may import only the packages listed for it
PACKAGE_DEPS = {"bnn_brevitas": set(), "flows": {"bnn_brevitas"}, "hw": {"bnn_brevitas", "flows"}}
LAZY_MARK = "lazy:"


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    line: int
    in_function: bool
    justified: bool  # a "# lazy:" comment on the line, the line above or the enclosing def


def project_modules(root: Path = ROOT) -> dict[str, str]:
    """module name → source of every module of the three packages."""
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f.read_text()
    return mods


def _targets(mod: str, is_pkg: bool, node: ast.AST, known: set[str]) -> list[str]:
    names = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
            pkg = pkg[:len(pkg) - (node.level - 1)]
            base = ".".join(pkg + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for n in names:
        while n and n not in known:
            n = n.rpartition(".")[0]
        if n:
            out.append(n)
    return out


def import_edges(mods: dict[str, str], packages: set[str]) -> list[Edge]:
    """Every import from one project module to another (module level and in functions)."""
    known, edges = set(mods), []
    for mod, src in mods.items():
        tree, lines = ast.parse(src), src.splitlines()
        is_pkg = any(k.startswith(mod + ".") for k in known)

        def visit(node: ast.AST, func: ast.AST | None) -> None:
            for child in ast.iter_child_nodes(node):
                inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    else func
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    near = lines[child.lineno - 2:child.lineno]
                    if func is not None:
                        near.append(lines[func.lineno - 1])
                    ok = any(LAZY_MARK in ln for ln in near)
                    for t in _targets(mod, is_pkg, child, known):
                        if t != mod and t.split(".")[0] in packages:
                            edges.append(Edge(mod, t, child.lineno, func is not None, ok))
                visit(child, inner)

        visit(tree, None)
    return edges


def find_cycle(edges: list[Edge]) -> list[str] | None:
    """One import circle (as a list of modules), or None."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.src, set()).add(e.dst)
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := dfs(w)):
                return found
        state[v] = 2
        stack.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := dfs(v)):
            return found
    return None


def layer_of(mod: str, layers=flows.LAYERS) -> int | None:
    """The index of the layer whose patterns match ``mod`` (None: unassigned)."""
    hits = {i for i, (_, _, pats) in enumerate(layers) for p in pats if fnmatch.fnmatch(mod, p)}
    assert len(hits) <= 1, f"{mod} matches several layers: {sorted(hits)}"
    return hits.pop() if hits else None


def violations(mods: dict[str, str], layers=flows.LAYERS, layered: str = "flows",
               deps=PACKAGE_DEPS) -> list[str]:
    """Every layering rule broken by ``mods``, one line each (empty: all hold)."""
    edges = import_edges(mods, set(deps))
    out = []
    if (cycle := find_cycle(edges)) is not None:
        out.append("import circle: " + " -> ".join(cycle))
    for m in mods:
        if m.split(".")[0] == layered and m != layered and layer_of(m, layers) is None:
            out.append(f"{m} is in no layer of {layered}.LAYERS")
    for e in edges:
        sp, dp = e.src.split(".")[0], e.dst.split(".")[0]
        if sp != dp and dp not in deps.get(sp, set()):
            out.append(f"{e.src}:{e.line} imports {e.dst}: package {sp} may not import {dp}")
        if sp == dp == layered and e.dst != layered:
            a, b = layer_of(e.src, layers), layer_of(e.dst, layers)
            if a is not None and b is not None and b > a:
                out.append(f"{e.src}:{e.line} ({layers[a][0]}) imports {e.dst} "
                           f"({layers[b][0]}): up the layer table")
        if e.in_function and not e.justified:
            out.append(f"{e.src}:{e.line} imports {e.dst} inside a function without a "
                       f"'# {LAZY_MARK} <reason>' comment")
    return list(dict.fromkeys(out))  # one line per offending import


# -- the project ------------------------------------------------------------------------------

def test_the_project_keeps_its_layers():
    mods = project_modules()
    assert len(mods) > 100 and "flows.verify" in mods and "hw.driver.accel" in mods
    assert violations(mods) == []


def test_every_layer_of_the_table_holds_a_module():
    mods = project_modules()
    used = {layer_of(m) for m in mods if m.startswith("flows.")}
    assert used == set(range(len(flows.LAYERS)))


@pytest.mark.parametrize("module", ["hw.driver", "flows.boards", "bnn_brevitas.errors",
                                    "flows.names", "flows.config"])
def test_cheap_imports_pull_in_no_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'brevitas', 'finn') " \
           f"if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# -- the checker on made-up packages --------------------------------------------------------

LAYERS = (("low", "", ("p.low",)), ("high", "", ("p.high",)))
DEPS = {"p": {"q"}, "q": set()}


def _check(**mods: str) -> list[str]:
    return violations({k.replace("__", "."): v for k, v in mods.items()}, LAYERS, "p", DEPS)


def test_checker_accepts_a_clean_package():
    assert _check(p="", p__low="import os\n", p__high="from .low import x\nfrom q import y\n",
                  q="") == []


def test_checker_finds_a_circle_hidden_in_a_function():
    found = _check(p="", p__low="def f():\n    # lazy: test\n    from . import high\n",
                   p__high="from . import low\n", q="")
    assert any(v.startswith("import circle: p.") for v in found), found


def test_checker_finds_an_import_up_the_table_and_an_unmarked_lazy_import():
    found = _check(p="", p__low="def f():\n    from .high import x\n", p__high="", q="")
    assert any("up the layer table" in v for v in found), found
    assert any("inside a function without" in v for v in found), found


def test_checker_finds_a_wrong_way_package_import_and_an_unassigned_module():
    found = _check(p="", p__low="", p__high="", p__extra="", q="import p.low\n")
    assert "q:1 imports p.low: package q may not import p" in found
    assert "p.extra is in no layer of p.LAYERS" in found
