# SPDX-License-Identifier: BSD-3-Clause
"""Emulated DDR with a non-coherent cache: allocations, DMA access and strictness.

Each allocation has two byte arrays: the CPU view (what the program reads and writes through
its ``SimBuffer``) and the DDR behind the cache (what the DMAs read and write). They only meet
through ``flush()`` (CPU -> DDR) and ``invalidate()`` (DDR -> CPU), exactly like a cacheable
CMA buffer on a Zynq, so a missing flush gives the device stale data and a missing invalidate
gives the CPU stale data. Strict checks turn both into immediate errors:

* a DMA read of a range that was never flushed, or whose CPU view differs from DDR
  (CPU writes after the last ``flush()``) -> ``SimCoherencyError``;
* a CPU read of device-written bytes not yet invalidated -> ``SimCoherencyError``, whatever
  numpy path reads them: the CPU view is reachable only through ``SimBuffer`` (``buffer.py``),
  whose every read is checked against the allocation's ``pending`` bytes;
* ``flush()`` over device-written bytes not yet invalidated (stale lines would overwrite the
  device's data) -> ``SimCoherencyError``;
* a DMA to, or CPU use of, a buffer after ``freebuffer()`` -> ``SimDmaError``.

Buffers allocated with ``cacheable=False`` are coherent: one array, no checks.
"""

from __future__ import annotations

import bisect
import itertools
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .buffer import SimBuffer
from .errors import SimCoherencyError, SimDmaError

PAGE = 4096


@dataclass
class BufferRecord:
    """State of one allocation: address, CPU view, DDR array and cache bookkeeping."""

    bo: int
    addr: int
    nbytes: int
    cpu: np.ndarray
    ddr: np.ndarray
    cacheable: bool
    flushed: np.ndarray = field(init=False)
    pending: np.ndarray = field(init=False)

    freed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.flushed = np.zeros(self.nbytes, bool)   # flushed at least once since allocation
        self.pending = np.zeros(self.nbytes, bool)   # device-written, not yet invalidated


