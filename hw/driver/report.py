# SPDX-License-Identifier: BSD-3-Clause
"""Write a profile report: ``profile.json``, ``profile.md`` and optional PNG plots.

Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written report that looks valid. matplotlib (Agg) is optional: without it the plots are
skipped and the report says so.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .accel import PHASES
from .errors import OutputError

log = logging.getLogger(__name__)


def check_output(path: Path, folder: bool = False) -> None:
    """``OutputError`` unless ``path`` can become an output file (``folder``: a folder),
    checked before the work that produces it."""
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"output folder {path} is a file; give a folder path")
    if not folder and path.is_dir():
        raise OutputError(f"output {path} is a folder; give a file path (e.g. {path}/preds.npy)")
    parent = path if folder else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {parent} is not a writable folder")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder + ``os.replace``;
    ``OutputError`` when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plots(rep: dict[str, Any], out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    tag = f"backend {rep['backend']}" + (" (emulator, not hardware)" if rep["backend"] == "sim"
                                           else "")
    files = []
    lat = rep["latency"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    us = {key: np.asarray(lat[key]) * 1e6 for key in ("samples_accelerator_s",
                                                       "samples_end_to_end_s")}
    lo, hi = min(v.min() for v in us.values()), max(v.max() for v in us.values())
    bins = np.geomspace(max(lo, 1e-3), max(hi, lo * 1.01, 1e-3), 60)
    for key, label in (("samples_accelerator_s", "accelerator call"),
                       ("samples_end_to_end_s", "end to end")):
        ax.hist(us[key], bins=bins, alpha=0.6, label=label)
    ax.set(xscale="log", xlabel="latency (us, log scale), batch 1", ylabel="runs",
           title=f"Latency - {tag}")
    ax.legend()
    fig.tight_layout()
    files.append(_save(fig, out / "latency.png", plt))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    tp = rep["throughput"]
    ax.plot([t["batch"] for t in tp], [t["fps"] for t in tp], "o-", label="measured")
    est = rep.get("estimated_hardware")
    if est:
        ax.axhline(est["fps"], ls="--", color="gray",
                   label=f"FINN estimate at {est['fclk_mhz']:g} MHz (not measured)")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="samples / s",
           title=f"Throughput - {tag}")
    ax.legend()
    fig.tight_layout()
    files.append(_save(fig, out / "throughput.png", plt))
    return files


def _save(fig: Any, path: Path, plt: Any) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path.name


def markdown(rep: dict[str, Any]) -> str:
    """Human-readable summary of a profile report."""
    sim = rep["backend"] == "sim"
    acc, clk = rep["accelerator"], rep["clock"]
    lines = [f"# Profile: {acc['model']} on {acc['board']} ({acc['platform']})", "",
             f"**Backend: {rep['backend']}** - {rep['backend_note']}.", "",
             *([f"Emulator model: {rep['sim']['model']} ({rep['sim']['model_note']}).", ""]
               if rep.get("sim", {}).get("model_note") else []),
             f"Created {rep['created']}; device: {rep['host']['device']}; "
             f"pynq {rep['host']['pynq']}, numpy {rep['host']['numpy']}.", "",
             "## Clocks", "",
             f"PL clock 0 requested {clk.get('requested_mhz')} MHz, read back "
             f"{clk.get('read_back_mhz')} MHz (design closed timing at {clk.get('synth_mhz')} "
             f"MHz; adjusted: {clk.get('adjusted')}); CPU {clk.get('cpu_mhz')} MHz."
             + (f" Error: {clk['error']}" if "error" in clk else ""), "",
             "## Throughput (accelerator call, median)", "",
             "| batch | median ms | samples/s | DRAM in MB/s | DRAM out MB/s |"
             + (" emulator model ms | emulator overhead ms |" if sim else ""),
             "|---|---|---|---|---|" + ("---|---|" if sim else "")]
    for t in rep["throughput"]:
        lines.append(f"| {t['batch']} | {t['median_s'] * 1e3:.3f} | {t['fps']:.1f} | "
                     f"{t['dram_in_mb_s']:.2f} | {t['dram_out_mb_s']:.2f} |"
                     + (f" {t['sim_model_s'] * 1e3:.3f} | {t['sim_overhead_s'] * 1e3:.3f} |"
                        if sim else ""))
    lat = rep["latency"]
    lines += ["", "## Latency, batch 1 (us)", "", "| path | p50 | p90 | p99 | max |",
              "|---|---|---|---|---|"]
    for key, label in (("accelerator_us", "accelerator call"), ("end_to_end_us", "end to end")):
        p = lat[key]
        lines.append(f"| {label} | {p['p50']:.1f} | {p['p90']:.1f} | {p['p99']:.1f} | "
                     f"{p['max']:.1f} |")
    lines += ["", "## Host-side breakdown of execute() (median ms)", "",
              "| batch | " + " | ".join(PHASES) + " |", "|---" * (len(PHASES) + 1) + "|"]
    for t in rep["throughput"]:
        lines.append(f"| {t['batch']} | " + " | ".join(f"{t['breakdown_ms'][p]:.3f}"
                                                        for p in PHASES) + " |")
    lines += ["", "## Power", ""] + _power_md(rep["power"])
    est = rep.get("estimated_hardware")
    if est:
        lines += ["", "## Estimated hardware time (FINN analytical estimate, not measured)", "",
                  f"{est['fps']:.1f} samples/s, latency {est['latency_us']:.1f} us at "
                  f"{est['fclk_mhz']} MHz ({est['cycles_per_frame']:.0f} cycles/frame)."
                  + (f" At the read-back clock {est['read_back_mhz']} MHz: "
                     f"{est['fps_at_read_back']:.1f} samples/s, latency "
                     f"{est['latency_us_at_read_back']:.1f} us." if "read_back_mhz" in est else "")]
    if rep.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in rep["plots"]]
    return "\n".join(lines) + "\n"


def _power_md(p: dict[str, Any]) -> list[str]:
    if not p.get("available"):
        return [f"Unavailable: {p.get('reason')}."]
    out = [f"Rails: {', '.join(p['rails'])}; idle {p['idle']['mean_w']:.3f} W, active "
           f"{p['active']['mean_w']:.3f} W at {p['fps_during_active']:.1f} samples/s "
           f"(batch {p['batch']})."]
    if "energy_per_inference_j" in p:
        out.append(f"Energy per inference: {p['energy_per_inference_j'] * 1e6:.3f} uJ dynamic, "
                   f"{p['energy_per_inference_total_j'] * 1e6:.3f} uJ total.")
    return out


def write_report(rep: dict[str, Any], out_dir: str | Path, plots: bool = True) -> list[Path]:
    """Write ``profile.json``, ``profile.md`` (+ PNGs) into ``out_dir``; return the paths."""
    out = Path(out_dir)
    check_output(out, folder=True)
    out.mkdir(parents=True, exist_ok=True)
    rep["plots"] = _plots(rep, out) if plots else []
    if plots and not rep["plots"]:
        rep["plots_note"] = "matplotlib not available: no plots"
    paths = [out / "profile.json", out / "profile.md"]
    atomic_write(paths[0], (json.dumps(rep, indent=2, default=float) + "\n").encode())
    atomic_write(paths[1], markdown(rep).encode())
    return paths + [out / p for p in rep["plots"]]
