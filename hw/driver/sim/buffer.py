# SPDX-License-Identifier: BSD-3-Clause
"""``SimBuffer``: the emulator's DMA buffer, a guarded handle on the CPU view of emulated DDR.

A ``pynq.PynqBuffer`` is an ``ndarray`` subclass, and numpy reads an ``ndarray`` subclass
through C paths no Python code sees (``np.asarray``, the buffer protocol, a plain view taken
before the device wrote). So the emulator's buffer is not an ndarray: it has the PynqBuffer
API (``flush``, ``invalidate``, ``device_address``/``physical_address``, ``bo``, ``offset``,
``coherent``, ``cacheable``, ``freebuffer``, ``sync_to_device``/``sync_from_device``) and
the ndarray API, and numpy reaches its data only through the array protocols, all of which go
through one rule:

* **every read is checked** against the allocation's shared cache state (``SimMemory``):
  device-written bytes not invalidated since make it a ``SimCoherencyError``. A read is
  whatever produces values from the data: ``np.asarray``/``np.array`` (``__array__``), ufuncs
  and operators (``__array_ufunc__``), numpy functions (``__array_function__``), ndarray
  methods and attributes, indexing, iteration, ``bytes``/``int``/``float``/``repr``/pickle;
* **a result that aliases the buffer is a view, and stays guarded**: basic indexing,
  ``reshape``, ``view``, ``.T``, ``np.reshape`` … return a ``SimBuffer`` over the same state,
  so a view taken before the device wrote is still checked when it is read after;
* **nothing hands out an unguarded alias**: ``np.asarray(buf)`` is a read-only snapshot (a
  copy), and raw-memory handles (``.data``, ``.ctypes``, ``.flat``, ``.base``,
  ``__array_interface__``, ``__dlpack__``, the buffer protocol, hence ``memoryview`` and
  ``np.frombuffer``) are refused: the emulator could not see reads through them.

Writes (``buf[...] = x``, ``np.copyto(buf, x)``, ``out=buf``) go to the CPU view unchecked;
``flush()`` then makes them visible to the device. A method that returns no view of the buffer
(``fill``, ``sort``) counts as a read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .errors import SimCoherencyError, SimDmaError

_byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds
#: attributes that describe the buffer without reading its data
_META = frozenset({"shape", "dtype", "ndim", "size", "nbytes", "itemsize", "strides", "flags"})
#: raw-memory handles through which reads would bypass the emulated cache
_RAW = frozenset({"data", "ctypes", "flat", "base"})
#: numpy functions that look at shapes or addresses, not values
_NO_READ = frozenset({np.shape, np.ndim, np.size, np.may_share_memory, np.shares_memory})


class SimBuffer(NDArrayOperatorsMixin):
    """A cacheable (or coherent) buffer of the emulated DDR; see the module docstring."""

    def __init__(self, memory: Any, rec: Any, array: np.ndarray, root: SimBuffer | None = None):
        lo, hi = _byte_bounds(array)
        base = rec.cpu.__array_interface__["data"][0]
        self._memory, self._rec, self._a, self._root = memory, rec, array, root
        self._lo, self._hi = lo - base, hi - base
        self.device, self.bo, self.offset = memory.device, rec.bo, self._lo
        self.device_address = rec.addr + self._lo
        self.coherent = not rec.cacheable

    # -- the one rule ---------------------------------------------------------------------

    def _raw(self) -> np.ndarray:
        if self._rec.freed:
            raise SimDmaError(f"buffer 0x{self._rec.addr:x} used after freebuffer()")
        return self._a

    def _check(self) -> None:
        """Raise if this buffer's bytes hold device writes not invalidated since."""
        self._raw()
        self._memory.check_cpu_read(self._rec, self._lo, self._hi)

    def _aliases(self, res: Any) -> bool:
        return isinstance(res, np.ndarray) and np.may_share_memory(res, self._rec.cpu)

    def _view(self, res: np.ndarray) -> SimBuffer:
        return SimBuffer(self._memory, self._rec, res, self if self._root is None else self._root)

    def _settle(self, res: Any, sources: list[SimBuffer], reads: list[SimBuffer] = (),
                writes: list[SimBuffer] = ()) -> Any:
        """The one rule: parts of ``res`` that alias a buffer become guarded views. ``reads``
        are checked; ``sources`` too, unless the call wrote nothing and every part of ``res``
        is a view of a source (then nothing was read: a reshape, a slice)."""
        seq = type(res) in (list, tuple) and any(isinstance(p, np.ndarray) for p in res)
        parts = list(res) if seq else [res]
        viewed = not writes and parts and all(any(b._aliases(p) for b in sources)
                                              for p in parts)
        for b in [*reads, *([] if viewed else sources)]:
            b._check()
        bufs = [*sources, *reads, *writes]
        out = [next((b._view(p) for b in bufs if b._aliases(p)), p) for p in parts]
        return type(res)(out) if seq else out[0]

    # -- numpy's protocols ----------------------------------------------------------------

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError("a SimBuffer cannot become an ndarray without a copy (the copy is "
                             "the read the emulator checks)")
        self._check()
        snap = self._a.astype(dtype) if dtype is not None else self._a.copy()
        if copy is None:  # np.asarray: on a board an alias; here a snapshot, so not writable
            snap.flags.writeable = False
        return snap

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        reads: list[SimBuffer] = []
        args = [_unwrap(a, reads) for a in inputs]
        out = kwargs.pop("out", None)
        kwargs = {k: _unwrap(v, reads) for k, v in kwargs.items()}  # where=
        for b in reads:
            b._check()
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o, []) for o in out)
        res = getattr(ufunc, method)(*args, **kwargs)
        if out is None:
            return res
        res = res if isinstance(res, tuple) else (res,)
        res = tuple(o if o is not None else r for o, r in zip(out, res))
        return res[0] if len(res) == 1 else res

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        reads: list[SimBuffer] = []
        writes: list[SimBuffer] = []
        args, kwargs = list(args), dict(kwargs)
        if func is np.copyto:  # its destination is written, not read
            if args:
                args[0] = _unwrap(args[0], writes)
            elif "dst" in kwargs:
                kwargs["dst"] = _unwrap(kwargs["dst"], writes)
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], writes)
        args = [_unwrap(a, reads) for a in args]
        kwargs = {k: _unwrap(v, reads) for k, v in kwargs.items()}
        res = func(*args, **kwargs)
        return res if func in _NO_READ else self._settle(res, reads, writes=writes)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # __array_interface__, __array_struct__, __dlpack__, ...
            raise AttributeError(f"SimBuffer has no attribute {name!r} (the emulator only "
                                 "lets numpy in through the checked array protocols)")
        if name in _RAW:
            raise SimCoherencyError(f"buf.{name} is raw memory the emulated cache cannot "
                                    "watch; read through numpy (np.asarray, indexing) after "
                                    "invalidate()")
        attr = getattr(self._raw(), name)
        if name in _META:
            return attr
        if not callable(attr):
            return self._settle(attr, [self])

        def method(*args: Any, **kwargs: Any) -> Any:
            reads: list[SimBuffer] = []
            args = tuple(_unwrap(a, reads) for a in args)
            kwargs = {k: _unwrap(v, reads) for k, v in kwargs.items()}
            return self._settle(attr(*args, **kwargs), [self], reads)

        return method

    def __getitem__(self, key: Any) -> Any:
        reads: list[SimBuffer] = []
        key = _unwrap(key, reads)  # index arrays held in buffers are read
        return self._settle(self._raw()[key], [self], reads)

    def __setitem__(self, key: Any, value: Any) -> None:
        reads: list[SimBuffer] = []
        key, value = _unwrap(key, reads), _unwrap(value, reads)
        for b in reads:
            b._check()
        self._raw()[key] = value

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def __len__(self) -> int:
        return len(self._raw())

    def _read(self) -> np.ndarray:
        self._check()
        return self._a

    def __repr__(self) -> str:
        return f"SimBuffer({np.array2string(self._read())}, device_address=" \
               f"0x{self.device_address:x})"

    def __str__(self) -> str:
        return str(self._read())

    def __format__(self, spec: str) -> str:
        return format(self._read(), spec)

    def __bool__(self) -> bool:
        return bool(self._read())

    def __int__(self) -> int:
        return int(self._read())

    def __float__(self) -> float:
        return float(self._read())

    def __complex__(self) -> complex:
        return complex(self._read())

    def __index__(self) -> int:
        return self._read().__index__()

    def __contains__(self, value: Any) -> bool:
        return value in self._read()

    def __bytes__(self) -> bytes:  # bytes(PynqBuffer): its raw bytes
        return self._read().tobytes()

    def __copy__(self) -> np.ndarray:
        return self._read().copy()

    def __deepcopy__(self, memo: dict) -> np.ndarray:
        return self._read().copy()

    def __reduce__(self) -> tuple:
        return (np.array, (self._read().copy(),))

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        raise SimCoherencyError("DLPack export hands out raw memory the emulated cache cannot "
                                "watch; read through numpy after invalidate()")

    # -- the PynqBuffer API ----------------------------------------------------------------

    @property
    def physical_address(self) -> int:
        return self.device_address

    @property
    def virtual_address(self) -> int:
        return self._a.__array_interface__["data"][0]

    @property
    def cacheable(self) -> bool:
        return not self.coherent

    def flush(self) -> None:
        """Write this range of the CPU view back to DDR (cache clean)."""
        self._raw()
        self._memory.flush(self.bo, self._lo, self._hi - self._lo)

    def invalidate(self) -> None:
        """Make DDR visible to the CPU for this range (cache invalidate)."""
        self._raw()
        self._memory.invalidate(self.bo, self._lo, self._hi - self._lo)

    sync_to_device = flush
    sync_from_device = invalidate

    def freebuffer(self) -> None:
        """Free the allocation: DMAs to it become decode errors, CPU use an error."""
        self._memory.release(self.bo)

    def close(self) -> None:
        self.freebuffer()

    def __enter__(self) -> SimBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.freebuffer()


def _unwrap(obj: Any, found: list[SimBuffer]) -> Any:
    """``obj`` with every ``SimBuffer`` (also inside lists and tuples) replaced by its array;
    the buffers are appended to ``found``."""
    if isinstance(obj, SimBuffer):
        found.append(obj)
        return obj._raw()
    if type(obj) in (list, tuple):
        return type(obj)(_unwrap(o, found) for o in obj)
    return obj
