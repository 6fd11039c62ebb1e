# SPDX-License-Identifier: BSD-3-Clause
"""The Vivado hand-off, checked without the Xilinx tools (``hw.bitstream --vivado-dry-run``).

**The Xilinx tools do not run.** FINN's own Python for the Vivado-side steps of the real
build (``step_hw_ipgen``: HLS IP generation; ``step_create_stitched_ip``: ``CreateStitchedIP``;
``step_synthesize_bitfile``: ``ZynqBuild`` → IODMAs, kernel partitions, ``MakeZYNQProject``)
runs on the build's model, with the build's FINN settings, up to each point where FINN would
launch ``vitis_hls`` or ``vivado``. There, and only there, :class:`ToolBoundary` intercepts:

* ``launch_process_helper`` (FINN's one subprocess launcher, as imported by each FINN module)
  records the shell script FINN wrote (``ipgen.sh``, ``make_project.sh``, ``synth_project.sh``)
  and the Tcl it sources, copies both into ``<build>/vivado_dry_run/scripts/``, and runs
  nothing; any other launch is refused;
* ``resolve_xilinx_tool`` gives the bare tool name (what FINN writes without its override);
  FINN's HLS launcher is told the targeted release (:data:`TARGET_VIVADO`, which picks
  ``vitis_hls`` over ``vitis-run``), and its ``XILINX_VIVADO`` test sees
  :data:`NOT_INSTALLED` — in that module only; the process environment never gets a Xilinx
  path;
* what only a tool run would make is named, never made: an HLS node's IP directory
  (``…/project_<node>/sol1/impl/ip``) is set on the node as FINN sets it after Vitis HLS, and
  FINN's existence checks for it (``CreateStitchedIP``, ``collect_ip_dirs``) and its wait for the
  block-design wrapper Vivado writes are answered for those paths only;
* ``NUM_DEFAULT_WORKERS=1`` so FINN's kernel builds stay in this process (and its patches).

Everything is patched on FINN's module objects inside a ``with`` block and restored after;
no installed file is edited. The run writes into ``<build>/vivado_dry_run/`` only (FINN's new
code-generation and project folders in ``finn_tmp/``, its outputs in ``finn_output/``); the
``ipgen.sh`` files FINN writes next to existing HLS sources are removed again.

Then every script is checked (:func:`check_launches`):

* **Tcl**: syntax and a stubbed evaluation in ``tclsh`` (``flows/tcl_check.py``), with the
  environment the real run has (:func:`tool_environment`);
* **files**: every file or directory the Tcl names (``add_files``, ``read_*``, ``source``,
  ``ip_repo_paths``, board repositories, the HLS ``-I`` include directories) exists — or is made
  by a tool run of this same hand-off (reported as not checkable), or belongs to FINN's
  downloadable dependencies (``finn deps``, reported as needed);
* **modules**: every module a stitched design references (``create_bd_cell -type module``) and
  everything it instantiates, transitively, is defined in the files the script adds (Xilinx
  library cells excepted), with its packages (``flows/hdl_scan.py``);
* **ports**: each module-reference cell has the ports FINN's stitching connects —
  ``get_verilog_top_module_intf_names()`` of its node: ``ap_clk``/``ap_rst_n`` and each AXI
  stream's ``_TDATA`` (FINN's width) / ``_TVALID`` / ``_TREADY`` in the right direction — and its
  clock port carries the IP-integrator attributes (``ASSOCIATED_BUSIF`` naming those streams,
  ``ASSOCIATED_RESET``; reset ``POLARITY ACTIVE_LOW``) that FINN's own RTL wrappers carry and
  that Vivado needs to associate AXI interfaces with a clock (UG994); every ``inst/pin`` the
  Zynq shell connects on a stitched block is an interface that block's script exports.

What the dry run cannot check (the IP that Vitis HLS would synthesise, Vivado's own IP catalog,
anything Vivado writes) is listed as such, never counted as passed.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

from bnn_brevitas.errors import InternalError
from bnn_brevitas.outputs import atomic_output_dir, atomic_write_file
from bnn_brevitas.utils import exception_summary, module_logger
from flows.config import FlowConfig
from flows.finn_env import import_builder, load_model, prepare_finn
from flows.hdl_scan import Module, scan_file, strip_comments
from flows.names import FINN_TMP, VIVADO_DRY_RUN
from flows.tcl_check import Call, check_tcl, require_tclsh

log = module_logger(__spec__, __name__)

TOOL = "flows.vivado_dryrun"
#: the Vivado / Vitis HLS release the project targets (``flows.tools`` names it in its hint)
TARGET_VIVADO = (2024, 2)
#: what FINN's HLS launcher (only it) reads as ``XILINX_VIVADO`` during the dry run: not a path
NOT_INSTALLED = "<not installed: Vivado dry run>"
XILINX_TOOL_NAMES = ("vivado", "vitis_hls", "vitis-run", "v++")
HDL_SUFFIXES = (".v", ".sv", ".vh", ".svh", ".vhd", ".vhdl")
#: what a module-reference top may be written in (FINN's own RTL wrappers are all ``.v``)
TOP_SUFFIXES = (".v", ".vhd", ".vhdl")
#: cells Vivado's libraries provide (UNISIM primitives, XPM macros); never in a file list
LIBRARY_CELL = re.compile(r"^(xpm_\w+|DSP48E\d?|DSP58|DSPFP32|RAMB\w+|URAM288\w*|LUT\d\w*|"
                          r"CARRY\d+|FD[CPRS]E?|SRL\w+|MUXF\d|BUFG\w*|IBUF\w*|OBUF\w*|ICAPE\d|"
                          r"STARTUPE\d|cdma_datamover\w*)$")
#: the launch kinds, by the script FINN writes
KINDS = {"ipgen.sh": "hls_ipgen", "make_project.sh": "stitched_ip",
         "synth_project.sh": "zynq_shell"}
#: Tcl commands whose plain arguments are files or directories, and their options with a value
FILE_COMMANDS = {"add_files": {"-fileset", "-copy_to", "-of_objects", "-cflags", "-csimflags"},
                 "read_verilog": {"-library"}, "read_vhdl": {"-library"}, "read_xdc": {"-ref",
                 "-cells", "-mode"}, "import_files": {"-fileset", "-of_objects"},
                 "source": set()}


# -- the environment of the real run ----------------------------------------------------------

def tool_environment() -> dict[str, str]:
    """The environment variables FINN's generated Tcl reads (``$::env(FINN_RTLLIB)``,
    ``$::env(FINN_CUSTOM_HLS)``), as FINN's own CLI sets them (``finn/interface/run_finn.py``)
    except that FINN_RTLLIB names the patched copy the build uses (``flows.rtllib_patches``).
    Call after :func:`flows.finn_env.prepare_finn`; the real Vivado run uses the same."""
    import finn
    from finn.util.settings import get_settings

    return {"FINN_RTLLIB": str(get_settings().finn_rtllib),
            "FINN_CUSTOM_HLS": str(Path(finn.__file__).parent / "custom_hls"),
            "XILINX_LOCAL_USER_DATA": os.environ.get("XILINX_LOCAL_USER_DATA", "no")}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``values`` inside the block, restored after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- records ----------------------------------------------------------------------------------

@dataclass
class Launch:
    """One tool run FINN would have started."""

    kind: str  # hls_ipgen / stitched_ip / zynq_shell
    label: str  # the HLS node, or the project folder
    tool: str  # vitis_hls / vivado
    command: str  # the tool's command line in FINN's script
    script: Path  # FINN's shell script, where FINN wrote it
    tcl: Path  # the Tcl it runs
    cwd: Path
    saved: Path  # our copy of both
    #: folders the tool run would fill (a path inside that does not exist yet is its output)
    outputs: list[Path] = field(default_factory=list)
    #: stitched IP: FINN's interface names of every node it stitches, by instance
    intf: dict[str, dict] | None = None


@dataclass
class Problem:
    check: str  # tcl / file / module / port / finn
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


@dataclass
class DryRunReport:
    """What the dry run did and found; :meth:`text` is the human report."""

    build: Path
    launches: list[Launch] = field(default_factory=list)
    failures: list[Problem] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # needs the tools / not checkable
    needs: list[str] = field(default_factory=list)  # what the real run needs installed
    notes: list[str] = field(default_factory=list)
    counts: collections.Counter = field(default_factory=collections.Counter)
    stopped: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, check: str, where: str, message: str) -> None:
        p = Problem(check, where, message)
        if p not in self.failures:
            self.failures.append(p)

    def text(self) -> str:
        kinds = collections.Counter(la.kind for la in self.launches)
        c = self.counts
        lines = [
            ("VIVADO DRY RUN - the Xilinx tools did NOT run: nothing was synthesised, no IP, "
             "no bitstream."),
            f"build: {self.build}",
            (f"FINN's Vivado-side code ran up to each tool launch: {len(self.launches)} "
             f"script(s) it would hand over ({kinds['hls_ipgen']} Vitis HLS IP generation, "
             f"{kinds['stitched_ip']} stitched IP, {kinds['zynq_shell']} Zynq shell), copied "
             f"to {self.build / VIVADO_DRY_RUN / 'scripts'}"),
        ]
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        lines += [
            "checks:",
            (f"  tcl: {c['tcl_ok']}/{c['tcl']} scripts pass the syntax check and the stubbed "
             "evaluation in tclsh"),
            (f"  files: {c['file_ok']} referenced files/folders exist, {c['file_tool']} are "
             f"made by the tool runs themselves (not checkable), {c['file_deps']} are FINN "
             "dependencies not installed here"),
            (f"  modules: {c['module_cells']} module-reference cells, {c['module_defs']} "
             f"module definitions reached through them, {c['library_cells']} Xilinx library "
             "cell use(s)"),
            (f"  ports: {c['port_ok']} interface/port checks on module cells, "
             f"{c['shell_pins']} Zynq-shell pins on stitched blocks"),
        ]
        if self.needs:
            lines.append("the real run also needs (besides Vivado and Vitis HLS 2024.2):")
            lines += [f"  - {n}" for n in self.needs]
        if self.unchecked:
            lines.append(f"not checked (needs the tools) — {len(self.unchecked)}:")
            lines += [f"  - {u}" for u in self.unchecked[:20]]
            if len(self.unchecked) > 20:
                lines.append(f"  … and {len(self.unchecked) - 20} more (report.json)")
        lines += [f"note: {n}" for n in self.notes]
        if self.failures:
            lines.append(f"FAILED checks — {len(self.failures)}:")
            lines += [f"  - {p}" for p in self.failures[:40]]
            if len(self.failures) > 40:
                lines.append(f"  … and {len(self.failures) - 40} more (report.json)")
        lines.append("Result: " + ("PASS (dry run: the hand-off is consistent; the Xilinx "
                                   "tools did not run)" if self.passed else "FAIL (dry run)"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "xilinx_tools_ran": False,
            "result": "PASS (dry run)" if self.passed else "FAIL (dry run)",
            "build": str(self.build),
            "stopped": self.stopped,
            "launches": [{"kind": la.kind, "label": la.label, "tool": la.tool,
                          "command": la.command, "script": str(la.script), "tcl": str(la.tcl),
                          "cwd": str(la.cwd), "saved": str(la.saved)} for la in self.launches],
            "failures": [dataclasses.asdict(p) for p in self.failures],
            "not_checked": self.unchecked,
            "needs": self.needs,
            "notes": self.notes,
            "counts": dict(self.counts),
        }


# -- the interception -------------------------------------------------------------------------

def _bare_tool(name: str) -> str:
    """FINN's ``resolve_xilinx_tool`` without its PATH test: the bare name it writes anyway."""
    return name