class SimMemory:
    """Address space of the emulated DDR: allocation, address lookup, flush/invalidate."""

    def __init__(self, device: Any, base: int = 0x1000_0000, size: int = 0x6000_0000) -> None:
        self.device, self.base, self.size = device, base, size
        self.records: dict[int, BufferRecord] = {}
        self._starts: list[int] = []
        self._by_start: dict[int, BufferRecord] = {}
        self._bo = itertools.count(1)

    def _find_free(self, size: int) -> int:
        addr = self.base
        for start in self._starts:
            rec = self._by_start[start]
            if start - addr >= size:
                break
            addr = max(addr, start + -(-rec.nbytes // PAGE) * PAGE)
        if addr + size > self.base + self.size:
            raise MemoryError(f"emulated DDR exhausted allocating {size} bytes")
        return addr

    def allocate(self, shape: Any, dtype: Any, cacheable: bool = True) -> SimBuffer:
        """A ``SimBuffer`` at a fresh page-aligned bus address."""
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64)) if np.ndim(shape) else int(shape)
        nbytes = max(count * dt.itemsize, 1)
        size = -(-nbytes // PAGE) * PAGE
        addr, bo = self._find_free(size), next(self._bo)
        cpu = np.zeros(nbytes, np.uint8)
        ddr = np.zeros(nbytes, np.uint8) if cacheable else cpu
        rec = BufferRecord(bo, addr, nbytes, cpu, ddr, cacheable)
        buf = SimBuffer(self, rec, cpu[:count * dt.itemsize].view(dt).reshape(shape))
        self.records[bo] = rec
        bisect.insort(self._starts, addr)
        self._by_start[addr] = rec
        weakref.finalize(buf, self.release, bo)
        return buf

    def release(self, bo: int) -> None:
        """Forget an allocation (``freebuffer()``, or its last ``SimBuffer`` collected)."""
        rec = self.records.pop(bo, None)
        if rec is not None:
            rec.freed = True
            self._starts.remove(rec.addr)
            del self._by_start[rec.addr]

    def resolve(self, addr: int, nbytes: int, align: int, who: str) -> tuple[BufferRecord, int]:
        """The allocation holding ``[addr, addr+nbytes)``; ``SimDmaError`` when none does."""
        if addr % align:
            raise SimDmaError(f"{who}: DMA address 0x{addr:x} is not {align}-byte aligned")
        i = bisect.bisect_right(self._starts, addr) - 1
        rec = self._by_start[self._starts[i]] if i >= 0 else None
        if rec is None or not rec.addr <= addr < rec.addr + rec.nbytes:
            raise SimDmaError(f"{who}: DMA address 0x{addr:x} is outside every allocated "
                              "buffer (decode error on real hardware)")
        off = addr - rec.addr
        if off + nbytes > rec.nbytes:
            over = off + nbytes - rec.nbytes
            raise SimDmaError(f"{who}: DMA of {nbytes} B at 0x{addr:x} runs {over} B past the "
                              f"end of its {rec.nbytes} B buffer")
        return rec, off

    def device_read(self, addr: int, nbytes: int, align: int, who: str) -> np.ndarray:
        """Bytes a DMA reads from DDR; strict: the range must be flushed and unchanged since."""
        rec, off = self.resolve(addr, nbytes, align, who)
        sl = slice(off, off + nbytes)
        if rec.cacheable:
            if not rec.flushed[sl].all():
                raise SimCoherencyError(f"{who}: ap_start reads buffer 0x{rec.addr:x} bytes "
                                        f"[{off}, {off + nbytes}) that were never flush()ed")
            if not np.array_equal(rec.cpu[sl], rec.ddr[sl]):
                bad = off + int(np.flatnonzero(rec.cpu[sl] != rec.ddr[sl])[0])
                raise SimCoherencyError(f"{who}: CPU wrote buffer 0x{rec.addr:x} (first at byte "
                                        f"{bad}) after its last flush(); the DMA would read "
                                        "stale DDR. Call flush() after the last write")
        return rec.ddr[sl].copy()

    def device_write(self, addr: int, data: np.ndarray, align: int, who: str) -> None:
        """A DMA writes DDR; the CPU sees it only after ``invalidate()``."""
        rec, off = self.resolve(addr, data.size, align, who)
        rec.ddr[off:off + data.size] = data.reshape(-1)
        if rec.cacheable:
            rec.pending[off:off + data.size] = True

    def _range(self, bo: int, offset: int, nbytes: int) -> tuple[BufferRecord | None, slice]:
        rec = self.records.get(bo)
        return rec, slice(offset, offset + nbytes)

    def flush(self, bo: int, offset: int, nbytes: int) -> None:
        """Write the CPU view back to DDR (cache clean)."""
        rec, sl = self._range(bo, offset, nbytes)
        if rec is None or not rec.cacheable:
            return
        if rec.pending[sl].any():
            raise SimCoherencyError(f"flush() of buffer 0x{rec.addr:x} over device-written "
                                    "bytes not yet invalidate()d would overwrite them")
        rec.ddr[sl] = rec.cpu[sl]
        rec.flushed[sl] = True

    def invalidate(self, bo: int, offset: int, nbytes: int) -> None:
        """Make DDR visible to the CPU (cache invalidate)."""
        rec, sl = self._range(bo, offset, nbytes)
        if rec is None or not rec.cacheable:
            return
        rec.cpu[sl] = rec.ddr[sl]
        rec.pending[sl] = False

    def check_cpu_read(self, rec: BufferRecord, start: int, stop: int) -> None:
        """Raise if bytes ``[start, stop)`` of ``rec`` hold device writes not invalidated."""
        if rec.cacheable and rec.pending[max(start, 0):stop].any():
            raise SimCoherencyError(f"CPU read of buffer 0x{rec.addr:x} after the accelerator "
                                    "wrote it, without invalidate(): on a board this returns "
                                    "stale cache lines. Call invalidate() before reading")
