# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver/accel.py through the emulator: bit-exact results, protocol trace, clocks, errors."""

from __future__ import annotations

import numpy as np
import pytest

from hw.driver.errors import DriverError, InputError
from hw.driver.meta import parse_meta
from hw.driver.sim import FinnCodec, ReferenceModel, open_sim
from tests.hw.helpers import (axi_meta, axi_reference, example_dict, example_inputs,
                              example_meta, reference)


@pytest.mark.parametrize("n, batch_size", [(1, None), (5, None), (20, 7), (64, 64)])
def test_execute_is_bit_exact_against_the_integer_reference(sim_acc, n, batch_size):
    if batch_size:
        sim_acc.batch_size = batch_size
    x = example_inputs(n, seed=n)
    y = sim_acc.execute(x)
    assert y.dtype == np.int32 and y.shape == (n, 10)
    np.testing.assert_array_equal(y, reference(x))
    runs = -(-n // (batch_size or 1024))
    assert sim_acc.device.stats == {"runs": runs, "frames": n,
                                    "model_s": sim_acc.device.stats["model_s"]}
    assert isinstance(sim_acc.device.model.codec, FinnCodec)  # decoded by FINN, not by us
    assert sim_acc.backend == "sim"


def test_single_sample_float_container_and_predictions(sim_acc):
    x = example_inputs(6, seed=3)
    np.testing.assert_array_equal(sim_acc.execute(x[0].astype(np.float32)), reference(x[:1]))
    expect = np.argmax(reference(x) * 0.0123, axis=1)
    np.testing.assert_array_equal(sim_acc.predict(x), expect)
    np.testing.assert_allclose(sim_acc.dequantize(np.array([[2, -4]])), [[0.0246, -0.0492]])


def test_register_trace_follows_the_finn_iodma_protocol(sim_acc):
    sim_acc.execute(example_inputs(3))
    ev = [e for e in sim_acc.device.events if e[0] == "ap_start"]
    assert [e[1] for e in ev] == ["odma0", "idma0"]  # odma armed first
    assert [e[3] for e in ev] == [3, 3]  # repetitions = batch
    assert ev[0][2] == sim_acc._obufs[0].device_address
    assert ev[1][2] == sim_acc._ibufs[0].device_address
    assert sim_acc._out_dmas[0].read(0x00) == 0x4  # idle, ap_done already consumed
    assert sim_acc.device.warnings == []


def test_clock_is_set_from_metadata_and_reported():
    acc = open_sim(example_meta(), ReferenceModel(example_meta(), reference))
    c = acc.clock
    # 200 MHz from the 1499.985 MHz IOPLL: pynq picks /7 = 214.28 MHz (above timing closure);
    # the driver lowers the request to the divider at or below 200 MHz
    assert (c["requested_mhz"], c["read_back_mhz"], c["adjusted"]) == (200.0, 187.498125, True)
    assert c["before_mhz"] == 214.283571 and c["cpu_mhz"] == 1199.988
    d = example_dict(clock={"synth_mhz": 100.0, "driver_mhz": 100.0})
    acc = open_sim(parse_meta(d), ReferenceModel(parse_meta(d), reference))
    assert (acc.clock["read_back_mhz"], acc.clock["adjusted"]) == (99.999, False)
    d = example_dict(clock={"synth_mhz": 150.0, "driver_mhz": 100.0})  # finn#876: not 100 always
    acc = open_sim(parse_meta(d), ReferenceModel(parse_meta(d), reference))
    assert acc.clock["read_back_mhz"] == 99.999


@pytest.mark.parametrize("length_width, n", [(26, 50), (10, 50), (11, 30)])
def test_axi_dma_platform_is_bit_exact_with_chunking(length_width, n):
    meta = axi_meta()
    acc = open_sim(meta, ReferenceModel(meta, axi_reference),
                   device_kwargs={"axi_length_width": length_width})
    x = np.random.default_rng(n).choice(np.array([-1, 1], np.int8), size=(n, 600))
    np.testing.assert_array_equal(acc.execute(x), axi_reference(x))
    dma = acc._in_dmas[0]
    chunk = acc._axi_chunk_frames(dma, 75, 6)
    assert dma.buffer_max_size == 2**length_width - 1 and chunk % 8 == 0  # 8-byte aligned
    assert acc.device.stats["runs"] == -(-n // chunk)


def test_axi_dma_too_small_for_one_aligned_chunk():
    from hw.driver.errors import DeviceError

    meta = axi_meta()
    acc = open_sim(meta, ReferenceModel(meta, axi_reference),
                   device_kwargs={"axi_length_width": 8})
    with pytest.raises(DeviceError, match=r"multiple of 8 frames \(600 B in, 48 B out\), but "
                                          r"the DMA's buffer_max_size is 255 B"):
        acc.execute(np.ones((2, 600), np.int8))


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 28, 28), np.uint8), r"shape \(2, 28, 28\); expected \(N, 28, 28, 1\)"),
    (np.zeros((0, 28, 28, 1), np.uint8), r"shape \(0, 28, 28, 1\)"),
    (np.full((1, 28, 28, 1), 256), r"contains 256, outside UINT8 \[0, 255\]"),
    (np.full((1, 28, 28, 1), -1.0), r"contains -1, outside UINT8"),
    (np.full((1, 28, 28, 1), 0.5), "non-integer value 0.5"),
    (np.full((1, 28, 28, 1), "a"), "dtype <U1"),
])
def test_bad_input_is_rejected_before_any_device_access(sim_acc, x, message):
    with pytest.raises(InputError, match=message):
        sim_acc.execute(x)
    assert sim_acc.device.stats["runs"] == 0 and sim_acc._capacity == 0


def test_batch_size_limits_and_postprocess_rules(meta):
    acc = open_sim(meta, ReferenceModel(meta, reference))
    for bad in (0, 1025, 2.0):
        with pytest.raises(InputError, match=r"batch size must be an int in \[1, 1024\]"):
            acc.batch_size = bad
    d = example_dict(output_postprocess={"argmax": False})
    acc = open_sim(parse_meta(d), ReferenceModel(parse_meta(d), reference))
    with pytest.raises(DriverError, match="argmax is false"):
        acc.predict(example_inputs(1))
    # a one-value output (LabelSelect/TopK index) is the prediction itself
    d = example_dict(outputs=[{"name": "idx", "dma": "odma0", "datatype": "UINT4",
                               "shape_normal": [1, 1], "shape_folded": [1, 1, 1],
                               "shape_packed": [1, 1, 1]}])
    m = parse_meta(d)
    acc = open_sim(m, ReferenceModel(m, lambda x: np.argmax(reference(x), axis=1)))
    x = example_inputs(9)
    np.testing.assert_array_equal(acc.predict(x), np.argmax(reference(x), axis=1))


def test_missing_ip_in_the_overlay_is_a_clear_error(meta):
    from hw.driver.accel import FinnAccelerator
    from hw.driver.errors import DeviceError
    from hw.driver.sim import SimZynqMPDevice

    other = parse_meta(example_dict(inputs=[dict(example_dict()["inputs"][0], dma="idma_x")]))
    dev = SimZynqMPDevice(meta, ReferenceModel(meta, reference))
    with pytest.raises(DeviceError, match="no IP 'idma_x' for global_in .IPs in the HWH: idma0, "
                                          "odma0"):
        FinnAccelerator.open(other, bitfile=dev.placeholder_bitfile, device=dev)