class _PathView:
    def __init__(self, isdir):
        self.isdir = isdir

    def __getattr__(self, name):
        return getattr(os.path, name)


class _OsView:
    """``os`` as one FINN module sees it during the dry run: extra environment entries, and an
    ``os.path.isdir`` that knows the directories a tool run would make."""

    def __init__(self, env: dict[str, str] | None = None, isdir=None):
        self.environ = collections.ChainMap(env or {}, os.environ)
        self.path = _PathView(isdir) if isdir else os.path

    def __getattr__(self, name):
        return getattr(os, name)


class ToolBoundary:
    """FINN patched at its tool-launch boundary, inside a ``with`` block only (module doc)."""

    def __init__(self, save_dir: Path):
        self.save_dir = Path(save_dir)
        self.launches: list[Launch] = []
        self.pending: dict[str, str] = {}  # HLS IP folder Vitis HLS would make → node
        self.waited: list[Path] = []  # files FINN waited for that do not exist
        self._intf: dict[str, dict] | None = None
        self._hls_node = ""
        self._stack = ExitStack()

    def _set(self, obj, name: str, value) -> None:
        old = getattr(obj, name)
        setattr(obj, name, value)
        self._stack.callback(setattr, obj, name, old)

    def __enter__(self) -> Self:
        from finn.custom_op.fpgadataflow import hlsbackend
        from finn.transformation.fpgadataflow import create_stitched_ip as csi
        from finn.transformation.fpgadataflow import make_zynq_proj as mzp
        from finn.util import basic, hls, vivado

        try:
            for mod in (basic, hls, vivado, csi, mzp, hlsbackend):
                if hasattr(mod, "launch_process_helper"):
                    self._set(mod, "launch_process_helper", self._launch)
                if hasattr(mod, "resolve_xilinx_tool"):
                    self._set(mod, "resolve_xilinx_tool", _bare_tool)
            self._set(hls, "get_vivado_version", lambda: TARGET_VIVADO)
            self._set(hls, "os", _OsView(env={"XILINX_VIVADO": NOT_INSTALLED}))
            self._set(hlsbackend.HLSBackend, "ipgen_singlenode_code",
                      self._hls_ipgen(hlsbackend.HLSBackend.ipgen_singlenode_code))
            self._set(csi, "Path", self._path_class())
            self._set(csi, "wait_for_file", self._wait_for_file)
            self._set(csi.CreateStitchedIP, "apply", self._stitch(csi.CreateStitchedIP.apply))
            self._set(mzp, "os", _OsView(isdir=self._isdir))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        self._stack.close()
        return False

    # what FINN calls instead of its own code
    def _launch(self, args, proc_env=None, cwd=None, **kwargs):  # FINN's signature
        cmd = [str(a) for a in args]
        if len(cmd) != 2 or cmd[0] != "bash" or not Path(cmd[1]).is_file():
            raise InternalError(f"Vivado dry run: FINN would run {' '.join(cmd)!r}, which is "
                                "not a Xilinx tool launch this dry run knows; nothing was run")
        script = Path(cmd[1])
        text = script.read_text()
        workdir, words = Path.cwd(), None
        for line in text.splitlines():
            w = shlex.split(line) if line.strip() and not line.startswith("#") else []
            if w and w[0] == "cd":
                workdir = Path(w[1])
            elif w and Path(w[0]).name in XILINX_TOOL_NAMES:
                words = w
                break
        if words is None:
            raise InternalError(f"Vivado dry run: {script} launches no Xilinx tool:\n{text}")
        tcl_arg = next((w for w in words[1:] if w.endswith(".tcl")), "")
        tcl = Path(tcl_arg) if Path(tcl_arg).is_absolute() else workdir / tcl_arg
        kind = KINDS.get(script.name, script.stem)
        label = self._hls_node if kind == "hls_ipgen" else workdir.name
        dest = self.save_dir / f"{len(self.launches) + 1:02d}_{kind}_{label}"
        dest.mkdir(parents=True)
        shutil.copy2(script, dest / script.name)
        if tcl.is_file():
            shutil.copy2(tcl, dest / tcl.name)
        launch = Launch(kind, label, Path(words[0]).name, shlex.join(words), script, tcl,
                        workdir, dest, outputs=[] if kind == "hls_ipgen" else [workdir],
                        intf=self._intf if kind == "stitched_ip" else None)
        self.launches.append(launch)
        log.info("dry run: FINN would now run `%s` (in %s); not run", launch.command, workdir)
        return ("", "")

    def _hls_ipgen(self, original):
        boundary = self

        def ipgen_singlenode_code(inst, fpgapart=None):
            from finn.util.exception import FINNUserError

            name = inst.onnx_node.name
            boundary._hls_node, before = name, len(boundary.launches)
            try:
                original(inst, fpgapart)
                return
            except FINNUserError:
                if len(boundary.launches) != before + 1:
                    raise  # failed before the launch: a real finding, not the missing tool
            finally:
                boundary._hls_node = ""
            # Vitis HLS did not run: name its IP as FINN does after a run, and remember it
            proj = Path(inst.get_nodeattr("code_gen_dir_ipgen")) / f"project_{name}"
            ip = proj / "sol1" / "impl" / "ip"
            inst.set_nodeattr("ipgen_path", str(proj))
            inst.set_nodeattr("ip_path", str(ip))
            inst.set_nodeattr("ip_vlnv", f"xilinx.com:hls:{name}:1.0")
            boundary.pending[str(ip)] = name
            boundary.launches[-1].outputs.append(proj)

        return ipgen_singlenode_code

    def _path_class(self):
        pending = self.pending

        class DryRunPath(type(Path())):
            """``Path`` in FINN's CreateStitchedIP: an HLS IP folder to be made counts as one."""

            def is_dir(self):
                return str(self) in pending or super().is_dir()

        return DryRunPath

    def _isdir(self, path) -> bool:
        return str(path) in self.pending or os.path.isdir(path)

    def _wait_for_file(self, path, timeout=30.0, **kwargs) -> bool:  # FINN's signature
        p = Path(path)
        if not p.exists():
            self.waited.append(p)  # a tool output, or a missing source (the file check says)
        return True

    def _stitch(self, original):
        boundary = self

        def apply(transform, model):
            from qonnx.custom_op.registry import getCustomOp

            boundary._intf = {n.name: getCustomOp(n).get_verilog_top_module_intf_names()
                              for n in model.graph.node}
            return original(transform, model)

        return apply


