# SPDX-License-Identifier: BSD-3-Clause
"""``FinnAccelerator``: the one generic driver for FINN dataflow accelerators under PYNQ.

Written against the real pynq API only (``pynq.Overlay``, ``pynq.allocate``, IP ``read``/
``write``, ``pynq.lib.dma.DMA``); which ``pynq.Device`` is active decides whether it talks to
the board or to the emulator in ``hw.driver.sim``. Everything shape- or type-related comes
from :class:`~hw.driver.meta.AccelMeta`.

Data path of :meth:`FinnAccelerator.execute` (each step is public so the profiler can time
it): validate + fold + pack -> copy into the DMA buffer + ``flush()`` -> run on buffers ->
``invalidate()`` + copy out -> unpack + unfold.

FINN IODMA protocol (``zynq-iodma``): HLS ``s_axi_control`` with 0x00 ap_ctrl (bit0 ap_start,
bit1 ap_done clear-on-read, bit2 ap_idle, bit3 ap_ready), 0x10/0x14 buffer address lo/hi
(32-bit writes), 0x1C repetitions (= batch). Every DMA must be idle before a start; odma is
armed first, then idma; ap_done of each odma is polled in exactly one place
(:meth:`_wait_done`). ``axi-dma``: recvchannel armed first, then sendchannel, chunked by
``buffer_max_size`` at DMA-width aligned offsets.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .clocks import configure_pl_clock
from .errors import (AcceleratorTimeout, BundleError, DeviceError, DriverError, InputError,
                     MissingToolError)
from .meta import AccelMeta, TensorSpec
from .pynq_compat import import_pynq
from .tensors import pack_inputs, unpack_outputs

log = logging.getLogger(__name__)

REG_CTRL, REG_ADDR_LO, REG_ADDR_HI, REG_REPS = 0x00, 0x10, 0x14, 0x1C
AP_START, AP_DONE, AP_IDLE, AP_READY = 0x1, 0x2, 0x4, 0x8
PHASES = ("pack", "copy_in_flush", "accelerator", "invalidate_copy_out", "unpack")


class FinnAccelerator:
    """Driver for one FINN accelerator described by ``meta`` inside a loaded ``overlay``.

    Args:
        meta: parsed ``accel_meta.json``.
        overlay: a ``pynq.Overlay`` whose HWH holds the DMAs the metadata names.
        batch_size: most samples per accelerator call (default ``meta.batch_max``); larger
            inputs are processed in chunks. Buffers grow lazily up to this size.
        timeout_s: give up polling ap_done after this long (``AcceleratorTimeout``).
        set_clock: set ``Clocks.fclk0_mhz`` to ``meta.driver_mhz`` (see ``clocks.py``).
    """

    def __init__(self, meta: AccelMeta, overlay: Any, *, batch_size: int | None = None,
                 timeout_s: float = 10.0, set_clock: bool = True) -> None:
        self.meta, self.overlay, self.timeout_s = meta, overlay, float(timeout_s)
        self.device = overlay.device
        self._pynq = import_pynq()
        self.backend = "sim" if getattr(self.device, "is_emulator", False) else "pynq"
        if meta.platform == "axi-dma" and (len(meta.inputs) != 1 or len(meta.outputs) != 1):
            raise DriverError("platform axi-dma supports exactly one input and one output")
        self._in_dmas = [self._ip(s) for s in meta.inputs]
        self._out_dmas = [self._ip(s) for s in meta.outputs]
        self._ibufs: list[Any] = []
        self._obufs: list[Any] = []
        self._capacity = 0
        #: lines about how it was opened (bundle integrity, emulator model), for the CLI
        self.notes: list[str] = []
        self.batch_size = batch_size or meta.batch_max
        self.clock = (configure_pl_clock(self._pynq, meta.driver_mhz, meta.synth_mhz,
                                         dict(getattr(overlay, "ip_dict", {})))
                      if set_clock else {"skipped": True})

    @classmethod
    def open(cls, meta: AccelMeta, *, bitfile: str | Path | None = None, device: Any = None,
             download: bool = True, **kwargs: Any) -> FinnAccelerator:
        """Load the overlay (``accel.bit`` + ``accel.hwh`` from the metadata) and wrap it.

        ``device`` selects the ``pynq.Device`` (default: pynq's active device, i.e. the
        board); the emulator passes itself and a placeholder ``bitfile``.
        """
        pynq = import_pynq()
        bit = Path(bitfile) if bitfile else meta.path("bitfile")
        if device is None:
            hwh = meta.path("hwh")
            for what, p in (("bitfile", bit), ("hwh", hwh)):
                if p is None or not p.is_file():
                    where = f"{p} not found" if p else f"not in the bundle (files.{what})"
                    raise BundleError(f"{what} {where}; a board run needs accel.bit and "
                                      "accel.hwh from Vivado (use --sim off-board)")
        if bit is None:
            raise BundleError("metadata names no bitfile")
        try:
            overlay = pynq.Overlay(str(bit), download=download, device=device)
        except RuntimeError as e:
            raise MissingToolError(f"cannot load the overlay ({e}); run on the board as root in "
                              "the PYNQ environment, or use --sim") from None
        return cls(meta, overlay, **kwargs)

    # -- setup -------------------------------------------------------------------------

    def _ip(self, spec: TensorSpec) -> Any:
        try:
            return getattr(self.overlay, spec.dma)
        except AttributeError:
            ips = ", ".join(sorted(getattr(self.overlay, "ip_dict", {}))) or "none"
            raise DeviceError(f"the overlay has no IP {spec.dma!r} for {spec.name} "
                              f"(IPs in the HWH: {ips})") from None

    @property
    def batch_size(self) -> int:
        """Most samples per accelerator call (at most ``meta.batch_max``)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, n: int) -> None:
        if not isinstance(n, (int, np.integer)) or not 1 <= n <= self.meta.batch_max:
            raise InputError(f"batch size must be an int in [1, {self.meta.batch_max}] "
                             f"(batch_max of the build), got {n!r}")
        self._batch_size = int(n)

    def ensure_buffers(self, n: int) -> None:
        """Allocate (or grow) the cacheable DMA buffers to hold ``n`` samples."""
        if n <= self._capacity:
            return
        self.free_buffers()
        alloc = self._pynq.allocate
        self._ibufs = [alloc(shape=(n, s.frame_bytes), dtype=np.uint8, cacheable=True,
                             target=self.device) for s in self.meta.inputs]
        self._obufs = [alloc(shape=(n, s.frame_bytes), dtype=np.uint8, cacheable=True,
                             target=self.device) for s in self.meta.outputs]
        self._capacity = n
        log.debug("allocated DMA buffers for %d samples", n)

    def free_buffers(self) -> None:
        """Free the DMA buffers (they are reallocated on the next call)."""
        for buf in self._ibufs + self._obufs:
            buf.freebuffer()
        self._ibufs, self._obufs, self._capacity = [], [], 0

    def close(self) -> None:
        """Release the DMA buffers."""
        self.free_buffers()

    def __enter__(self) -> FinnAccelerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- host-side steps ---------------------------------------------------------------

    def pack_inputs(self, x: Any) -> list[np.ndarray]:
        """Validate, fold and pack inputs -> one ``(n, frame_bytes)`` uint8 array per input."""
        return pack_inputs(self.meta, x)

    def write_inputs(self, packed: Sequence[np.ndarray]) -> None:
        """Copy packed rows into the DMA buffers and ``flush()`` the written range."""
        n = packed[0].shape[0]
        self.ensure_buffers(n)
        for buf, p in zip(self._ibufs, packed):
            view = buf[:n]
            np.copyto(view, p)
            view.flush()

    def read_outputs(self, n: int) -> list[np.ndarray]:
        """``invalidate()`` the output range, then copy it out of the DMA buffers."""
        out = []
        for buf in self._obufs:
            view = buf[:n]
            view.invalidate()
            host = np.empty(view.shape, np.uint8)
            np.copyto(host, view)
            out.append(host)
        return out

    def unpack_outputs(self, raw: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Unpack + unfold raw output rows into integer arrays of ``shape_normal``."""
        return unpack_outputs(self.meta, raw)

    # -- accelerator ---------------------------------------------------------------------

    def execute_on_buffers(self, n: int) -> None:
        """Run the accelerator on the first ``n`` samples already in the input buffers."""
        if not 1 <= n <= self._capacity:
            raise InputError(f"execute_on_buffers({n}): buffers hold {self._capacity} samples")
        if self.meta.platform == "axi-dma":
            self._run_axi_dma(int(n))
        else:
            self._run_iodma(int(n))

    def _run_iodma(self, n: int) -> None:
        for spec, dma in zip(self.meta.inputs + self.meta.outputs,
                             self._in_dmas + self._out_dmas):
            ctrl = dma.read(REG_CTRL)
            if not ctrl & AP_IDLE:
                raise DeviceError(f"{spec.dma} is not idle (ap_ctrl=0x{ctrl:x}); a previous "
                                  "run did not finish: reload the overlay")
        for dma, buf in zip(self._out_dmas, self._obufs):
            self._arm(dma, buf, n)
        for dma, buf in zip(self._in_dmas, self._ibufs):
            self._arm(dma, buf, n)
        self._wait_done()

    @staticmethod
    def _arm(dma: Any, buf: Any, n: int) -> None:
        addr = int(buf.device_address)
        dma.write(REG_ADDR_LO, addr & 0xFFFFFFFF)
        dma.write(REG_ADDR_HI, (addr >> 32) & 0xFFFFFFFF)
        dma.write(REG_REPS, n)
        dma.write(REG_CTRL, AP_START)

    def _wait_done(self) -> None:
        """The single place that polls ap_done (clear-on-read) of every output DMA."""
        deadline = time.perf_counter() + self.timeout_s
        for spec, dma in zip(self.meta.outputs, self._out_dmas):
            read, polls = dma.read, 0
            while not read(REG_CTRL) & AP_DONE:
                polls += 1
                if not polls & 0x3FF and time.perf_counter() > deadline:
                    raise AcceleratorTimeout(f"{spec.dma} did not report ap_done within "
                                             f"{self.timeout_s:g} s")

    def _axi_chunk_frames(self, dma: Any, fi: int, fo: int) -> int:
        params = getattr(dma, "description", {}).get("parameters", {})
        align = 1
        for ch in ("mm2s", "s2mm"):
            if not int(params.get(f"c_include_{ch}_dre", 0)):
                width = int(params.get(f"c_m_axi_{ch}_data_width", 32)) >> 3
                align = math.lcm(align, max(width, 1))
        step = math.lcm(align // math.gcd(align, fi), align // math.gcd(align, fo))
        limit = min(dma.buffer_max_size // fi, dma.buffer_max_size // fo)
        frames = (limit // step) * step
        if frames == 0:
            raise DeviceError(f"no DMA transfer fits: at {align} B alignment a chunk is a multiple "
                              f"of {step} frames ({step * fi} B in, {step * fo} B out), but the "
                              f"DMA's buffer_max_size is {dma.buffer_max_size} B")
        return frames

    def _run_axi_dma(self, n: int) -> None:
        dma, ibuf, obuf = self._in_dmas[0], self._ibufs[0], self._obufs[0]
        fi, fo = self.meta.inputs[0].frame_bytes, self.meta.outputs[0].frame_bytes
        chunk = self._axi_chunk_frames(dma, fi, fo)
        for s in range(0, n, chunk):
            k = min(chunk, n - s)
            dma.recvchannel.transfer(obuf, start=s * fo, nbytes=k * fo)
            dma.sendchannel.transfer(ibuf, start=s * fi, nbytes=k * fi)
            dma.sendchannel.wait()
            dma.recvchannel.wait()
            if dma.recvchannel.transferred != k * fo:
                raise DeviceError(f"axi_dma received {dma.recvchannel.transferred} B, "
                                  f"expected {k * fo} B")

    # -- end to end ----------------------------------------------------------------------

    def execute(self, x: Any, timings: dict[str, float] | None = None) -> Any:
        """Run inputs (``(N, *shape_normal[1:])``, or one sample) through the accelerator.

        Returns the integer output array (a list when the design has several outputs).
        If ``timings`` is given, the seconds spent in each of ``PHASES`` are added to it.
        """
        t = timings if timings is not None else {}
        t0 = time.perf_counter()
        packed = self.pack_inputs(x)
        t["pack"] = t.get("pack", 0.0) + time.perf_counter() - t0
        n, parts = packed[0].shape[0], []
        for s in range(0, n, self.batch_size):
            e = min(n, s + self.batch_size)
            steps = ((lambda: self.write_inputs([p[s:e] for p in packed]), "copy_in_flush"),
                     (lambda: self.execute_on_buffers(e - s), "accelerator"),
                     (lambda: parts.append(self.read_outputs(e - s)), "invalidate_copy_out"))
            for fn, phase in steps:
                t0 = time.perf_counter()
                fn()
                t[phase] = t.get(phase, 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        raw = [np.concatenate(chunks) for chunks in zip(*parts)]
        outs = self.unpack_outputs(raw)
        t["unpack"] = t.get("unpack", 0.0) + time.perf_counter() - t0
        return outs[0] if len(outs) == 1 else outs

    def dequantize(self, out: np.ndarray) -> np.ndarray:
        """Host-side ``y = out * scale (+ bias)`` from ``output_postprocess`` (float64)."""
        pp = self.meta.postprocess or {}
        y = np.asarray(out, dtype=np.float64)
        if pp.get("scale") is not None:
            y = y * np.asarray(pp["scale"], dtype=np.float64)
        if pp.get("bias") is not None:
            y = y + np.asarray(pp["bias"], dtype=np.float64)
        return y

    def classes(self, out: np.ndarray) -> np.ndarray:
        """Class predictions from a raw output: the value itself for one-value outputs
        (LabelSelect/TopK), else argmax of the dequantised output."""
        out = np.asarray(out)
        flat = out.reshape(out.shape[0], -1)
        pp = self.meta.postprocess or {}
        if flat.shape[1] == 1:
            return flat[:, 0].astype(np.int64)
        if not pp.get("argmax", True):
            raise DriverError("output_postprocess.argmax is false: the output holds no class "
                              "predictions; use execute() for raw outputs")
        return np.argmax(self.dequantize(flat), axis=1)

    def predict(self, x: Any) -> np.ndarray:
        """Class predictions for inputs ``x`` (first output)."""
        out = self.execute(x)
        return self.classes(out if isinstance(out, np.ndarray) else out[0])
