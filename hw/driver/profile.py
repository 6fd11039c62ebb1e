# SPDX-License-Identifier: BSD-3-Clause
"""Measure a ``FinnAccelerator``: throughput, latency, host breakdown, DRAM bandwidth, clocks,
power, plus FINN's analytical estimates where the metadata has them.

All times use ``time.perf_counter``. Throughput is the median over ``repeats`` timed
``execute_on_buffers`` calls after ``warmup`` calls; latency is batch 1, for the accelerator
call alone and for ``execute`` end to end. With FINN IODMAs, DMA transfer and compute overlap
inside the dataflow pipeline, so "accelerator" is one number (ap_start -> ap_done seen by
the host). Every section carries the backend: ``sim`` numbers are emulator host times, never
hardware measurements.
"""

from __future__ import annotations

import datetime
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .accel import PHASES, FinnAccelerator
from .errors import InputError
from .meta import AccelMeta
from .power import PowerMonitor, measure_energy, pynq_rails
from .tensors import pack_inputs, unpack_outputs

REPORT_SCHEMA = 1


def percentiles_us(times_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean/min of ``times_s`` in microseconds."""
    a = np.asarray(times_s, dtype=np.float64) * 1e6
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()),
            "mean": float(a.mean()), "min": float(a.min()), "runs": int(a.size)}


def sample_inputs(meta: AccelMeta, n: int, golden: np.ndarray | None = None,
                  seed: int = 0) -> list[np.ndarray]:
    """``n`` valid samples per input: golden rows cycled, else uniform in the datatype range."""
    rng, out = np.random.default_rng(seed), []
    for i, spec in enumerate(meta.inputs):
        shape = (n, *spec.shape_normal[1:])
        if golden is not None and i == 0:
            g = np.asarray(golden).reshape(-1, *spec.shape_normal[1:])
            out.append(g[np.arange(n) % g.shape[0]])
        elif spec.dtype.bipolar:
            out.append(rng.choice(np.array([-1, 1], np.int8), size=shape))
        else:
            out.append(rng.integers(spec.dtype.min, spec.dtype.max, size=shape, endpoint=True,
                                    dtype=np.int64).astype(spec.dtype.container()))
    return out


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _sim_model_s(acc: FinnAccelerator) -> float:
    return float(getattr(acc.device, "stats", {}).get("model_s", 0.0))


def throughput_at(acc: FinnAccelerator, xs: list[np.ndarray], repeats: int,
                  warmup: int) -> dict[str, Any]:
    """Timed ``execute_on_buffers`` at one batch size plus an end-to-end phase breakdown."""
    b = xs[0].shape[0]
    acc.write_inputs(acc.pack_inputs(xs))
    for _ in range(warmup):
        acc.execute_on_buffers(b)
    times, model = [], []
    for _ in range(repeats):
        m0, t0 = _sim_model_s(acc), time.perf_counter()
        acc.execute_on_buffers(b)
        times.append(time.perf_counter() - t0)
        model.append(_sim_model_s(acc) - m0)
    med = statistics.median(times)
    bytes_in = b * sum(s.frame_bytes for s in acc.meta.inputs)
    bytes_out = b * sum(s.frame_bytes for s in acc.meta.outputs)
    rep = {"backend": acc.backend, "batch": b, "repeats": repeats, "warmup": warmup,
           "median_s": med, "min_s": min(times), "max_s": max(times), "fps": b / med,
           "dram_in_mb_s": bytes_in / med / 1e6, "dram_out_mb_s": bytes_out / med / 1e6,
           "bytes_in": bytes_in, "bytes_out": bytes_out}
    if acc.backend == "sim":
        rep.update(sim_model_s=statistics.median(model),
                   sim_overhead_s=statistics.median(t - m for t, m in zip(times, model)))
    phases: list[dict[str, float]] = []
    for _ in range(repeats):
        t: dict[str, float] = {}
        acc.execute(xs if len(xs) > 1 else xs[0], timings=t)
        phases.append(t)
    med_ms = {p: statistics.median(t.get(p, 0.0) for t in phases) * 1e3 for p in PHASES}
    total = sum(med_ms.values()) or 1.0
    rep["breakdown_ms"] = med_ms
    rep["breakdown_share"] = {p: v / total for p, v in med_ms.items()}
    return rep


def latency(acc: FinnAccelerator, x1: list[np.ndarray], runs: int, warmup: int) -> dict[str, Any]:
    """Batch-1 latency percentiles: accelerator call alone and ``execute`` end to end."""
    acc.write_inputs(acc.pack_inputs(x1))
    for _ in range(warmup):
        acc.execute_on_buffers(1)
    acc_t = _timed(lambda: acc.execute_on_buffers(1), runs)
    arg = x1 if len(x1) > 1 else x1[0]
    e2e_t = _timed(lambda: acc.execute(arg), runs)
    return {"backend": acc.backend, "batch": 1, "accelerator_us": percentiles_us(acc_t),
            "end_to_end_us": percentiles_us(e2e_t), "samples_accelerator_s": acc_t,
            "samples_end_to_end_s": e2e_t}


def estimates(acc: FinnAccelerator, batch_sizes: Sequence[int]) -> dict[str, Any] | None:
    """FINN analytical estimates from the metadata, labelled as such (not measured)."""
    est = acc.meta.estimates
    if not est or "cycles_per_frame" not in est:
        return None
    f = float(est.get("fclk_mhz", acc.meta.synth_mhz))
    cpf, lat = float(est["cycles_per_frame"]), float(est.get("latency_cycles", est["cycles_per_frame"]))
    rep = {"source": "FINN analytical estimate (accel_meta.json 'estimates'); not measured",
           "fclk_mhz": f, "cycles_per_frame": cpf, "latency_cycles": lat,
           "latency_us": lat / f, "fps": f * 1e6 / cpf,
           "per_batch_ms": {str(b): (lat + (b - 1) * cpf) / f / 1e3 for b in batch_sizes}}
    got = acc.clock.get("read_back_mhz")
    if got and abs(got - f) > 1e-3:  # the same cycle counts at the clock actually set
        rep.update(read_back_mhz=got, fps_at_read_back=got * 1e6 / cpf,
                   latency_us_at_read_back=lat / got)
    return rep


def power_section(acc: FinnAccelerator, batch: int, rails: dict | None, names: list[str] | None,
                  idle_s: float, active_s: float) -> dict[str, Any]:
    """Energy per inference through the board's rails, or why it is unavailable."""
    if rails is None:
        if acc.backend == "sim":
            return {"available": False, "reason": "backend sim: the emulator has no power rails"}
        if acc.meta.power_rails is False:
            return {"available": False, "reason": f"board {acc.meta.board}: its PYNQ image "
                    "reports no power rails (flows.boards); pass rails measured otherwise"}
        rails, reason = pynq_rails(acc._pynq)
        if not rails:
            return {"available": False, "reason": reason}
    try:
        mon = PowerMonitor(rails, names)
    except ValueError as e:
        return {"available": False, "reason": str(e)}
    xs = sample_inputs(acc.meta, batch)
    acc.write_inputs(acc.pack_inputs(xs))
    rep = measure_energy(mon, lambda: acc.execute_on_buffers(batch), batch, idle_s, active_s)
    rep["backend"] = acc.backend
    return rep


def profile(acc: FinnAccelerator, *, batch_sizes: Sequence[int] = (1, 16, 256),
            repeats: int = 10, warmup: int = 2, latency_runs: int = 1000,
            golden: np.ndarray | None = None, rails: dict | None = None,
            rail_names: list[str] | None = None, power_idle_s: float = 5.0,
            power_active_s: float = 10.0) -> dict[str, Any]:
    """Run every measurement and return the report dict (see ``report.py`` for files)."""
    bad = [b for b in batch_sizes if not 1 <= b <= acc.meta.batch_max]
    if bad or repeats < 1 or latency_runs < 1 or warmup < 0 or not batch_sizes:
        raise InputError(f"batch sizes must lie in [1, {acc.meta.batch_max}] (got "
                         f"{bad or list(batch_sizes)}); repeats and latency runs must be >= 1, "
                         "warmup >= 0")
    if not (power_idle_s >= 0 and power_active_s > 0):
        raise InputError(f"power windows must be idle >= 0 s and active > 0 s, got "
                         f"{power_idle_s} and {power_active_s}")
    sizes = sorted(set(int(b) for b in batch_sizes))
    acc.batch_size = max(sizes)
    acc.ensure_buffers(max(sizes))
    tput = [throughput_at(acc, sample_inputs(acc.meta, b, golden), repeats, warmup) for b in sizes]
    lat = latency(acc, sample_inputs(acc.meta, 1, golden), latency_runs, warmup)
    power = power_section(acc, max(sizes), rails, rail_names, power_idle_s, power_active_s)
    rep: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA, "kind": "finn-accelerator-profile",
        "backend": acc.backend,
        "backend_note": ("emulator on the host CPU: host-side times of the emulated device, "
                         "NOT hardware measurements") if acc.backend == "sim"
        else "measured on the board through pynq",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "machine": platform.machine(),
                 "numpy": np.__version__, "pynq": getattr(acc._pynq, "__version__", "?"),
                 "device": getattr(acc.device, "name", type(acc.device).__name__)},
        "accelerator": {"model": acc.meta.model, "board": acc.meta.board,
                        "platform": acc.meta.platform, "fpga_part": acc.meta.fpga_part,
                        "inputs": [_io(s) for s in acc.meta.inputs],
                        "outputs": [_io(s) for s in acc.meta.outputs]},
        "clock": acc.clock, "throughput": tput, "latency": lat, "power": power,
        "estimated_hardware": estimates(acc, sizes)}
    if acc.backend == "sim":
        rep["sim"] = {"model": type(acc.device.model).__name__,
                      "model_note": getattr(acc.device.model, "label", ""),
                      "codec": getattr(getattr(acc.device.model, "codec", None), "name", None),
                      "stats": dict(acc.device.stats), "warnings": list(acc.device.warnings)}
    return rep