# -- the run ------------------------------------------------------------------------------------

def dry_run(cfg: FlowConfig, build_config, steps: Sequence[str], model_path: Path
            ) -> DryRunReport:
    """Run FINN's ``steps`` (builder step names) on the model in ``model_path`` under
    :class:`ToolBoundary`, with FINN's ``build_config`` (a ``DataflowBuildConfig``; its
    output goes into the dry-run folder), then :func:`check_launches`; writes
    ``report.json``/``report.md`` and returns the report. ``MissingToolError`` (exit 3) up front
    when ``tclsh`` is absent."""
    from finn.util.exception import FINNSynthesisError
    from finn.util.settings import get_settings

    tclsh = require_tclsh()
    out = cfg.out_dir.absolute()
    prepare_finn(out / FINN_TMP)  # as the real run: the build's settings and patched rtllib
    env = tool_environment()
    builder = import_builder()
    model = load_model(model_path)
    report = DryRunReport(out)
    settings = get_settings()
    old_build_dir = settings.finn_build_dir
    hls_scripts = set((out / FINN_TMP).glob("code_gen_*/ipgen.sh"))
    with atomic_output_dir(out / VIVADO_DRY_RUN, TOOL, replace=True, in_place=True) as d:
        bcfg = dataclasses.replace(build_config, output_dir=str(d / "finn_output"))
        Path(bcfg.output_dir).mkdir()
        (d / "finn_tmp").mkdir()
        settings.finn_build_dir = d / "finn_tmp"
        try:
            with environment({**env, "NUM_DEFAULT_WORKERS": "1"}), \
                    ToolBoundary(d / "scripts") as boundary:
                for name in steps:
                    log.info("dry run: FINN %s", name)
                    try:
                        model = getattr(builder, name)(model, bcfg)
                    except FINNSynthesisError:
                        last = boundary.launches[-1].kind if boundary.launches else ""
                        if name != steps[-1] or last != "zynq_shell":
                            raise
                        report.stopped = ("after the Zynq shell's launch, as planned: FINN "
                                          "would now read the bitfile and .hwh Vivado writes")
                    except Exception as e:  # noqa: BLE001 (any FINN failure is a finding)
                        report.fail("finn", name, "FINN's own code failed before handing off "
                                    f"to the tools: {exception_summary(e)}")
                        report.stopped = f"in {name} (FINN failed; the later steps did not run)"
                        break
        finally:
            settings.finn_build_dir = old_build_dir
            for f in set((out / FINN_TMP).glob("code_gen_*/ipgen.sh")) - hls_scripts:
                f.unlink()  # FINN wrote it next to the build's HLS sources; our copy is saved
        report.launches = boundary.launches
        check_launches(report, boundary, env, tclsh, d / "checks")
        atomic_write_file(d / "report.json", json.dumps(report.to_dict(), indent=1) + "\n")
        atomic_write_file(d / "report.md", report.text() + "\n")
    return report


