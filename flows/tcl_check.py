# SPDX-License-Identifier: BSD-3-Clause
"""Check a Vivado / Vitis HLS Tcl script with a real Tcl interpreter (``tclsh``), no Xilinx tool.

Two levels, both in ``tclsh`` (Debian ``tcl``; :func:`find_tclsh`):

1. **syntax**: ``info complete`` on the whole text and on every top-level command (the script
   split into commands the way Tcl reads it), so an unbalanced brace or quote is named by line;
2. **evaluation with stubs**: the script runs in a safe child interpreter in which every
   command Tcl does not know (every Vivado/HLS command: ``create_bd_cell``, ``add_files``, …)
   is a stub that records its arguments and returns "" (object queries such as
   ``get_bd_intf_pins X/Y`` return their object name), and filesystem commands (``file copy``,
   ``open``, ``cd``, ``exec`` …) are recorded, never done. Tcl itself still does all the
   rest — variable and command substitution, ``proc``, ``if``/``foreach``, ``expr`` — so an
   unset variable (``$::env(FINN_RTLLIB)`` when the run does not set it), a wrong argument
   count of a script-defined proc, or a bad ``expr`` fails with Tcl's own message and line.

Control flow that depends on what Vivado would return (loops over ``get_bd_intf_ports``) sees
empty results, so those bodies are only syntax-checked. The recorded calls (:class:`Call`) are
what the dry run's file, module and port checks read.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bnn_brevitas.errors import MissingToolError

#: the Tcl side; ``tclsh HARNESS SCRIPT ENVFILE EVENTS``. Events are tab-separated fields, one
#: event a line, with backslash, tab and newline escaped.
HARNESS = r"""
lassign $argv script envfile events
set out [open $events w]
proc esc {s} { string map [list "\\" "\\\\" "\t" "\\t" "\n" "\\n" "\r" "\\r"] $s }
proc emit {args} {
    global out
    set f {}
    foreach a $args { lappend f [esc $a] }
    puts $out [join $f "\t"]
}
set fh [open $script r]; set text [read $fh]; close $fh
set fh [open $envfile r]; set envdict [read $fh]; close $fh

# 1. syntax: the whole text, then command by command (line numbers)
if {![info complete $text]} { emit syntax 0 "the script as a whole is not complete (unbalanced brace, bracket or quote)" }
set cmd ""; set start 1; set lineno 0
foreach line [split $text "\n"] {
    incr lineno
    if {$cmd eq ""} { set start $lineno }
    append cmd $line "\n"
    if {[info complete $cmd]} { set cmd "" }
}
if {$cmd ne ""} { emit syntax $start "the command starting here never completes" }

