# SPDX-License-Identifier: BSD-3-Clause
"""Pure-numpy packing of FINN tensors into the bytes the accelerator's DMAs move.

Bit order is FINN's with the driver flags ``reverse_endian=True, reverse_inner=True``
(``finn.util.data_packing.finnpy_to_packed_bytearray``): packing the innermost dimension of a
row equals ``np.packbits(<LSB-first bits of value 0, value 1, ...>, bitorder="little")``,
padded with zero bits up to a whole byte. BIPOLAR {-1, +1} is encoded as {0, 1}; signed
values are two's complement in their bit width and are sign-extended when unpacked.

Every path is vectorised: whole-byte widths are byte views, 1/2/4-bit widths use shifts,
other widths go through ``np.unpackbits``/``np.packbits``. Parity with FINN is tested in
``tests/hw/test_packing.py``.
"""

from __future__ import annotations

import numpy as np

from .dtypes import DType
from .errors import InputError


def packed_row_bytes(count: int, bits: int) -> int:
    """Bytes of one packed row of ``count`` values of ``bits`` bits (zero-padded)."""
    return (count * bits + 7) // 8


def _fmt(v: object) -> str:
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v)


def check_values(x: np.ndarray, dt: DType, what: str = "input") -> np.ndarray:
    """Validate that ``x`` holds values of datatype ``dt``; return them as an integer array.

    Accepts integer and bool arrays (returned as they are), and float arrays whose values are
    finite integers (FINN's float32 containers; returned in ``dt.container()``). Raises
    ``InputError`` naming the offending value otherwise.
    """
    x = np.asarray(x)
    kind = x.dtype.kind
    if kind not in "biuf":
        raise InputError(f"{what} has dtype {x.dtype}; expected an integer or float array "
                         f"holding {dt.name} values")
    if x.size == 0:
        return x.astype(dt.container())
    if dt.bipolar:
        ok = (x == 1) | (x == -1)
        if not ok.all():
            raise InputError(f"{what} contains {_fmt(x[~ok].flat[0])}, outside BIPOLAR {{-1, +1}}")
        return x.astype(np.int8) if kind == "f" else x
    lo, hi = x.min(), x.max()
    if kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{what} contains NaN or infinity; expected {dt.name} values")
    if lo < dt.min or hi > dt.max:
        bad = lo if lo < dt.min else hi
        raise InputError(f"{what} contains {_fmt(bad)}, outside {dt.name} {dt.allowed_desc()}")
    if kind != "f":
        return x  # integer/bool data is packed from its own container (no copy)
    y = x.astype(dt.container())  # in range, so the cast only truncates fractions
    if not np.array_equal(y, x):
        bad = x[y != x].flat[0]
        raise InputError(f"{what} contains the non-integer value {_fmt(bad)}; {dt.name} holds "
                         f"integers {dt.allowed_desc()} (quantise the data first)")
    return y


def _encode(v: np.ndarray, dt: DType) -> np.ndarray:
    """Integer values -> unsigned bit patterns of ``dt.bits`` bits (uint8..uint64)."""
    if dt.bipolar:
        return (v > 0).astype(np.uint8)
    nbytes = 1 if dt.bits <= 8 else 2 if dt.bits <= 16 else 4 if dt.bits <= 32 else 8
    if v.dtype.kind in "iub" and v.dtype.itemsize == nbytes:
        u = v.view(f"u{nbytes}")  # two's complement already; range checked by check_values
        return u & np.array((1 << dt.bits) - 1, u.dtype) if dt.signed and dt.bits < 8 * nbytes else u
    if dt.bits == 64:
        return v.astype(np.int64).view(np.uint64)
    return (v.astype(np.int64) & ((1 << dt.bits) - 1)).astype(f"u{nbytes}")


