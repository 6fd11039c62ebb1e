# SPDX-License-Identifier: BSD-3-Clause
"""hw/driver/sim/buffer.py: a CPU read of device-written memory without ``invalidate()`` is an
error whatever numpy path reads it; after ``invalidate()`` every path returns the data.

The misuse matrix: each entry reads the output buffer right after the accelerator wrote it.
``READS`` must raise ``SimCoherencyError``; ``RAW`` hand out raw memory and are refused always;
``VIEWS`` are taken *before* the device writes and read after.
"""

from __future__ import annotations

import copy
import io
import pickle
import struct

import numpy as np
import pytest

from hw.driver.sim import ReferenceModel, SimBuffer, SimCoherencyError, SimDmaError, open_sim
from tests.hw.helpers import example_inputs, example_meta, reference

N = 3


def _host(b):
    return np.empty(b.shape, b.dtype)


READS = {
    "asarray": lambda b: np.asarray(b),
    "array": lambda b: np.array(b),
    "asanyarray": lambda b: np.asanyarray(b),
    "ascontiguous": lambda b: np.ascontiguousarray(b),
    "asarray_dtype": lambda b: np.asarray(b, dtype=np.int32),
    "dunder_array": lambda b: b.__array__(),
    "copy": lambda b: b.copy(),
    "np_copy": lambda b: np.copy(b),
    "tobytes": lambda b: b.tobytes(),
    "bytes": lambda b: bytes(b),
    "scalar": lambda b: b[0, 0],
    "row_copy": lambda b: b[0].copy(),
    "fancy": lambda b: b[[0]],
    "bool_index": lambda b: b[np.ones(b.shape, bool)],
    "column_tolist": lambda b: b[:, 0].tolist(),
    "tolist": lambda b: b.tolist(),
    "item": lambda b: b.item(0),
    "add": lambda b: b + 0,
    "radd": lambda b: 0 + b,
    "eq": lambda b: b == 0,
    "neg": lambda b: -b,
    "abs": lambda b: abs(b),
    "matmul": lambda b: b @ np.ones((b.shape[1], 1), np.uint8),
    "ufunc": lambda b: np.add(b, 0),
    "ufunc_out": lambda b: np.add(b, 0, out=_host(b)),
    "ufunc_reduce": lambda b: np.add.reduce(b),
    "ufunc_at": lambda b: np.add.at(b, 0, 1),
    "iadd": lambda b: b.__iadd__(1),
    "divmod": lambda b: divmod(b, 2),
    "copyto": lambda b: np.copyto(_host(b), b),
    "copyto_kw": lambda b: np.copyto(dst=_host(b), src=b),
    "setitem_src": lambda b: _host(b).__setitem__(slice(None), b),
    "setitem_row": lambda b: _host(b).__setitem__(0, b[0]),
    "concatenate": lambda b: np.concatenate([b]),
    "stack": lambda b: np.stack([b, b]),
    "array_of_list": lambda b: np.array([b, b]),
    "array_equal": lambda b: np.array_equal(b, b),
    "np_sum": lambda b: np.sum(b),
    "sum": lambda b: b.sum(),
    "max": lambda b: b.max(),
    "py_sum": lambda b: sum(int(v) for v in b[0]),
    "py_max": lambda b: max(b[0]),
    "list_row": lambda b: list(b[0]),
    "rows_bytes": lambda b: [bytes(r) for r in b],
    "astype": lambda b: b.astype(np.int64),
    "view_copy": lambda b: b.view(np.uint16).copy(),
    "reshape_index": lambda b: b.reshape(-1)[0], "T_copy": lambda b: b.T.copy(),
    "np_ravel": lambda b: np.ravel(b).copy(),
    "ravel_index": lambda b: b.ravel()[0],
    "flatten": lambda b: b.flatten(),
    "take": lambda b: np.take(b, 0),
    "int": lambda b: int(b[0:1, 0:1].reshape(())),
    "float": lambda b: float(b[0, 0:1].reshape(())),
    "bool": lambda b: bool(b[0, 0:1].reshape(())),
    "index": lambda b: range(300)[b[0, 0:1].reshape(())],
    "str": lambda b: str(b),
    "repr": lambda b: repr(b),
    "format": lambda b: f"{b}",
    "pickle": lambda b: pickle.dumps(b),
    "copy_copy": lambda b: copy.copy(b),
    "deepcopy": lambda b: copy.deepcopy(b),
    "np_save": lambda b: np.save(io.BytesIO(), b),
    "assert_equal": lambda b: np.testing.assert_array_equal(b, b),
    "sort": lambda b: b.sort(),
    "np_sort": lambda b: np.sort(b),
    "unique": lambda b: np.unique(b),
    "where": lambda b: np.where(b),
    "any": lambda b: b.any(),
    "contains": lambda b: 0 in b,
    "as_strided": lambda b: np.lib.stride_tricks.as_strided(b),
    "sliding_copy": lambda b: np.lib.stride_tricks.sliding_window_view(b, 2, axis=1).copy(),
    "broadcast_copy": lambda b: np.broadcast_to(b, (2, *b.shape)).copy(),
    "nditer": lambda b: np.nditer(b),
    "fromiter": lambda b: np.fromiter(b[0], np.uint8),
    "einsum": lambda b: np.einsum("ij->", b),
    "dot": lambda b: b.dot(np.ones(b.shape[1], np.uint8)),
    "np_dot": lambda b: np.dot(b, np.ones(b.shape[1], np.uint8)),
    "argmax": lambda b: np.argmax(b),
    "cumsum": lambda b: b.cumsum(),
    "clip": lambda b: b.clip(0, 1),
    "nonzero": lambda b: b.nonzero(),
    "count_nonzero": lambda b: np.count_nonzero(b),
    "getfield_copy": lambda b: b.getfield(np.uint8).copy(),
    "searchsorted": lambda b: b[0].searchsorted(0),
    "view_ndarray": lambda b: np.asarray(b.view(np.ndarray)),
    "dumps": lambda b: b.dumps(),
    "split_copies": lambda b: [p.copy() for p in np.split(b, N)],
    "subrange": lambda b: b[0, 0:4].tobytes(),
    "as_where": lambda b: np.add(1, 1, out=np.zeros(1), where=b[0, 0:1] > 0),
    "as_index": lambda b: np.arange(300)[b[0, 0:2]],
    "tofile": lambda b: b.tofile(_TMP[0] / "o.bin"),
}
#: raw-memory handles and C paths the emulator cannot watch: refused before and after invalidate
RAW = {
    "frombuffer": (lambda b: np.frombuffer(b, np.uint8), TypeError),
    "memoryview": (lambda b: memoryview(b), TypeError),
    "bytearray": (lambda b: bytearray(b), (SimCoherencyError, TypeError)),
    "struct": (lambda b: struct.unpack_from("B", b), TypeError),
    "data": (lambda b: b.data, SimCoherencyError),
    "ctypes": (lambda b: b.ctypes, SimCoherencyError),
    "flat": (lambda b: b.flat[0], SimCoherencyError),
    "base": (lambda b: b.base, SimCoherencyError),
    "array_interface": (lambda b: b.__array_interface__, AttributeError),
    "array_struct": (lambda b: b.__array_struct__, AttributeError),
    "dlpack": (lambda b: np.from_dlpack(b), SimCoherencyError),
    "no_copy": (lambda b: np.array(b, copy=False), ValueError),
    "unbound_copy": (lambda b: np.ndarray.copy(b), TypeError),
    "unbound_getitem": (lambda b: np.ndarray.__getitem__(b, 0), TypeError),
}
#: views taken before the device writes, read (np.asarray) after it wrote
VIEWS = {
    "slice": lambda b: b[:N],
    "row": lambda b: b[0], "T": lambda b: b.T,
    "reshape": lambda b: b.reshape(-1),
    "view": lambda b: b.view(np.uint16),
    "np_reshape": lambda b: np.reshape(b, -1),
    "split": lambda b: np.split(b, N)[1],
    "view_ndarray": lambda b: b.view(np.ndarray),
    "astype_nocopy": lambda b: b.astype(np.uint8, copy=False),
    "ravel": lambda b: b.ravel(),
    "squeeze": lambda b: b[None].squeeze(),
    "real": lambda b: b.real,
    "broadcast": lambda b: np.broadcast_to(b, (2, *b.shape)),
    "getfield": lambda b: b.getfield(np.uint8),
    "ellipsis": lambda b: b[...],
    "newaxis": lambda b: b[:, None],
    "step": lambda b: b[::2],
}
_TMP: list = []