def packing_throughput(meta: AccelMeta, batch_sizes: Sequence[int], repeats: int = 20,
                       containers: Sequence[str] = ("native", "float32")) -> list[dict[str, Any]]:
    """Host packing speed for the metadata's shapes (no device needed).

    ``pack`` = validate + fold + pack of inputs held in ``container`` (the datatype's own
    integer dtype, or FINN-style float32); ``unpack`` = unpack + unfold of packed outputs.
    MB/s are packed bytes (what the DMA moves) per second; median of ``repeats``.
    """
    rows = []
    for b in batch_sizes:
        for cont in containers:
            xs = sample_inputs(meta, b)
            if cont == "float32":
                xs = [x.astype(np.float32) for x in xs]
            arg = xs if len(xs) > 1 else xs[0]
            packed = pack_inputs(meta, arg)
            t_pack = statistics.median(_timed(lambda: pack_inputs(meta, arg), repeats))
            raw = [np.random.default_rng(1).integers(0, 256, (b, s.frame_bytes), dtype=np.uint8)
                   for s in meta.outputs]
            t_unp = statistics.median(_timed(lambda: unpack_outputs(meta, raw), repeats))
            nin, nout = sum(p.nbytes for p in packed), sum(r.nbytes for r in raw)
            rows.append({"batch": b, "container": cont, "pack_ms": t_pack * 1e3,
                         "pack_mb_s": nin / t_pack / 1e6, "pack_samples_s": b / t_pack,
                         "unpack_ms": t_unp * 1e3, "unpack_mb_s": nout / t_unp / 1e6,
                         "unpack_samples_s": b / t_unp, "packed_in_bytes": nin,
                         "packed_out_bytes": nout})
    return rows


def _io(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "dma": spec.dma, "datatype": spec.dtype.name,
            "shape_normal": list(spec.shape_normal), "frame_bytes": spec.frame_bytes}
