# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver/power.py with fake rails (pynq.get_rails is empty off-board)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from hw.driver.power import PowerMonitor, measure_energy, pynq_rails, rail_watts


class Sensor:
    def __init__(self, fn):
        self.fn = fn

    @property
    def value(self):
        return self.fn()


def test_energy_per_inference_from_idle_and_active_power():
    busy = {"on": False}
    rails = {"VCCINT": SimpleNamespace(power=Sensor(lambda: 3.0 if busy["on"] else 1.0)),
             "VCC3V3": SimpleNamespace(power=None, voltage=Sensor(lambda: 3.3),
                                       current=Sensor(lambda: 0.1)),
             "TEMP": SimpleNamespace(power=None, voltage=None, current=None)}

    def run_batch():
        busy["on"] = True
        time.sleep(0.01)  # 10 ms per batch of 100 -> about 10 000 inferences/s

    mon = PowerMonitor(rails, interval_s=0.005)
    assert sorted(mon.rails) == ["VCC3V3", "VCCINT"]  # TEMP has no power reading
    rep = measure_energy(mon, run_batch, batch=100, idle_s=0.1, active_s=0.3)
    assert rep["idle"]["mean_w"] == pytest.approx(1.33)
    assert rep["active"]["mean_w"] == pytest.approx(3.33, abs=0.3)  # first sample may be idle
    fps = rep["fps_during_active"]
    assert 5000 < fps < 11000
    assert rep["energy_per_inference_j"] == pytest.approx(
        (rep["active"]["mean_w"] - rep["idle"]["mean_w"]) / fps)
    assert rep["energy_per_inference_total_j"] == pytest.approx(rep["active"]["mean_w"] / fps)


def test_rail_selection_and_unavailable_reasons():
    rails = {"A": SimpleNamespace(power=Sensor(lambda: 2.0))}
    assert rail_watts(rails["A"]) == 2.0
    with pytest.raises(ValueError, match=r"rails \['B'\] not found; available: \['A'\]"):
        PowerMonitor(rails, names=["B"])
    with pytest.raises(ValueError, match="no rail with a power"):
        PowerMonitor({})
    assert pynq_rails(SimpleNamespace(get_rails=lambda: {})) == (
        {}, "pynq.get_rails() returned no rails (no libsensors/hwmon power monitors)")


def test_profile_with_rails_labels_the_power_section_sim(sim_acc):
    from hw.driver.profile import profile

    rails = {"R": SimpleNamespace(power=Sensor(lambda: 5.0))}
    rep = profile(sim_acc, batch_sizes=[4], repeats=2, warmup=1, latency_runs=3, rails=rails,
                  power_idle_s=0.05, power_active_s=0.05)
    assert rep["power"]["available"] and rep["power"]["backend"] == "sim"
    assert rep["power"]["energy_per_inference_j"] == pytest.approx(0.0, abs=1e-9)


def test_board_without_rails_says_so_before_touching_pynq():
    from hw.driver.profile import power_section

    acc = SimpleNamespace(backend="pynq", meta=SimpleNamespace(power_rails=False, board="kv260"),
                          _pynq=None)  # pynq would fail if it were touched
    rep = power_section(acc, 1, None, None, 0.0, 0.0)
    assert rep == {"available": False, "reason": "board kv260: its PYNQ image reports no power "
                   "rails (flows.boards); pass rails measured otherwise"}