# -- the checks ---------------------------------------------------------------------------------

def _plain_args(call: Call, with_value: set[str]) -> tuple[list[str], dict[str, str]]:
    """A call's positional arguments and its ``-option value`` pairs (``with_value``)."""
    plain, opts, i = [], {}, 0
    while i < len(call.args):
        a = call.args[i]
        if a.startswith("-") and len(a) > 1:
            if a in with_value and i + 1 < len(call.args):
                opts[a] = call.args[i + 1]
                i += 1
            else:
                opts[a] = ""
        else:
            plain += a.split()
        i += 1
    return plain, opts


def _referenced_paths(calls: list[Call]) -> list[tuple[str, str]]:
    """(command, path) for every file or folder the calls name."""
    refs = []
    for c in calls:
        if c.name in FILE_COMMANDS:
            plain, opts = _plain_args(c, FILE_COMMANDS[c.name])
            refs += [(c.name, p) for p in plain]
            for flag in re.findall(r"-I\s*(\S+)", opts.get("-cflags", "")):
                refs.append((f"{c.name} -cflags -I", flag))
        elif c.name == "set_property" and len(c.args) >= 2 and \
                c.args[0].lower() in ("ip_repo_paths", "board_part_repo_paths"):
            refs += [(f"set_property {c.args[0]}", p) for p in c.args[1].split()
                     if p not in ("list", "concat")]
    return refs