@pytest.fixture(autouse=True)
def _tmp(tmp_path):
    _TMP[:] = [tmp_path]


def _acc(n_rows=N):
    meta = example_meta()
    acc = open_sim(meta, ReferenceModel(meta, reference))
    acc.write_inputs(acc.pack_inputs(example_inputs(n_rows)))
    return acc


def _written(n_rows=N):
    """(accelerator, output buffer) right after the accelerator wrote it."""
    acc = _acc(n_rows)
    acc.execute_on_buffers(n_rows)
    return acc, acc._obufs[0][:n_rows]


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_read_without_invalidate_is_an_error_whatever_the_path(read):
    acc, out = _written()
    with pytest.raises(SimCoherencyError, match=r"without invalidate\(\)"):
        read(out)
    out.invalidate()
    read(out)  # fine now


@pytest.mark.parametrize("read, error", RAW.values(), ids=RAW.keys())
def test_raw_memory_paths_are_refused(read, error):
    acc, out = _written()
    for _ in range(2):
        with pytest.raises(error):
            read(out)
        out.invalidate()


@pytest.mark.parametrize("make_view", VIEWS.values(), ids=VIEWS.keys())
def test_a_view_taken_before_the_device_wrote_is_still_checked(make_view):
    acc = _acc()
    view = make_view(acc._obufs[0][:N])
    assert isinstance(view, SimBuffer)  # no unguarded alias leaves the buffer
    acc.execute_on_buffers(N)
    with pytest.raises(SimCoherencyError, match=r"invalidate\(\) before reading"):
        np.asarray(view)
    acc._obufs[0].invalidate()
    np.asarray(view)


