# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver/sim: every strictness rule has a failing case (buggy drivers or direct pokes)."""

from __future__ import annotations

import numpy as np
import pytest

from hw.driver.accel import FinnAccelerator
from hw.driver.errors import AcceleratorTimeout, DeviceError
from hw.driver.sim import (ReferenceModel, SimCoherencyError, SimDmaError, SimHangError,
                           SimRegisterError, SimZynqMPDevice)
from tests.hw.helpers import axi_meta, axi_reference, example_inputs, example_meta, reference


def make(cls=FinnAccelerator, meta=None, fn=reference, **device_kwargs):
    meta = meta or example_meta()
    dev = SimZynqMPDevice(meta, ReferenceModel(meta, fn), **device_kwargs)
    return cls.open(meta, bitfile=dev.placeholder_bitfile, device=dev)


def loaded(acc, n=3):
    acc.write_inputs(acc.pack_inputs(example_inputs(n)))
    return acc


class NoFlush(FinnAccelerator):
    def write_inputs(self, packed):
        n = packed[0].shape[0]
        self.ensure_buffers(n)
        np.copyto(self._ibufs[0][:n], packed[0])


class NoInvalidate(FinnAccelerator):
    def read_outputs(self, n):
        host = np.empty((n, self.meta.outputs[0].frame_bytes), np.uint8)
        np.copyto(host, self._obufs[0][:n])
        return [host]


class Addr64(FinnAccelerator):
    @staticmethod
    def _arm(dma, buf, n):
        dma.write(0x10, int(buf.device_address))  # the whole 64-bit address in one register
        dma.write(0x1C, n)
        dma.write(0x00, 1)


class Misaligned(FinnAccelerator):
    @staticmethod
    def _arm(dma, buf, n):
        FinnAccelerator._arm(dma, type("B", (), {"device_address": buf.device_address + 4}), n)


class NeverStartsIdma(FinnAccelerator):
    def _run_iodma(self, n):
        self._arm(self._out_dmas[0], self._obufs[0], n)
        self._wait_done()


def test_missing_flush_before_ap_start():
    with pytest.raises(SimCoherencyError, match=r"never flush\(\)ed"):
        make(NoFlush).execute(example_inputs(2))


def test_cpu_write_after_the_last_flush():
    acc = loaded(make())
    acc._ibufs[0][1, 5] = (int(np.asarray(acc._ibufs[0])[1, 5]) + 1) % 256
    with pytest.raises(SimCoherencyError, match=r"\(first at byte 789\) after its last flush"):
        acc.execute_on_buffers(3)


def test_read_without_invalidate_by_a_buggy_driver():
    with pytest.raises(SimCoherencyError, match=r"without invalidate\(\)"):
        make(NoInvalidate).execute(example_inputs(2))


@pytest.mark.parametrize("read", [
    lambda b: b.copy(), lambda b: np.copyto(np.empty(b.shape, np.uint8), b), lambda b: b[0, 0],
    lambda b: b.tobytes(), lambda b: b + 0, lambda b: np.array_equal(b, b), lambda b: b[[0]],
], ids=["copy", "copyto", "scalar", "tobytes", "ufunc", "array_function", "fancy"])
def test_every_read_path_of_device_written_data_is_checked(read):
    acc = loaded(make())
    acc.execute_on_buffers(3)
    out = acc._obufs[0][:3]
    with pytest.raises(SimCoherencyError, match=r"invalidate\(\) before reading"):
        read(out)
    with pytest.raises(SimCoherencyError, match=r"flush\(\) of buffer .* would overwrite"):
        out.flush()
    out.invalidate()
    read(out)  # fine now
    np.testing.assert_array_equal(acc.unpack_outputs([np.asarray(out).copy()])[0],
                                  reference(example_inputs(3)))


def test_dma_address_outside_buffers_and_past_the_end():
    acc = loaded(make(), n=2)
    odma = acc._out_dmas[0]
    for reg, val in ((0x10, 0x0800_0000), (0x14, 0), (0x1C, 1), (0x00, 1)):
        odma.write(reg, val)
    idma = acc._in_dmas[0]
    with pytest.raises(SimDmaError, match="0x8000000 is outside every allocated buffer"):
        FinnAccelerator._arm(idma, acc._ibufs[0], 1)
    acc2 = loaded(make(), n=2)
    with pytest.raises(SimDmaError, match=r"DMA of 3920 B .* runs 2352 B past the end of its "
                                          r"1568 B buffer"):
        acc2._run_iodma(5)  # repetitions larger than the allocated buffer