def _check_files(report: DryRunReport, launch: Launch, calls: list[Call],
                 made: list[Path], deps: Path) -> list[Path]:
    """Every referenced path exists, or is made by this hand-off's tool runs, or is a FINN
    dependency; returns the existing HDL files the script adds."""
    hdl = []
    for cmd, p in _referenced_paths(calls):
        path = Path(p) if Path(p).is_absolute() else launch.cwd / p
        if path.exists():
            report.counts["file_ok"] += 1
            if cmd in ("add_files", "read_verilog", "read_vhdl") and \
                    path.suffix in HDL_SUFFIXES and path not in hdl:
                hdl.append(path)
        elif any(path == m or m in path.parents for m in made):
            report.counts["file_tool"] += 1
            report.unchecked.append(f"{launch.saved.name}: {cmd} {path}: made by the tool "
                                    "runs of this hand-off")
        elif deps == path or deps in path.parents:
            report.counts["file_deps"] += 1
            need = (f"{deps / path.relative_to(deps).parts[0]}: one of FINN's downloaded "
                    "dependencies (`finn deps update`), named by the scripts, not installed here")
            if need not in report.needs:
                report.needs.append(need)
        else:
            report.fail("file", launch.saved.name, f"{cmd} names {path}, which does not exist")
    return hdl


