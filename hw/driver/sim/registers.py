# SPDX-License-Identifier: BSD-3-Clause
"""Register windows of the emulated ZynqMP: PS clock registers, FINN IODMAs, AXI DMA.

A window implements what pynq's ``MMIO`` delegates to a device with the ``REMOTE``
capability (``read``, ``write``, ``array``). That path is used, rather than
``MEMORY_MAPPED``, because it is the only one where the device sees the raw Python value
before ``np.uint32(value)`` truncates it, which is what makes "64-bit value through a 32-bit
register" detectable. ``write`` otherwise mirrors ``MMIO.write_mm`` (int or bytes, 4-byte
aligned), so a driver that passes here behaves the same on the board.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import SimDmaError, SimHangError, SimRegisterError

AP_START, AP_DONE, AP_IDLE, AP_READY = 0x1, 0x2, 0x4, 0x8

# ZynqMP boot values (33.333 MHz reference): IOPLL 1499.985 MHz, PL0 = IOPLL/15 = 99.999 MHz,
# APLL 1199.988 MHz = CPU. Field layout from pynq.ps ZU_PLL_FIELDS / ZU_CLK_FIELDS.
CRL_APB, CRF_APB = 0xFF5E0000, 0xFD1A0000


def _pll(fbdiv: int) -> int:
    return (fbdiv << 8) | (1 << 16)  # FBDIV, DIV2 = 1, PRE_SRC = 0 (PS reference)


def _pl(div0: int) -> int:
    return (1 << 24) | (1 << 16) | (div0 << 8)  # CLKACT, DIVISOR1 = 1, DIVISOR0, SRCSEL IOPLL


CRL_RESET = {0x20: _pll(90), 0x30: _pll(72), 0xC0: _pl(15), 0xC4: _pl(15), 0xC8: _pl(15),
             0xCC: _pl(15)}
CRF_RESET = {0x20: _pll(72), 0x2C: _pll(64), 0x38: _pll(90), 0x60: 1 << 8}


class _WindowArray:
    """``mmio.array`` of a model window: word indexing routed through the register model."""

    def __init__(self, window: RegisterWindow) -> None:
        self._w = window

    def __len__(self) -> int:
        return self._w.length // 4

    def __getitem__(self, idx: int) -> int:
        return self._w.read(int(idx) * 4)

    def __setitem__(self, idx: int, value: Any) -> None:
        self._w.write(int(idx) * 4, int(value))


class RegisterWindow:
    """Base: the ``MMIO`` contract (32-bit words) with strict value checks."""

    def __init__(self, name: str, base: int, length: int) -> None:
        self.name, self.base, self.length = name, base, length
        self.array: Any = _WindowArray(self)

    def read(self, offset: int = 0, length: int = 4, word_order: str = "little") -> int:
        if length not in (1, 2, 4, 8):
            raise ValueError("MMIO currently only supports 1, 2, 4 and 8-byte reads.")
        if offset < 0 or offset % 4:
            raise MemoryError("Unaligned read: offset must be multiple of 4.")
        lo = self._read32(offset)
        if length == 8:
            hi = self._read32(offset + 4)
            return (hi << 32) + lo if word_order == "little" else (lo << 32) + hi
        return lo & ((1 << (8 * length)) - 1)

    def write(self, offset: int, data: Any) -> None:
        if offset < 0 or offset % 4:
            raise MemoryError("Unaligned write: offset must be multiple of 4.")
        if type(data) is int:
            if not 0 <= data <= 0xFFFFFFFF:
                raise SimRegisterError(
                    f"{self.name}+0x{offset:02x}: value {data:#x} does not fit a 32-bit "
                    "register; on the board MMIO.write stores np.uint32(value) (silently "
                    "truncated under numpy 1). Split 64-bit addresses into lo/hi words")
            self._write32(offset, data)
        elif type(data) is bytes:
            if len(data) % 4:
                raise MemoryError("Unaligned write: data length must be multiple of 4.")
            for i, w in enumerate(np.frombuffer(data, np.uint32)):
                self._write32(offset + 4 * i, int(w))
        else:
            raise SimRegisterError(
                f"{self.name}+0x{offset:02x}: value of type {type(data).__name__}; pynq's "
                "MMIO.write accepts only int or bytes (ValueError on the board): use int()")

    def _read32(self, offset: int) -> int:
        raise NotImplementedError

    def _write32(self, offset: int, value: int) -> None:
        raise NotImplementedError

    def _unmapped(self, offset: int) -> SimRegisterError:
        return SimRegisterError(f"{self.name}: no register at offset 0x{offset:02x}")


class ClockWindow(RegisterWindow):
    """CRL_APB / CRF_APB: plain registers holding the ZynqMP clock configuration."""

    def __init__(self, name: str, base: int, reset: dict[int, int]) -> None:
        super().__init__(name, base, 0x100)
        self.array = np.zeros(0x40, np.uint32)
        for off, val in reset.items():
            self.array[off >> 2] = val

    def _read32(self, offset: int) -> int:
        return int(self.array[offset >> 2])

    def _write32(self, offset: int, value: int) -> None:
        self.array[offset >> 2] = value


class IodmaRegs(RegisterWindow):
    """HLS ``s_axi_control`` of a FINN IODMA (ap_ctrl, address lo/hi, repetitions)."""

    DATA_REGS = (0x04, 0x08, 0x0C, 0x10, 0x14, 0x1C)

    def __init__(self, device: Any, name: str, base: int, direction: str, index: int) -> None:
        super().__init__(name, base, 0x10000)
        self.device, self.direction, self.index = device, direction, index
        self.regs = dict.fromkeys(self.DATA_REGS, 0)
        self.busy = self.done = self.ready = False
        self.addr = self.reps = self.starts = self.polls = 0

    def _read32(self, offset: int) -> int:
        if offset == 0x00:
            v = (AP_START if self.busy else AP_IDLE) | (AP_DONE if self.done else 0)
            v |= AP_READY if self.ready else 0
            self.done = self.ready = False  # clear-on-read
            if self.busy:
                self.polls += 1
                if self.polls > self.device.hang_polls:
                    raise SimHangError(self.device.hang_reason(self))
            return v
        if offset in self.regs:
            return self.regs[offset]
        raise self._unmapped(offset)

    def _write32(self, offset: int, value: int) -> None:
        if offset == 0x00:
            if value & ~AP_START:
                raise SimRegisterError(f"{self.name}: ap_ctrl write {value:#x}: only ap_start "
                                       "(bit 0) is supported (no auto-restart)")
            if value & AP_START:
                self._start()
            return
        if offset not in self.regs:
            raise self._unmapped(offset)
        if self.busy and offset in (0x10, 0x14, 0x1C):
            raise SimRegisterError(f"{self.name}: register 0x{offset:02x} written while the "
                                   "DMA is running")
        self.regs[offset] = value

    def _start(self) -> None:
        if self.busy:
            raise SimRegisterError(f"{self.name}: ap_start while busy (ap_idle=0); wait for "
                                   "ap_done before starting again")
        reps = self.regs[0x1C]
        if reps == 0:
            raise SimRegisterError(f"{self.name}: ap_start with 0 repetitions (reg 0x1C)")
        self.addr, self.reps = self.regs[0x10] | (self.regs[0x14] << 32), reps
        self.busy, self.polls = True, 0
        self.starts += 1
        self.device.on_iodma_start(self)

    def finish(self) -> None:
        self.busy, self.done, self.ready = False, True, True


class AxiDmaRegs(RegisterWindow):
    """Simple-mode AXI DMA (PG021): MM2S at 0x00, S2MM at 0x30 (CR, SR, ADDR lo/hi, LENGTH)."""

    def __init__(self, device: Any, name: str, base: int, length_width: int,
                 width_bytes: int) -> None:
        super().__init__(name, base, 0x10000)
        self.device, self.max_len, self.align = device, (1 << length_width) - 1, width_bytes
        self.ch = {0x00: self._chan(), 0x30: self._chan()}
        self.armed: tuple[int, int] | None = None  # S2MM (address, length) waiting for data
        self.polls = 0

    @staticmethod
    def _chan() -> dict[str, int]:
        return {"cr": 0, "running": 0, "idle": 1, "err": 0, "ioc": 0, "lo": 0, "hi": 0, "len": 0}

    def _split(self, offset: int) -> tuple[int, dict[str, int], int]:
        base = 0x30 if offset >= 0x30 else 0x00
        return base, self.ch[base], offset - base

    def _read32(self, offset: int) -> int:
        base, c, reg = self._split(offset)
        if reg == 0x04:
            if base == 0x30 and self.armed is not None:
                self.polls += 1
                if self.polls > self.device.hang_polls:
                    raise SimHangError(self.device.hang_reason(self))
            return ((0 if c["running"] else 1) | (c["idle"] << 1) | c["err"] | (c["ioc"] << 12))
        regs = {0x00: "cr", 0x18: "lo", 0x1C: "hi", 0x28: "len"}
        if reg in regs:
            return c[regs[reg]]
        raise self._unmapped(offset)

    def _write32(self, offset: int, value: int) -> None:
        base, c, reg = self._split(offset)
        if reg == 0x00:
            if value & 0x4:
                c.update(self._chan())
                self.armed = None if base == 0x30 else self.armed
                return
            c["cr"], c["running"] = value, value & 1
        elif reg == 0x04:
            c["ioc"] &= ~(value >> 12) & 1
        elif reg in (0x18, 0x1C):
            c["lo" if reg == 0x18 else "hi"] = value
        elif reg == 0x28:
            self._length(base, c, value)
        else:
            raise self._unmapped(offset)

    def _length(self, base: int, c: dict[str, int], nbytes: int) -> None:
        side = "MM2S" if base == 0 else "S2MM"
        if not c["running"]:
            raise SimDmaError(f"{self.name} {side}: LENGTH written while the channel is halted")
        if not 0 < nbytes <= self.max_len:
            raise SimDmaError(f"{self.name} {side}: LENGTH {nbytes} outside [1, {self.max_len}]")
        addr = c["lo"] | (c["hi"] << 32)
        c["len"] = nbytes
        if base == 0x00:
            data = self.device.memory.device_read(addr, nbytes, self.align, f"{self.name} MM2S")
            self.device.stream_in(data)
        else:
            if self.armed is not None:
                raise SimDmaError(f"{self.name} S2MM: LENGTH written while a transfer is active")
            self.device.memory.resolve(addr, nbytes, self.align, f"{self.name} S2MM")
            self.armed, self.polls, c["idle"] = (addr, nbytes), 0, 0
        self.device.pump_stream()

    def complete_s2mm(self, nbytes: int) -> None:
        c = self.ch[0x30]
        c.update(idle=1, len=nbytes, ioc=1)
        self.armed = None