def test_misaligned_dma_address():
    with pytest.raises(SimDmaError, match="is not 64-byte aligned"):
        make(Misaligned).execute(example_inputs(1))


def test_ap_start_while_busy():
    acc = loaded(make())
    odma = acc._out_dmas[0]
    FinnAccelerator._arm(odma, acc._obufs[0], 3)  # odma now waits for idma
    with pytest.raises(SimRegisterError, match="odma0: ap_start while busy"):
        odma.write(0x00, 1)
    with pytest.raises(SimRegisterError, match="written while the DMA is running"):
        odma.write(0x1C, 2)
    with pytest.raises(DeviceError, match=r"odma0 is not idle \(ap_ctrl=0x1\)"):
        acc.execute_on_buffers(3)


def test_64_bit_value_through_a_32_bit_register():
    with pytest.raises(SimRegisterError, match=r"0x8100.* does not fit a 32-bit register"):
        make(Addr64, ddr_base=0x8_1000_0000).execute(example_inputs(1))
    acc = make(ddr_base=0x8_1000_0000)  # the real driver splits lo/hi and works there
    x = example_inputs(4)
    np.testing.assert_array_equal(acc.execute(x), reference(x))
    assert acc._in_dmas[0].read(0x14) == 0x8
    with pytest.raises(SimRegisterError, match="value of type int64; pynq's MMIO.write"):
        acc._in_dmas[0].write(0x1C, np.int64(3))


def test_polling_for_a_run_that_never_finishes():
    with pytest.raises(SimHangError, match="DMAs never started: idma0"):
        make(NeverStartsIdma, hang_polls=1000).execute(example_inputs(1))
    acc = make(NeverStartsIdma, hang_polls=10**9)
    acc.timeout_s = 0.05
    with pytest.raises(AcceleratorTimeout, match="odma0 did not report ap_done within 0.05 s"):
        acc.execute(example_inputs(1))


def test_register_protocol_errors():
    acc = loaded(make())
    odma, idma = acc._out_dmas[0], acc._in_dmas[0]
    with pytest.raises(SimRegisterError, match="no register at offset 0x20"):
        odma.write(0x20, 1)
    with pytest.raises(SimRegisterError, match="0 repetitions"):
        odma.write(0x00, 1)
    with pytest.raises(SimRegisterError, match="only ap_start"):
        odma.write(0x00, 0x81)
    FinnAccelerator._arm(odma, acc._obufs[0], 2)
    with pytest.raises(SimRegisterError, match=r"repetition registers differ.*'idma0': 3"):
        FinnAccelerator._arm(idma, acc._ibufs[0], 3)


def test_ap_done_is_clear_on_read_and_idma_before_odma_is_noted():
    acc = loaded(make())
    odma, idma = acc._out_dmas[0], acc._in_dmas[0]
    FinnAccelerator._arm(idma, acc._ibufs[0], 3)  # wrong order: works, but is noted
    FinnAccelerator._arm(odma, acc._obufs[0], 3)
    assert odma.read(0x00) == 0x2 | 0x4 | 0x8 and odma.read(0x00) == 0x4
    assert acc.device.warnings == ["idma0 started before every odma was armed (FINN drivers "
                                   "arm odma first)"]


def test_axi_dma_receive_that_can_never_complete():
    acc = make(meta=axi_meta(), fn=axi_reference, hang_polls=1000)
    acc.write_inputs(acc.pack_inputs(np.ones((2, 600), np.int8)))
    dma, fo = acc._in_dmas[0], acc.meta.outputs[0].frame_bytes
    dma.recvchannel.transfer(acc._obufs[0], nbytes=2 * fo)
    dma.sendchannel.transfer(acc._ibufs[0], nbytes=75)  # one frame only
    dma.sendchannel.wait()
    with pytest.raises(SimHangError, match="S2MM waits for 12 B but the accelerator has "
                                           "produced 6 B"):
        dma.recvchannel.wait()
