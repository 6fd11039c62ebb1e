# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver/packing.py + dtypes.py: parity with FINN's packing, round trips, validation."""

from __future__ import annotations

import numpy as np
import pytest

from hw.driver.dtypes import parse_dtype
from hw.driver.errors import InputError, MetadataError
from hw.driver.packing import check_values, pack_rows, packed_row_bytes, unpack_rows

TYPES = ["BIPOLAR", "BINARY", "UINT8", "INT2", "UINT3", "INT4", "INT24", "INT32", "UINT16",
         "INT8", "UINT5", "INT13", "TERNARY"]
SHAPES = [(1, 8), (3, 7), (2, 3, 5), (4, 16), (2, 49), (1, 28, 28, 1), (5, 1), (2, 2, 40)]


def _values(name: str, shape: tuple, seed: int = 0) -> np.ndarray:
    dt, rng = parse_dtype(name), np.random.default_rng(seed)
    if dt.bipolar:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(dt.min, dt.max, size=shape, endpoint=True)


def _finn_container(x: np.ndarray, name: str) -> np.ndarray:
    # FINN packs through float32 (exact up to 24 bits) or an exact int32 container
    return x.astype(np.int32) if name == "INT32" else x.astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", TYPES)
def test_pack_and_unpack_match_finn(name, shape):
    from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
    from qonnx.core.datatype import DataType

    dt, x = parse_dtype(name), _values(name, shape)
    ours = pack_rows(check_values(x, dt), dt)
    ref = finnpy_to_packed_bytearray(_finn_container(x, name), DataType[name],
                                     reverse_inner=True, reverse_endian=True)
    assert ours.dtype == np.uint8 and ours.shape == (*shape[:-1], packed_row_bytes(shape[-1],
                                                                                   dt.bits))
    np.testing.assert_array_equal(ours, np.ascontiguousarray(ref))
    back = unpack_rows(ours, dt, shape[-1])
    np.testing.assert_array_equal(back, x)
    finn_back = packed_bytearray_to_finnpy(np.ascontiguousarray(ref), DataType[name], shape,
                                           reverse_inner=True, reverse_endian=True)
    np.testing.assert_array_equal(finn_back, back.astype(np.float32))


WIDTHS = [1, 2, 3, 5, 7, 8, 9, 12, 16, 17, 24, 31, 32, 33, 48, 63, 64]


@pytest.mark.parametrize("name", [f"UINT{b}" for b in WIDTHS] + [f"INT{b}" for b in WIDTHS[1:]])
def test_round_trip_every_width_and_definition(name):
    dt = parse_dtype(name)
    bits = dt.bits
    rng = np.random.default_rng(bits)
    lo, hi = max(dt.min, -(2**62)), min(dt.max, 2**62)
    x = rng.integers(lo, hi, size=(3, 11), endpoint=True)
    x[0, :2] = [dt.min, dt.max] if bits < 64 else [lo, hi]
    packed = pack_rows(x, dt)
    np.testing.assert_array_equal(unpack_rows(packed, dt, 11), x)
    # the documented definition: packbits of the LSB-first bits of each value, little order
    u = x.astype(np.int64).view(np.uint64)
    bits_lsb = ((u[..., None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)
    expect = np.packbits(bits_lsb.reshape(3, -1), axis=-1, bitorder="little")
    np.testing.assert_array_equal(packed, expect)


def test_known_bytes_and_sign_extension():
    assert pack_rows(np.array([[-1, 2]]), parse_dtype("INT4")).tolist() == [[0x2F]]
    assert pack_rows(np.array([[1] + [-1] * 7]), parse_dtype("BIPOLAR")).tolist() == [[1]]
    b = np.array([[1, 1, 1, 0, 0, 0, 0, 0, 1] + [0] * 7])
    assert pack_rows(b, parse_dtype("BINARY")).tolist() == [[7, 1]]
    out = unpack_rows(np.array([[0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x80]], np.uint8),
                      parse_dtype("INT24"), 2)
    assert out.tolist() == [[-1, -(2**23)]] and out.dtype == np.int32
    assert unpack_rows(np.array([[0b10]], np.uint8), parse_dtype("BIPOLAR"), 2).tolist() == \
        [[-1, 1]]


def test_check_values_rejects_bad_data():
    u8 = parse_dtype("UINT8")
    with pytest.raises(InputError, match=r"contains 256, outside UINT8 \[0, 255\]"):
        check_values(np.array([1, 256]), u8)
    with pytest.raises(InputError, match=r"contains -3, outside INT2 \[-2, 1\]"):
        check_values(np.array([-3.0, 0.0]), parse_dtype("INT2"))
    with pytest.raises(InputError, match="non-integer value 0.5"):
        check_values(np.array([0.5]), u8)
    with pytest.raises(InputError, match="NaN or infinity"):
        check_values(np.array([np.nan]), u8)
    with pytest.raises(InputError, match="dtype <U1"):
        check_values(np.array(["a"]), u8)
    with pytest.raises(InputError, match=r"outside BIPOLAR \{-1, \+1\}"):
        check_values(np.array([1, 0]), parse_dtype("BIPOLAR"))
    assert check_values(np.array([0.0, 255.0], np.float32), u8).dtype == np.uint8
    assert check_values(np.array([-1.0, 1.0]), parse_dtype("BIPOLAR")).tolist() == [-1, 1]


def test_dtype_parser():
    assert parse_dtype("DataType['INT4']") == parse_dtype("INT4")
    d = parse_dtype("UINT3")
    assert (d.bits, d.signed, d.min, d.max, d.container()) == (3, False, 0, 7, np.uint8)
    assert parse_dtype("INT24").container() == np.int32
    for bad in ("FLOAT32", "INT1", "UINT65", "FIXED<8,4>", 8):
        with pytest.raises(MetadataError, match="unsupported datatype|must be a string"):
            parse_dtype(bad)
    with pytest.raises(InputError, match="packed row has 2 bytes; 3 x INT8 needs 3"):
        unpack_rows(np.zeros((1, 2), np.uint8), parse_dtype("INT8"), 3)
