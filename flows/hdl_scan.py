# SPDX-License-Identifier: BSD-3-Clause
"""A light Verilog/SystemVerilog scanner: which modules a file defines, what they instantiate,
their ports (direction, width, attributes) and the packages they use.

It is not an elaborator. It reads what a file list hands to Vivado well enough to answer the
questions of the Vivado dry run (``flows/vivado_dryrun.py``): is every module a design
instantiates defined somewhere in the list, does a module-reference top have the ports FINN's
stitching connects, and does its clock port carry the IP-integrator attributes FINN's own
wrappers carry. Widths are evaluated from parameter defaults (what a Vivado module reference
uses when no ``CONFIG.*`` is set); an expression it cannot evaluate gives ``None``.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

#: SystemVerilog keywords that can open a statement looking like ``A B (`` (never a module)
KEYWORDS = frozenset("""
    always always_comb always_ff always_latch and assert assign assume automatic begin bit
    buf byte case casex casez cell class const constraint cover default defparam disable do
    else end endcase endclass endfunction endgenerate endinterface endmodule endpackage
    endprimitive endprogram endtask enum event export extern final for force foreach forever
    fork function generate genvar if iff import initial inout input int integer interface
    join join_any join_none localparam logic longint module modport nand negedge nor not or
    output package packed parameter posedge primitive program property real realtime reg
    repeat return shortint signed static string struct supply0 supply1 task time tri
    typedef union unique unique0 unsigned var virtual void wait while wire wor xor xnor
    uwire timeunit timeprecision priority