# 2. evaluation in a safe child interpreter with recording stubs
set i [interp create -safe]
foreach {k v} $envdict { $i eval [list set ::env($k) $v] }
proc rec {name args} {
    emit call $name {*}$args
    # object queries hand back the object they were asked for, so nested commands see names
    if {[string match {get_*} $name] && $name ni {get_property get_param get_msg_config}} {
        set objs {}
        set skip 0
        foreach a $args {
            if {$skip} { set skip 0; continue }
            if {[string match -* $a]} {
                if {$a in {-of -of_objects -filter -regexp -hierarchical -boundary_type -quiet}} {
                    if {$a in {-of -of_objects -filter -boundary_type}} { set skip 1 }
                }
                if {$a in {-of -of_objects -filter}} { return "" }
                continue
            }
            lappend objs $a
        }
        return [join $objs " "]
    }
    # a property Tcl computes with (an address width: `expr 2**[get_property CONFIG.ADDR_WIDTH …]`)
    # gets a number; every other property ""
    if {$name eq "get_property"} {
        foreach a $args {
            if {![string match -* $a]} { return [expr {[string match -nocase *WIDTH* $a] ? 12 : ""}] }
        }
    }
    return ""
}
# `file`: its path-string subcommands run (read-only), the rest is recorded, never done
proc file_stub {sub args} {
    if {$sub in {join dirname tail rootname extension split normalize nativename exists isfile
                 isdirectory pathtype}} {
        return [file $sub {*}$args]
    }
    rec file $sub {*}$args
}
catch {$i hide file}
$i alias file file_stub
# commands Tcl has but the safe interpreter hides, or that touch the filesystem: recorded
foreach c {open close cd exec glob source exit pwd load socket fconfigure encoding} {
    catch {$i hide $c}
    $i alias $c rec $c
}
$i alias __rec rec
$i eval {
    proc unknown {name args} { __rec $name {*}$args }
    proc gets {ch args} {
        if {[llength $args]} { upvar 1 [lindex $args 0] v; set v ""; return -1 }
        return ""
    }
    proc eof {ch} { return 1 }
    proc flush {args} { return "" }
    rename puts __tcl_puts
    proc puts {args} {
        # puts [-nonewline] ?channel? string: only stdout/stderr reach the real one
        set a $args
        if {[lindex $a 0] eq "-nonewline"} { set a [lrange $a 1 end] }
        if {[llength $a] == 2 && [lindex $a 0] ni {stdout stderr}} { __rec puts {*}$args; return }
        return ""
    }
}
# the catch runs in the child, on the text itself, so -errorline is the script's own line
$i eval [list set __dryrun_text $text]
if {[$i eval {catch $__dryrun_text __dryrun_msg __dryrun_opts}] == 1} {
    set opts [$i eval {set __dryrun_opts}]
    set line [expr {[dict exists $opts -errorline] ? [dict get $opts -errorline] : 0}]
    emit error [$i eval {set __dryrun_msg}] $line [dict get $opts -errorinfo]
}
emit done
close $out
"""


@dataclass
class Call:
    """One command the script called that Tcl did not run itself (a Vivado/HLS stub)."""

    name: str
    args: list[str]


@dataclass
class TclResult:
    """What ``tclsh`` found: syntax problems (line, message), an evaluation error (message,
    line of the failing top-level command, Tcl's errorInfo), and the recorded calls."""

    script: Path
    syntax: list[tuple[int, str]] = field(default_factory=list)
    error: tuple[str, int, str] | None = None  # message, line (0: unknown), errorInfo
    calls: list[Call] = field(default_factory=list)
    finished: bool = False

    @property
    def ok(self) -> bool:
        return self.finished and not self.syntax and self.error is None


def find_tclsh() -> Path | None:
    """``tclsh`` on PATH (Debian package ``tcl``), or None."""
    exe = shutil.which("tclsh") or shutil.which("tclsh8.6")
    return Path(exe) if exe else None


def require_tclsh() -> Path:
    exe = find_tclsh()
    if exe is None:
        raise MissingToolError("tclsh not found: the dry run checks every Tcl script with a real "
                               "Tcl interpreter; install it with `apt-get install -y tcl`")
    return exe


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def tcl_list(words: dict[str, str]) -> str:
    """A Tcl list (a dict) of ``words`` with every value braced-safe."""
    def quote(s: str) -> str:
        return "{" + s + "}" if "{" not in s and "}" not in s and "\\" not in s else \
            '"' + "".join("\\" + c if c in '\\"[]${}' else c for c in s) + '"'
    return " ".join(f"{quote(k)} {quote(v)}" for k, v in words.items())


def check_tcl(script: str | Path, env: dict[str, str], work: str | Path,
              tclsh: Path | None = None, timeout: float = 120.0) -> TclResult:
    """Run both checks on ``script`` with ``::env`` = ``env``; scratch files go to ``work``."""
    script, work = Path(script), Path(work)
    tclsh = tclsh or require_tclsh()
    work.mkdir(parents=True, exist_ok=True)
    harness, envfile = work / "harness.tcl", work / f"{script.name}.env.tcl"
    events = work / f"{script.name}.events"
    if not harness.is_file() or harness.read_text() != HARNESS:
        harness.write_text(HARNESS)
    envfile.write_text(tcl_list(env))
    proc = subprocess.run([str(tclsh), str(harness), str(script), str(envfile), str(events)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    res = TclResult(script)
    if not events.is_file():
        res.error = (f"tclsh failed to run the check (exit {proc.returncode})", 0,
                     proc.stderr.strip())
        return res
    for line in events.read_text().splitlines():
        f = [_unescape(x) for x in line.split("\t")]
        if f[0] == "syntax":
            res.syntax.append((int(f[1]), f[2]))
        elif f[0] == "error":
            res.error = (f[1], int(f[2]), f[3] if len(f) > 3 else "")
        elif f[0] == "call":
            res.calls.append(Call(f[1], f[2:]))
        elif f[0] == "done":
            res.finished = True
    if not res.finished and res.error is None:
        res.error = ("the check did not finish", 0, proc.stderr.strip())
    return res