def _cells(calls: list[Call]) -> tuple[dict[str, str], dict[str, str]]:
    """(instance → module) of module-reference cells, (instance → VLNV) of IP cells."""
    modules, ips = {}, {}
    for c in calls:
        if c.name != "create_bd_cell":
            continue
        plain, opts = _plain_args(c, {"-type", "-reference", "-vlnv"})
        if not plain:
            continue
        if opts.get("-type") == "module" and "-reference" in opts:
            modules[plain[-1]] = opts["-reference"]
        elif opts.get("-type") == "ip" and "-vlnv" in opts:
            ips[plain[-1]] = opts["-vlnv"]
    return modules, ips


def _pins(calls: list[Call], command: str) -> list[tuple[str, str]]:
    pins = []
    for c in calls:
        if c.name == command:
            plain, _ = _plain_args(c, {"-of", "-of_objects", "-filter", "-boundary_type"})
            pins += [tuple(p.split("/", 1)) for p in plain if "/" in p]
    return pins


#: SystemVerilog-only syntax that Vivado's Verilog (``.v``) reader rejects
SV_ONLY = re.compile(r"\b(logic|always_ff|always_comb|always_latch|typedef|enum|struct|package|"
                     r"endpackage|interface|endinterface)\b|::")


class _HdlIndex:
    """The modules defined in a file list (each file scanned once per content)."""

    cache: ClassVar[dict[tuple[Path, int, int], list[Module]]] = {}

    def __init__(self, files: list[Path]):
        self.defs: dict[str, list[Module]] = collections.defaultdict(list)
        self.sv_in_v: list[tuple[Path, str]] = []
        for f in files:
            if f.suffix not in (".v", ".sv"):
                continue
            st = f.stat()
            key = (f, st.st_mtime_ns, st.st_size)
            if key not in self.cache:
                self.cache[key] = scan_file(f)
            for m in self.cache[key]:
                self.defs[m.name].append(m)
            if f.suffix == ".v":
                hit = SV_ONLY.search(strip_comments(f.read_text(errors="replace")))
                if hit:
                    self.sv_in_v.append((f, hit.group()))

    def get(self, name: str) -> Module | None:
        return self.defs[name][0] if self.defs.get(name) else None


def _check_modules(report: DryRunReport, launch: Launch, calls: list[Call],
                   hdl: list[Path]) -> tuple[_HdlIndex, dict[str, str]]:
    where = launch.saved.name
    index = _HdlIndex(hdl)
    for name, mods in index.defs.items():
        texts = {m.file.read_bytes() for m in mods}
        if len(texts) > 1:
            report.fail("module", where, f"module {name} is defined differently in "
                        f"{', '.join(str(m.file) for m in mods)}")
    for f, word in index.sv_in_v:
        report.fail("module", where, f"{f} is added as Verilog (.v) but uses SystemVerilog "
                    f"({word!r}); Vivado reads .v files as Verilog-2001")
    modules, ips = _cells(calls)
    report.counts["module_cells"] += len(modules)
    seen: set[str] = set()
    for inst, top in modules.items():
        mod = index.get(top)
        if mod is None:
            report.fail("module", where, f"cell {inst} references module {top}, which no file "
                        "the script adds defines")
            continue
        if mod.file.suffix not in TOP_SUFFIXES:
            report.fail("module", where, f"cell {inst}: module {top} is defined in "
                        f"{mod.file} — a module-reference top must be Verilog or VHDL, as "
                        "FINN's own wrappers are")
        stack = [mod]
        while stack:
            m = stack.pop()
            if m.name in seen:
                continue
            seen.add(m.name)
            report.counts["module_defs"] += 1
            for pkg in sorted(m.packages_used):
                p = index.get(pkg)
                if p is None or p.kind != "package":
                    report.fail("module", where, f"module {m.name} ({m.file}) uses package "
                                f"{pkg}, which no file the script adds defines")
            for child, _inst in m.instances:
                sub = index.get(child)
                if sub is not None:
                    stack.append(sub)
                elif LIBRARY_CELL.match(child):
                    report.counts["library_cells"] += 1
                else:
                    report.fail("module", where, f"module {child}, instantiated by {m.name} "
                                f"({m.file}), is defined in no file the script adds")
    for inst, vlnv in ips.items():
        if vlnv.startswith("xilinx.com:hls:"):
            report.unchecked.append(f"{where}: cell {inst} ({vlnv}): the IP Vitis HLS would "
                                    "synthesise; its ports are not checked")
        elif not vlnv.startswith("xilinx_finn:finn:"):
            report.unchecked.append(f"{where}: cell {inst} ({vlnv}): from Vivado's IP catalog")
    return index, modules