def test_after_invalidate_the_reads_return_the_device_data():
    acc, out = _written()
    out.invalidate()
    got = acc.unpack_outputs([np.asarray(out)])[0]
    np.testing.assert_array_equal(got, reference(example_inputs(N)))
    assert out.tobytes() == np.asarray(out).tobytes() == bytes(out)
    snap = np.asarray(out)
    with pytest.raises(ValueError, match="read-only"):
        snap[0, 0] = 1  # np.asarray is a snapshot here, not an alias: writes to it would be lost


def test_making_views_and_looking_at_shapes_reads_nothing():
    acc, out = _written()
    out.reshape(-1)[:5].view(np.uint8).T  # noqa: B018
    assert np.shape(out) == out.shape == (N, acc.meta.outputs[0].frame_bytes)
    assert len(out) == N and out.nbytes == N * 30 and out.dtype == np.uint8
    out.invalidate()


def test_only_the_device_written_range_is_guarded():
    acc = _acc(5)
    acc.execute_on_buffers(2)  # the device wrote rows 0-1 only
    buf = acc._obufs[0]
    np.asarray(buf[2:5])  # never written by the device: a plain read
    with pytest.raises(SimCoherencyError):
        np.asarray(buf[1:3])
    buf[:2].invalidate()
    np.asarray(buf)


def test_writes_are_not_reads_and_a_flush_over_pending_data_is_refused():
    acc, out = _written()
    out[0, 0] = 7
    np.copyto(out, np.zeros(out.shape, np.uint8))
    with pytest.raises(SimCoherencyError, match=r"flush\(\) of buffer .* would overwrite"):
        out.flush()


def test_coherent_buffers_are_never_stale():
    acc = _acc()
    buf = acc.device.allocate((2, 8), np.uint8, cacheable=False)
    acc.device.memory.device_write(buf.device_address, np.arange(16, dtype=np.uint8), 64, "t")
    np.testing.assert_array_equal(np.asarray(buf).ravel(), np.arange(16))


def test_use_after_freebuffer_is_an_error():
    acc, out = _written()
    out.invalidate()
    buf = acc._obufs[0]
    buf.freebuffer()
    with pytest.raises(SimDmaError, match="used after freebuffer"):
        np.asarray(out)
    with pytest.raises(SimDmaError, match="used after freebuffer"):
        buf.flush()


def test_the_matrix_is_the_one_reported():
    assert (len(READS), len(RAW), len(VIEWS)) == (92, 14, 17)
