# SPDX-License-Identifier: BSD-3-Clause
"""``SimZynqMPDevice``: a strict ``pynq.Device`` emulating a ZynqMP board with a FINN design.

It is selected like any pynq device (``Overlay(bit, device=dev)``,
``allocate(..., target=dev)``), so the driver under test runs its real pynq code paths:
``Overlay`` construction and driver binding, ``DefaultIP.read/write``, ``pynq.lib.dma.DMA``,
and ``pynq.ps.Clocks`` arithmetic on emulated CRL/CRF registers (100 MHz reads back as
99.999). ``allocate`` returns a ``SimBuffer`` (``buffer.py``): the PynqBuffer API over the
emulated cache, every CPU read checked. Behind the DMAs an accelerator model
(``models.py``) transforms exactly the packed bytes the DMAs read from emulated DDR.

Strictness (each raises a ``SimError`` subclass; see ``memory.py`` and ``registers.py``):
missing ``flush()`` before ap_start, CPU reads without ``invalidate()``, DMA addresses outside
buffers or misaligned, ap_start while busy, 64-bit or non-int values through 32-bit
registers, mismatched repetitions, and polling for completion that can never come.

Every time measured against this device is host time of an emulator: label it ``sim``.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
import time
import weakref
from collections import deque
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import MetadataError
from ..meta import AccelMeta
from ..pynq_compat import import_pynq
from .errors import SimModelError, SimRegisterError
from .memory import SimMemory
from .models import AcceleratorModel
from .registers import CRF_APB, CRF_RESET, CRL_APB, CRL_RESET, AxiDmaRegs, ClockWindow, IodmaRegs

log = logging.getLogger(__name__)
pynq = import_pynq()
IP_BASE, IP_STRIDE = 0xA000_0000, 0x1_0000  # ZynqMP M_AXI_HPM0_FPD
_ids = itertools.count()


def _axi_params(width_bytes: int, length_width: int) -> dict[str, str]:
    bits = str(width_bytes * 8)
    return {"c_include_sg": "0", "c_micro_dma": "0", "c_sg_length_width": str(length_width),
            "c_include_mm2s": "1", "c_include_s2mm": "1", "c_m_axi_mm2s_data_width": bits,
            "c_m_axi_s2mm_data_width": bits, "c_include_mm2s_dre": "0",
            "c_include_s2mm_dre": "0"}


class SimZynqMPDevice(pynq.Device):
    """Emulated ZynqMP + FINN accelerator (see the module docstring).

    Args:
        meta: the accelerator metadata (DMA names, frame sizes, clock).
        model: packed-bytes accelerator model (``models.py``).
        hang_polls: completion polls before ``SimHangError`` (real hardware would hang).
        dma_align: required DMA address alignment for the IODMAs (A53 cache line: 64 B).
        axi_length_width: ``c_sg_length_width`` of the emulated AXI DMA.
        axi_width_bytes: AXI DMA memory-map data width in bytes (its alignment).
        ddr_base: bus address of the emulated DDR window; 0x8_0000_0000 (ZynqMP high DDR)
            makes buffer addresses need both the lo and the hi address register.
    """

    is_emulator = True

    def __init__(self, meta: AccelMeta, model: AcceleratorModel, *, hang_polls: int = 100_000,
                 dma_align: int = 64, axi_length_width: int = 26, axi_width_bytes: int = 8,
                 ddr_base: int = 0x1000_0000):
        super().__init__(tag=f"sim{next(_ids)}")
        self.name = f"emulated {meta.board} (FINN {meta.platform})"
        self.arch, self.capabilities = "aarch64", {"REMOTE": True}
        self.meta, self.model, self.hang_polls, self.dma_align = meta, model, hang_polls, dma_align
        self.memory = SimMemory(self, base=ddr_base)
        self.timestamp, self.bitfile_name = "", None
        self.stats = {"runs": 0, "frames": 0, "model_s": 0.0}
        self.events: deque[tuple] = deque(maxlen=1000)
        self.warnings: list[str] = []
        self.windows: dict[int, Any] = {CRL_APB: ClockWindow("CRL_APB", CRL_APB, CRL_RESET),
                                        CRF_APB: ClockWindow("CRF_APB", CRF_APB, CRF_RESET)}
        self.ip_dict: dict[str, dict] = {}
        self._in_fifo, self._out_fifo = bytearray(), bytearray()
        if meta.platform == "axi-dma":
            self._build_axi_dma(axi_length_width, axi_width_bytes)
        else:
            self._build_iodmas()
        self._tmp = tempfile.mkdtemp(prefix="finn-sim-")
        weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self.placeholder_bitfile = f"{self._tmp}/accel.bit"
        with open(self.placeholder_bitfile, "wb") as f:
            f.write(b"emulated bitstream: never downloaded to hardware\n")

    # -- construction --------------------------------------------------------------------

    def _add_ip(self, name: str, vlnv: str, window: Any, params: dict | None = None) -> None:
        self.windows[window.base] = window
        self.ip_dict[name] = {"fullpath": name, "type": vlnv, "phys_addr": window.base,
                              "addr_range": window.length, "parameters": params or {},
                              "interrupts": {}, "gpio": {}, "state": None}

    def _build_iodmas(self) -> None:
        self.idmas, self.odmas, base = [], [], IP_BASE
        for direction, specs, out in (("in", self.meta.inputs, self.idmas),
                                      ("out", self.meta.outputs, self.odmas)):
            for i, spec in enumerate(specs):
                if spec.dma in self.ip_dict:
                    raise MetadataError(f"DMA name {spec.dma!r} used twice")
                w = IodmaRegs(self, spec.dma, base, direction, i)
                self._add_ip(spec.dma, f"xilinx.com:hls:{spec.dma}:1.0", w)
                out.append(w)
                base += IP_STRIDE

    def _build_axi_dma(self, length_width: int, width_bytes: int) -> None:
        name = self.meta.inputs[0].dma
        if self.meta.outputs[0].dma != name:
            raise MetadataError("platform axi-dma: input and output must name the same axi_dma "
                                f"IP, got {name!r} and {self.meta.outputs[0].dma!r}")
        self.axi = AxiDmaRegs(self, name, IP_BASE, length_width, width_bytes)
        self._add_ip(name, "xilinx.com:ip:axi_dma:7.1", self.axi,
                     _axi_params(width_bytes, length_width))

    # -- the pynq.Device contract --------------------------------------------------------

    def mmap(self, base_addr: int, length: int) -> Any:
        w = self.windows.get(base_addr)
        if w is None or length > w.length:
            raise SimRegisterError(f"no emulated register window at 0x{base_addr:x} "
                                   f"(+0x{length:x})")
        return w

    def allocate(self, shape: Any, dtype: Any, cacheable: bool = True, **kwargs: Any) -> Any:
        buf = self.memory.allocate(shape, dtype, cacheable=bool(cacheable))
        self.events.append(("allocate", buf.device_address, tuple(np.atleast_1d(shape))))
        return buf

    def flush(self, bo: int, offset: int, ptr: int, size: int) -> None:
        self.memory.flush(bo, offset, size)

    def invalidate(self, bo: int, offset: int, ptr: int, size: int) -> None:
        self.memory.invalidate(bo, offset, size)

    def get_bitfile_metadata(self, bitfile_name: str) -> Any:
        clock = {0: {"enable": 1, "frequency": self.meta.synth_mhz}}
        return SimpleNamespace(ip_dict=self.ip_dict, gpio_dict={}, interrupt_controllers={},
                               interrupt_pins={}, hierarchy_dict={}, mem_dict={},
                               clock_dict=clock, systemgraph=None)

    def set_bitfile_name(self, bitfile_name: str) -> None:
        # pynq caches one Clocks implementation per process; bind it to this device.
        if "_real_instance" in vars(pynq.ps.Clocks):
            delattr(pynq.ps.Clocks, "_real_instance")
        super().set_bitfile_name(bitfile_name)

    def download(self, bitstream: Any, parser: Any = None) -> None:
        self.events.append(("download", bitstream.bitfile_name))
        self.post_download(bitstream, parser)

    def exists_file(self, path: str) -> Any:  # asked by pynq.ps._is_versal for REMOTE devices
        return SimpleNamespace(exists=False)

    def read_file(self, path: str) -> bytes:
        return b""

    # -- accelerator -----------------------------------------------------------------------

    def _run_model(self, inputs: list[np.ndarray], n: int) -> list[np.ndarray]:
        t0 = time.perf_counter()
        outs = self.model(inputs)
        self.stats["model_s"] += time.perf_counter() - t0
        if len(outs) != len(self.meta.outputs):
            raise SimModelError(f"model returned {len(outs)} outputs for "
                                f"{len(self.meta.outputs)} DMAs")
        for spec, o in zip(self.meta.outputs, outs):
            if o.dtype != np.uint8 or o.shape != (n, spec.frame_bytes):
                raise SimModelError(f"model output for {spec.dma}: {o.dtype} {o.shape}, "
                                    f"expected uint8 {(n, spec.frame_bytes)}")
        self.stats["runs"] += 1
        self.stats["frames"] += n
        return outs

    def on_iodma_start(self, dma: IodmaRegs) -> None:
        """Called on each ap_start; runs the model once every IODMA is started."""
        self.events.append(("ap_start", dma.name, dma.addr, dma.reps))
        if dma.direction == "in" and not all(o.busy for o in self.odmas):
            self.warnings.append(f"{dma.name} started before every odma was armed "
                                 "(FINN drivers arm odma first)")
        dmas = self.idmas + self.odmas
        if not all(d.busy for d in dmas):
            return
        reps = {d.name: d.reps for d in dmas}
        if len(set(reps.values())) != 1:
            raise SimRegisterError(f"repetition registers differ between DMAs: {reps}")
        n = dma.reps
        ins = [self.memory.device_read(d.addr, n * s.frame_bytes, self.dma_align, d.name)
               .reshape(n, s.frame_bytes) for d, s in zip(self.idmas, self.meta.inputs)]
        for d, out in zip(self.odmas, self._run_model(ins, n)):
            self.memory.device_write(d.addr, out, self.dma_align, d.name)
        for d in dmas:
            d.finish()

    def stream_in(self, data: np.ndarray) -> None:
        """AXI DMA MM2S: bytes enter the accelerator's input stream."""
        self._in_fifo += data.tobytes()

    def pump_stream(self) -> None:
        """Run whole frames through the model; complete an armed S2MM when enough is out."""
        fi = self.meta.inputs[0].frame_bytes
        k = len(self._in_fifo) // fi
        if k:
            frames = np.frombuffer(bytes(self._in_fifo[:k * fi]), np.uint8).reshape(k, fi)
            del self._in_fifo[:k * fi]
            self._out_fifo += self._run_model([frames], k)[0].tobytes()
        if self.axi.armed and len(self._out_fifo) >= self.axi.armed[1]:
            addr, nbytes = self.axi.armed
            data = np.frombuffer(bytes(self._out_fifo[:nbytes]), np.uint8)
            del self._out_fifo[:nbytes]
            self.memory.device_write(addr, data, self.axi.align, f"{self.axi.name} S2MM")
            self.axi.complete_s2mm(nbytes)

    def hang_reason(self, window: Any) -> str:
        """Why a polled completion can never come (message of ``SimHangError``)."""
        if isinstance(window, IodmaRegs):
            idle = [d.name for d in self.idmas + self.odmas if not d.busy]
            return (f"{window.name} polled {window.polls} times without ap_done: DMAs never "
                    f"started: {', '.join(idle)} (real hardware would hang)")
        return (f"{window.name} S2MM waits for {window.armed[1]} B but the accelerator has "
                f"produced {len(self._out_fifo)} B (real hardware would hang)")