def _check_ports(report: DryRunReport, launch: Launch, calls: list[Call], index: _HdlIndex,
                 modules: dict[str, str]) -> None:
    where = launch.saved.name
    intf = launch.intf or {}

    def port(mod: Module, inst: str, name: str, direction: str, width: int | None = None):
        p = mod.ports.get(name)
        if p is None:
            report.fail("port", where, f"cell {inst} (module {mod.name}, {mod.file}) has no "
                        f"port {name}, which FINN's stitching connects")
            return
        if direction and p.direction != direction:
            report.fail("port", where, f"cell {inst}: port {mod.name}.{name} is "
                        f"{p.direction or 'undeclared'}, FINN connects it as {direction}")
            return
        w = mod.width(name)
        if width is not None and w is not None and w != width:
            report.fail("port", where, f"cell {inst}: port {mod.name}.{name} is {w} bits, "
                        f"FINN connects a {width}-bit stream")
            return
        report.counts["port_ok"] += 1

    for inst, top in modules.items():
        mod = index.get(top)
        names = intf.get(inst)
        if mod is None or names is None:
            continue
        streams = []
        for kind, sink in (("s_axis", True), ("m_axis", False)):
            for name, width in names.get(kind, []):
                streams.append(name)
                port(mod, inst, f"{name}_TDATA", "input" if sink else "output", width)
                port(mod, inst, f"{name}_TVALID", "input" if sink else "output")
                port(mod, inst, f"{name}_TREADY", "output" if sink else "input")
        for kind in ("axilite", "aximm"):
            for item in names.get(kind, []):
                name = item if isinstance(item, str) else item[0]
                streams.append(name)
                if not any(p.startswith(name + "_") for p in mod.ports):
                    report.fail("port", where, f"cell {inst} (module {mod.name}) has no ports "
                                f"of interface {name}")
        for name in names.get("ap_none", []):
            port(mod, inst, name, "")
        clk, rst = names.get("clk", [])[:1], names.get("rst", [])[:1]
        for c in clk + rst:
            port(mod, inst, c, "input")
        if clk and clk[0] in mod.ports:
            attrs = mod.ports[clk[0]].attrs
            m = re.search(r"ASSOCIATED_BUSIF\s+([\w:]+)", attrs)
            busif = set(m.group(1).split(":")) if m else set()
            missing = [s for s in streams if s not in busif]
            if "xilinx.com:signal:clock" not in attrs or missing:
                report.fail("port", where, f"cell {inst}: clock port {mod.name}.{clk[0]} "
                            f"({mod.file}) does not associate the interface(s) "
                            f"{', '.join(missing or streams)} (X_INTERFACE_INFO clock and "
                            "X_INTERFACE_PARAMETER ASSOCIATED_BUSIF, as FINN's wrappers do)")
            elif rst and not re.search(rf"ASSOCIATED_RESET\s+{rst[0]}\b", attrs):
                report.fail("port", where, f"cell {inst}: clock port {mod.name}.{clk[0]} "
                            f"does not name its reset {rst[0]} (ASSOCIATED_RESET)")
            else:
                report.counts["port_ok"] += 1
        if rst and rst[0] in mod.ports and \
                "POLARITY ACTIVE_LOW" not in mod.ports[rst[0]].attrs:
            report.fail("port", where, f"cell {inst}: reset port {mod.name}.{rst[0]} "
                        "does not declare POLARITY ACTIVE_LOW")
    # every pin the script names on a module cell exists on the module
    for cmd, suffixes in (("get_bd_intf_pins", ("_TDATA", "_TVALID", "_TREADY", "_")),
                          ("get_bd_pins", ("",))):
        for inst, pin in _pins(calls, cmd):
            mod = index.get(modules.get(inst, ""))
            if mod is None:
                continue
            ok = pin in mod.ports if cmd == "get_bd_pins" else \
                any(p.startswith(pin + "_") for p in mod.ports)
            if not ok:
                report.fail("port", where, f"the script connects {inst}/{pin}; module "
                            f"{mod.name} ({mod.file}) has no such "
                            f"{'port' if cmd == 'get_bd_pins' else 'interface'}")


