# SPDX-License-Identifier: BSD-3-Clause
"""Set and report the PL clock (``pynq.ps.Clocks.fclk0_mhz``) from the build metadata.

FINN's Zynq shell feeds PL0 into a clocking wizard that makes the design clock, so PL0 must
stay at the wizard's 100 MHz reference (``accel_meta.json`` then says ``driver_mhz: 100`` and
``synth_mhz`` is the design clock); a design clocked by PL0 directly has ``driver_mhz`` equal
to ``synth_mhz`` (FINN's older drivers forced 100 MHz there too, finn#876). This driver
requests the metadata's ``clock.driver_mhz`` and reports both the
requested and the read-back value, which is quantised by the PS clock dividers (100 MHz
reads back as 99.999 on a ZynqMP). pynq picks the *nearest* divider product, which can be
above the request (200 MHz from a 1500 MHz IOPLL gives 214.28 MHz); since that would clock
the design faster than it closed timing at, the request is lowered until the read-back is
at most ``synth_mhz``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

log = logging.getLogger(__name__)

_TOL = 1e-3  # relative slack before a read-back counts as faster than synth_mhz


def _clk_wiz_mhz(ip_dict: dict) -> dict[str, float]:
    """Accelerator clocks of clocking wizards in the HWH (finn-plus designs use clk_wiz)."""
    out: dict[str, float] = {}
    for name, ip in ip_dict.items():
        if "clk_wiz" not in str(ip.get("type", "")):
            continue
        params = ip.get("parameters", {})
        for key in ("CLKOUT1_REQUESTED_OUT_FREQ", "CLKOUT1_OUT_FREQ"):
            if key in params:
                try:
                    out[name] = float(params[key])
                except (TypeError, ValueError):
                    continue
                break
    return out


def _limit_mhz(requested_mhz: float, synth_mhz: float) -> float:
    """The highest PL0 read-back allowed. PL0 *is* the design clock when the metadata asks for
    the design clock on it (never above ``synth_mhz``); otherwise it is a clocking wizard's
    reference (FINN's Zynq shell: 100 MHz), which must not exceed the request."""
    same = abs(float(requested_mhz) - float(synth_mhz)) <= 1e-9 * float(synth_mhz)
    return float(synth_mhz) if same else float(requested_mhz)


def configure_pl_clock(pynq: Any, requested_mhz: float, synth_mhz: float,
                       ip_dict: dict | None = None) -> dict[str, Any]:
    """Set PL clock 0 to ``requested_mhz`` (never above the limit of :func:`_limit_mhz`) and
    report it.

    Returns a dict with ``requested_mhz``, ``read_back_mhz``, ``before_mhz``, ``synth_mhz``,
    ``adjusted`` (request lowered to stay <= synth), ``cpu_mhz``, ``clk_wiz_mhz`` and
    ``pynq_warnings``. On failure the dict has ``error`` and the clock is left untouched.
    """
    clocks = pynq.ps.Clocks
    rep: dict[str, Any] = {"source": "pynq.ps.Clocks.fclk0_mhz (PS PL0 reference clock)",
                           "requested_mhz": float(requested_mhz), "synth_mhz": float(synth_mhz),
                           "clk_wiz_mhz": _clk_wiz_mhz(ip_dict or {})}
    try:
        rep["before_mhz"] = clocks.fclk0_mhz
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            limit = _limit_mhz(requested_mhz, synth_mhz)
            req = min(float(requested_mhz), limit)
            clocks.fclk0_mhz = req
            got = clocks.fclk0_mhz
            for _ in range(40):
                if got <= limit * (1 + _TOL):
                    break
                req *= 0.98
                clocks.fclk0_mhz = req
                got = clocks.fclk0_mhz
        rep.update(read_back_mhz=got, set_request_mhz=round(req, 6),
                   adjusted=abs(req - requested_mhz) > 1e-9, cpu_mhz=clocks.cpu_mhz,
                   pynq_warnings=sorted({str(w.message) for w in caught}))
    except (RuntimeError, ValueError, OSError, AttributeError) as e:
        log.warning("could not set the PL clock: %s", e)
        rep["error"] = f"{type(e).__name__}: {e}"
        return rep
    if rep["adjusted"]:
        log.warning("PL clock: requested %.3f MHz, set %.3f MHz (nearest divider at or below "
                    "%.3f MHz)", requested_mhz, got, limit)
    else:
        log.info("PL clock: requested %.3f MHz, read back %.3f MHz", requested_mhz, got)
    return rep