def pack_rows(values: np.ndarray, dt: DType) -> np.ndarray:
    """Pack the innermost dimension of already validated integer ``values`` into uint8 rows.

    Returns a contiguous uint8 array of shape ``values.shape[:-1] + (packed_row_bytes,)``.
    """
    v = np.asarray(values)
    if v.ndim == 0:
        v = v.reshape(1)
    u, b = _encode(v, dt), dt.bits
    lead, k = v.shape[:-1], v.shape[-1]
    if b % 8 == 0:
        nb = b // 8
        le = u.astype(f"<u{u.dtype.itemsize}", copy=False)
        by = np.ascontiguousarray(le).view(np.uint8).reshape(*lead, k, u.dtype.itemsize)
        out = by if nb == u.dtype.itemsize else by[..., :nb]
        return np.ascontiguousarray(out).reshape(*lead, k * nb)
    if b == 1:
        return np.packbits(u, axis=-1, bitorder="little")
    if 8 % b == 0:
        per = 8 // b
        pad = (-k) % per
        if pad:
            u = np.concatenate([u, np.zeros((*lead, pad), u.dtype)], axis=-1)
        u = u.reshape(*lead, -1, per).astype(np.uint8)
        out = u[..., 0].copy()
        for j in range(1, per):
            out |= u[..., j] << np.uint8(j * b)
        return out
    bits = ((u[..., None] >> np.arange(b, dtype=u.dtype)) & 1).astype(np.uint8)
    return np.packbits(bits.reshape(*lead, k * b), axis=-1, bitorder="little")


def _decode(u: np.ndarray, dt: DType) -> np.ndarray:
    """Unsigned bit patterns -> values in ``dt.container()`` (sign-extended / bipolar)."""
    if dt.bipolar:
        return (u.astype(np.int8) << 1) - np.int8(1)
    out = dt.container()
    if not dt.signed:
        return u.astype(out, copy=False)
    if dt.bits == 64:
        return u.view(np.int64)
    s = u.astype(np.int64)
    s -= (s >> (dt.bits - 1) & 1) << dt.bits
    return s.astype(out)


def unpack_rows(packed: np.ndarray, dt: DType, count: int) -> np.ndarray:
    """Inverse of :func:`pack_rows`: uint8 rows -> ``count`` values per row (sign-extended).

    Raises ``InputError`` when the row length does not match ``count`` values of ``dt``.
    """
    p = np.ascontiguousarray(packed)
    if p.dtype != np.uint8:
        raise InputError(f"packed data must be uint8, got {p.dtype}")
    b, lead = dt.bits, p.shape[:-1]
    if p.shape[-1] != packed_row_bytes(count, b):
        raise InputError(f"packed row has {p.shape[-1]} bytes; {count} x {dt.name} needs "
                         f"{packed_row_bytes(count, b)}")
    if b % 8 == 0:
        nb = b // 8
        cb = 1 if nb == 1 else 2 if nb == 2 else 4 if nb <= 4 else 8
        by = p.reshape(*lead, count, nb)
        if cb != nb:
            by = np.concatenate([by, np.zeros((*lead, count, cb - nb), np.uint8)], axis=-1)
        u = np.ascontiguousarray(by).view(f"<u{cb}").reshape(*lead, count)
    elif b == 1:
        u = np.unpackbits(p, axis=-1, count=count, bitorder="little")
    elif 8 % b == 0:
        per = 8 // b
        shifts = (np.arange(per, dtype=np.uint8) * b).astype(np.uint8)
        u = ((p[..., None] >> shifts) & np.uint8((1 << b) - 1)).reshape(*lead, -1)[..., :count]
    else:
        bits = np.unpackbits(p, axis=-1, bitorder="little")[..., : count * b]
        cb = 8 if b <= 8 else 16 if b <= 16 else 32 if b <= 32 else 64
        full = np.zeros((*lead, count, cb), np.uint8)
        full[..., :b] = bits.reshape(*lead, count, b)
        u = np.packbits(full, axis=-1, bitorder="little").view(f"<u{cb // 8}")
        u = u.reshape(*lead, count)
    return _decode(u, dt)