def _exported(calls: list[Call]) -> tuple[str | None, set[str]]:
    """The VLNV a stitched-IP script packages and the interface/port names it exports: each
    ``make_bd_(intf_)pins_external inst/pin`` makes a port ``pin_<n>`` (Vivado numbers them per
    name from 0, as FINN's CreateStitchedIP assumes), ``set_property name NEW OLD`` renames."""
    names: set[str] = set()
    made: collections.Counter = collections.Counter()
    vlnv = None
    for c in calls:
        if c.name in ("make_bd_pins_external", "make_bd_intf_pins_external"):
            for p in _plain_args(c, {"-name"})[0]:
                base = p.rsplit("/", 1)[-1]
                names.add(f"{base}_{made[base]}")
                made[base] += 1
        elif c.name == "set_property" and len(c.args) >= 3 and c.args[0] == "name":
            names.discard(c.args[2])
            names.add(c.args[1])
        elif c.name == "ipx::package_project":
            _, opts = _plain_args(c, {"-root_dir", "-vendor", "-library", "-taxonomy",
                                      "-module"})
            vlnv = f"{opts.get('-vendor')}:{opts.get('-library')}:{opts.get('-module')}:1.0"
    return vlnv, names


def check_launches(report: DryRunReport, boundary: ToolBoundary, env: dict[str, str],
                   tclsh: Path, work: Path, deps: Path | None = None) -> None:
    """All checks (module docstring) on the scripts ``boundary`` recorded, into ``report``;
    ``deps`` is FINN's dependency folder (default: its settings')."""
    if deps is None:
        from finn.util.settings import get_settings

        deps = Path(get_settings().finn_deps).absolute()
    made = [m for la in boundary.launches for m in la.outputs]
    exported: dict[str, set[str]] = {}
    shell: list[tuple[Launch, list[Call]]] = []
    for launch in boundary.launches:
        where = launch.saved.name
        report.counts["tcl"] += 1
        if not launch.tcl.is_file():
            report.fail("file", where, f"{launch.command!r} sources {launch.tcl}, which does "
                        "not exist")
            continue
        res = check_tcl(launch.tcl, env, work, tclsh)
        for line, msg in res.syntax:
            report.fail("tcl", where, f"{launch.tcl.name} line {line}: {msg}")
        if res.error:
            msg, line, _info = res.error
            report.fail("tcl", where, f"{launch.tcl.name}"
                        f"{f' line {line}' if line else ''}: Tcl error: {msg}")
        if res.ok:
            report.counts["tcl_ok"] += 1
        hdl = _check_files(report, launch, res.calls, made, deps)
        if launch.kind == "stitched_ip":
            index, modules = _check_modules(report, launch, res.calls, hdl)
            _check_ports(report, launch, res.calls, index, modules)
            vlnv, names = _exported(res.calls)
            if vlnv:
                exported[vlnv] = names
        elif launch.kind == "zynq_shell":
            shell.append((launch, res.calls))
        if launch.kind == "hls_ipgen":
            report.unchecked.append(f"{where}: the HLS synthesis of node {launch.label} "
                                    f"({launch.tool}): C++ → IP")
    for launch, calls in shell:
        _, ips = _cells(calls)
        blocks = {inst: v for inst, v in ips.items() if v.startswith("xilinx_finn:finn:")}
        for inst, vlnv in blocks.items():
            if vlnv not in exported:
                report.fail("module", launch.saved.name, f"cell {inst} instantiates {vlnv}, "
                            "which no stitched-IP script of this hand-off packages")
        for cmd in ("get_bd_intf_pins", "get_bd_pins"):
            for inst, pin in _pins(calls, cmd):
                if inst in blocks and blocks[inst] in exported:
                    if pin in exported[blocks[inst]]:
                        report.counts["shell_pins"] += 1
                    else:
                        report.fail("port", launch.saved.name, f"the Zynq shell connects "
                                    f"{inst}/{pin}; the stitched block {blocks[inst]} exports "
                                    f"no such interface (it has "
                                    f"{', '.join(sorted(exported[blocks[inst]]))})")
    for p in boundary.waited:
        if not any(p == m or m in p.parents for m in made):
            report.fail("file", "FINN", f"FINN waited for {p}, which does not exist and no tool "
                        "run of this hand-off makes")
    if boundary.pending:
        report.notes.append(f"{len(boundary.pending)} HLS layer(s) ("
                            f"{', '.join(sorted(boundary.pending.values()))}) get their IP "
                            "from Vitis HLS; the dry run names those IP folders, never makes "
                            "them")
