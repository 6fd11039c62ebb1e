# SPDX-License-Identifier: BSD-3-Clause
"""Power and energy per inference from ``pynq.get_rails()`` (libsensors/PMBus on the board).

A sampler thread reads the chosen rails every ``interval_s`` while the main thread either
idles or keeps the accelerator busy; ``energy_per_inference = (P_active - P_idle) / FPS``
(dynamic energy) and ``P_active / FPS`` (total). Rails are duck-typed (``rail.power.value``,
or ``voltage.value * current.value``), so tests can pass fakes. Rail names are board-specific
(not verified for the ZCU104 without a board): list them with ``pynq.get_rails()`` and pick
with ``names``; by default every rail with a power reading is summed, which double counts
when a board-input rail also feeds the others.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any


def rail_watts(rail: Any) -> float | None:
    """Watts of one rail, or None when it has neither power nor voltage+current."""
    if getattr(rail, "power", None) is not None:
        return float(rail.power.value)
    if getattr(rail, "voltage", None) is not None and getattr(rail, "current", None) is not None:
        return float(rail.voltage.value) * float(rail.current.value)
    return None


class PowerMonitor:
    """Samples the total power of ``rails`` (name -> rail) in a background thread."""

    def __init__(self, rails: dict[str, Any], names: list[str] | None = None,
                 interval_s: float = 0.05) -> None:
        usable = {k: r for k, r in rails.items() if rail_watts(r) is not None}
        if names:
            missing = sorted(set(names) - set(usable))
            if missing:
                raise ValueError(f"rails {missing} not found; available: {sorted(usable)}")
            usable = {k: usable[k] for k in names}
        if not usable:
            raise ValueError("no rail with a power (or voltage and current) reading")
        self.rails, self.interval_s = usable, interval_s

    def measure(self, duration_s: float,
                work: Callable[[], None] | None = None) -> dict[str, Any]:
        """Sample for ``duration_s`` while calling ``work()`` in a loop (or sleeping)."""
        samples: list[dict[str, float]] = []
        stop = threading.Event()

        def sampler() -> None:
            while not stop.is_set():
                samples.append({k: rail_watts(r) or 0.0 for k, r in self.rails.items()})
                stop.wait(self.interval_s)

        thread = threading.Thread(target=sampler, daemon=True)
        calls, t0 = 0, time.perf_counter()
        thread.start()
        try:
            while time.perf_counter() - t0 < duration_s:
                if work is None:
                    time.sleep(min(self.interval_s, duration_s))
                else:
                    work()
                    calls += 1
        finally:
            stop.set()
            thread.join()
        elapsed = time.perf_counter() - t0
        totals = [sum(s.values()) for s in samples]
        return {"seconds": elapsed, "calls": calls, "samples": len(samples),
                "mean_w": statistics.fmean(totals) if totals else float("nan"),
                "stdev_w": statistics.pstdev(totals) if len(totals) > 1 else 0.0,
                "per_rail_mean_w": {k: statistics.fmean(s[k] for s in samples)
                                    for k in self.rails} if samples else {}}


def measure_energy(monitor: PowerMonitor, run_batch: Callable[[], None], batch: int,
                   idle_s: float = 5.0, active_s: float = 10.0) -> dict[str, Any]:
    """Idle vs active power and energy per inference at ``batch`` samples per call."""
    idle = monitor.measure(idle_s)
    active = monitor.measure(active_s, run_batch)
    fps = active["calls"] * batch / active["seconds"] if active["seconds"] > 0 else 0.0
    rep: dict[str, Any] = {"available": True, "rails": sorted(monitor.rails),
                           "interval_s": monitor.interval_s, "batch": batch, "idle": idle,
                           "active": active, "fps_during_active": fps}
    if fps > 0:
        rep["energy_per_inference_j"] = (active["mean_w"] - idle["mean_w"]) / fps
        rep["energy_per_inference_total_j"] = active["mean_w"] / fps
    return rep


def pynq_rails(pynq: Any) -> tuple[dict[str, Any], str]:
    """``(rails, reason)`` from ``pynq.get_rails()``; empty rails come with the reason."""
    try:
        rails = dict(pynq.get_rails())
    except (OSError, RuntimeError, AttributeError) as e:
        return {}, f"pynq.get_rails() failed: {type(e).__name__}: {e}"
    if not rails:
        return {}, "pynq.get_rails() returned no rails (no libsensors/hwmon power monitors)"
    return rails, ""