""".split())  # noqa: SIM905 (a word list reads better)
#: tokens after which a module instantiation may start
_INST_AFTER = frozenset({";", "begin", "end", "else", "generate", "endgenerate", ")", "endcase",
                         "*)", None})
_TOKEN = re.compile(r"""
    (?P<attr>\(\*.*?\*\))
  | (?P<id>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<sys>\$[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<num>\d[\d_]*(?:'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_?]+)?|'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_?]+)
  | (?P<scope>::)
  | (?P<punct>[()\[\]{};,#.=:@?+\-*/%<>!&|^~`'])
""", re.DOTALL | re.VERBOSE)


@dataclass
class Port:
    name: str
    direction: str  # input / output / inout ("" when the scanner could not tell)
    range: str  # the packed range text, "" for a 1-bit port
    attrs: str  # the text of the (* ... *) attributes before the declaration


@dataclass
class Module:
    name: str
    file: Path
    kind: str  # module / interface / package
    ports: dict[str, Port] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # name -> default expression
    instances: list[tuple[str, str]] = field(default_factory=list)  # (module, instance)
    packages_used: set[str] = field(default_factory=set)

    def width(self, port: str) -> int | None:
        """The port's width with the parameters at their defaults (``None``: not evaluated)."""
        p = self.ports.get(port)
        if p is None:
            return None
        if not p.range:
            return 1
        m = re.fullmatch(r"\[(.*):(.*)\]", p.range.strip())
        if not m:
            return None
        hi, lo = (evaluate(e, self.params) for e in m.groups())
        return None if hi is None or lo is None else abs(hi - lo) + 1


def strip_comments(text: str) -> str:
    """The text without comments and with string literals blanked (same lines), except inside
    ``(* … *)`` attributes, which are kept verbatim."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("(*", i) and not text.startswith("(*)", i):
            j = text.find("*)", i + 2)  # an attribute: kept verbatim (its strings matter)
            j = n if j < 0 else j + 2
            out.append(text[i:j])
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]


def _skip_balanced(toks: list[tuple[str, str]], i: int) -> int:
    """Index after the bracket group opening at ``toks[i]``."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[toks[i][1]]]
    i += 1
    while i < len(toks) and stack:
        t = toks[i][1]
        if t in pairs:
            stack.append(pairs[t])
        elif t == stack[-1]:
            stack.pop()
        i += 1
    return i


def _split_top(toks: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split a token list at top-level commas."""
    parts, cur, depth = [], [], 0
    for k, t in toks:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == "," and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append((k, t))
    if cur:
        parts.append(cur)
    return parts


def _text(toks: list[tuple[str, str]]) -> str:
    return " ".join(t for _, t in toks)


def _param_list(toks: list[tuple[str, str]], params: dict[str, str]) -> None:
    """``parameter [type] NAME = expr`` items (header ``#( … )`` or a body statement)."""
    for item in _split_top(toks):
        item = [x for x in item if x[0] != "attr"]
        if "=" not in [t for _, t in item]:
            continue
        eq = [t for _, t in item].index("=")
        names = [t for k, t in item[:eq] if k == "id" and t not in KEYWORDS]
        if names:
            params[names[-1]] = _text(item[eq + 1:])


def _ports(toks: list[tuple[str, str]], mod: Module) -> None:
    """ANSI port list items: ``(* attrs *) input [type] [range] name``."""
    direction = ""
    for item in _split_top(toks):
        attrs = " ".join(t for k, t in item if k == "attr")
        item = [x for x in item if x[0] != "attr"]
        words = [t for k, t in item if k == "id"]
        if not words:
            continue
        for d in ("input", "output", "inout"):
            if d in words:
                direction = d
        rng = ""
        i = 0
        while i < len(item):
            if item[i][1] == "[":
                j = _skip_balanced(item, i)
                if any(k == "id" for k, _ in item[j:]):  # a packed range before the name
                    rng = _text(item[i:j]).replace(" ", "")
                i = j
            else:
                i += 1
        name = [t for k, t in item if k == "id" and t not in KEYWORDS]
        if name:
            mod.ports[name[-1]] = Port(name[-1], direction, rng, attrs)


def _body_ports(stmt: list[tuple[str, str]], mod: Module) -> None:
    """Non-ANSI declarations in the body: ``input [range] a, b;``."""
    attrs = " ".join(t for k, t in stmt if k == "attr")
    stmt = [x for x in stmt if x[0] != "attr"]
    d = stmt[0][1]
    rng = ""
    if "[" in [t for _, t in stmt]:
        i = [t for _, t in stmt].index("[")
        j = _skip_balanced(stmt, i)
        rng = _text(stmt[i:j]).replace(" ", "")
        stmt = stmt[:i] + stmt[j:]
    for item in _split_top(stmt[1:]):
        names = [t for k, t in item if k == "id" and t not in KEYWORDS]
        if names:
            name = names[0]
            if name in mod.ports and mod.ports[name].direction:
                continue
            old = mod.ports.get(name)
            mod.ports[name] = Port(name, d, rng, attrs or (old.attrs if old else ""))


def scan_text(text: str, file: Path) -> list[Module]:
    """The modules, interfaces and packages defined in one source text."""
    toks = _tokens(strip_comments(text))
    found: list[Module] = []
    i, n = 0, len(toks)
    while i < n:
        t = toks[i][1]
        if t in ("module", "interface", "package", "macromodule") and i + 1 < n:
            j = i + 1
            while j < n and toks[j][1] in ("automatic", "static"):
                j += 1
            if j >= n or toks[j][0] != "id":
                i += 1
                continue
            mod = Module(toks[j][1], file, "package" if t == "package" else
                         "interface" if t == "interface" else "module")
            end = {"module": "endmodule", "macromodule": "endmodule", "interface": "endinterface",
                   "package": "endpackage"}[t]
            k = j + 1
            if mod.kind != "package":
                while k < n and toks[k][1] == "import":  # header imports
                    while k < n and toks[k][1] != ";":
                        k += 1
                    k += 1
                if k < n and toks[k][1] == "#" and k + 1 < n and toks[k + 1][1] == "(":
                    e = _skip_balanced(toks, k + 1)
                    _param_list(toks[k + 2:e - 1], mod.params)
                    k = e
                if k < n and toks[k][1] == "(":
                    e = _skip_balanced(toks, k)
                    _ports(toks[k + 1:e - 1], mod)
                    k = e
            body_start = k
            while k < n and toks[k][1] != end:
                k += 1
            _scan_body(toks[body_start:k], mod)
            found.append(mod)
            i = k + 1
        else:
            i += 1
    return found


def _scan_body(toks: list[tuple[str, str]], mod: Module) -> None:
    for k in range(len(toks) - 1):
        if toks[k][0] == "id" and toks[k + 1][1] == "::" and toks[k][1] not in ("std", "$unit"):
            mod.packages_used.add(toks[k][1])
    # statements: parameter/port declarations
    stmt: list[tuple[str, str]] = []
    for kt in toks:
        if kt[1] == ";":
            words = [t for k, t in stmt if k != "attr"]
            if words and words[0] in ("parameter", "localparam"):
                _param_list([x for x in stmt if x[0] != "attr"][1:], mod.params)
            elif words and words[0] in ("input", "output", "inout"):
                _body_ports(stmt, mod)
            stmt = []
        else:
            stmt.append(kt)
    # instantiations: IDENT [#(...)] IDENT [range] (
    n = len(toks)
    for i in range(n):
        kind, t = toks[i]
        if kind != "id" or t in KEYWORDS:
            continue
        prev = toks[i - 1][1] if i > 0 else None
        after_attr = i > 0 and toks[i - 1][0] == "attr"
        after_label = prev == ":" and i > 1 and toks[i - 2][0] == "id"  # begin : label
        if prev not in _INST_AFTER and not after_attr and not after_label:
            continue
        j = i + 1
        if j < n and toks[j][1] == "#":
            if j + 1 < n and toks[j + 1][1] == "(":
                j = _skip_balanced(toks, j + 1)
            else:
                continue
        if j < n and toks[j][0] == "id" and toks[j][1] not in KEYWORDS:
            inst = toks[j][1]
            j += 1
            while j < n and toks[j][1] == "[":
                j = _skip_balanced(toks, j)
            if j < n and toks[j][1] == "(":
                mod.instances.append((t, inst))


def scan_file(path: str | Path) -> list[Module]:
    path = Path(path)
    return scan_text(path.read_text(errors="replace"), path)


# -- constant expressions ---------------------------------------------------------------------
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift}


def _clog2(x: int) -> int:
    return 0 if x <= 1 else math.ceil(math.log2(x))


def evaluate(expr: str, params: dict[str, str], depth: int = 0) -> int | None:
    """An integer constant expression over ``params`` (their default expressions), or None."""
    if depth > 20:
        return None
    e = re.sub(r"\b\d+'[sS]?[dD](\d+)", r"\1", expr.replace(" ", ""))
    e = e.replace("$clog2", "clog2").replace("/", "//").replace("////", "//")
    if re.search(r"[^\w+\-*/%()<>?:,]", e):
        return None
    try:
        tree = ast.parse(e, mode="eval")
    except SyntaxError:
        return None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in params:
                raise ValueError(node.id)
            v = evaluate(params[node.id], params, depth + 1)
            if v is None:
                raise ValueError(node.id)
            return v
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "clog2" and \
                len(node.args) == 1:
            return _clog2(ev(node.args[0]))
        raise ValueError(ast.dump(node))

    try:
        return int(ev(tree))
    except (ValueError, ZeroDivisionError, TypeError, RecursionError):
        return None
